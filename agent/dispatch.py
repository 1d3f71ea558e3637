"""From incident events to notices in the outbox: one notice per owner, phase and thread.

Openings of several incidents for one owner in the same cycle become one notice
and one thread; updates and resolutions go to the thread their opening started.
Silenced incidents stay quiet; an owner's quiet hours hold back non-critical
notices until they end; a critical incident nobody acknowledged is escalated.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterable, Mapping, Protocol
from zoneinfo import ZoneInfo

from agent.api import Finding, Notice, Severity
from agent.composer import Composer, Item, Note, PastFix, address
from agent.config import Config, Owner
from agent.incidents import Event, Incident, Incidents
from agent.store import Store

log = logging.getLogger(__name__)


class Sink(Protocol):
    def enqueue(self, notice: Notice, not_before: float | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    matcher: Mapping[str, str]
    starts: float
    ends: float
    author: str
    comment: str

    def covers(self, incident: Incident, owner: str, now: float) -> bool:
        if not self.starts <= now < self.ends:
            return False
        finding = incident.finding
        fields = {**finding.labels, "check": finding.check, "kind": finding.kind, "resource": finding.resource,
                  "owner": owner, "severity": finding.severity.value, "incident": incident.id}
        return all(fields.get(key) == value for key, value in self.matcher.items())


def silences(store: Store, now: float) -> list[Silence]:
    rows = store.query("SELECT id, matcher, starts, ends, author, comment FROM silences WHERE ends > ?", (now,))
    return [Silence(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5]) for r in rows]


def add_silence(store: Store, matcher: Mapping[str, str], starts: float, ends: float, author: str,
                comment: str) -> int:
    cursor = store.execute("INSERT INTO silences (matcher, starts, ends, author, comment) VALUES (?, ?, ?, ?, ?)",
                           (json.dumps(dict(matcher), sort_keys=True), starts, ends, author, comment))
    return cursor.lastrowid


def quiet_until(owner: Owner, severity: Severity, now: float) -> float | None:
    """The end of the owner's quiet hours if a notice of this severity must wait for it."""
    if not owner.quiet_hours or severity == Severity.CRITICAL:
        return None
    start_text, end_text = owner.quiet_hours.split("-")
    local = datetime.fromtimestamp(now, ZoneInfo(owner.timezone))
    start = local.replace(hour=int(start_text[:2]), minute=int(start_text[3:]), second=0, microsecond=0)
    end = local.replace(hour=int(end_text[:2]), minute=int(end_text[3:]), second=0, microsecond=0)
    if start <= end:
        inside = start <= local < end
    else:  # across midnight, e.g. 22:00-07:00
        inside = local >= start or local < end
        if local >= start:
            end += timedelta(days=1)
    return end.timestamp() if inside else None


class Dispatcher:
    """Composes the notices of incident events and puts them in the outbox (`sink`).

    Each owner hears about an incident in one thread, under one subject; the owner
    sees the business name and impact of their resource (the default owner, IT, too).
    """

    def __init__(self, config: Config, store: Store, incidents: Incidents, sink: Sink):
        self.config, self.store, self.incidents, self.sink = config, store, incidents, sink
        self.composer = Composer(config)

    def reconfigure(self, config: Config) -> None:
        self.config, self.composer = config, Composer(config)

    def dispatch(self, events: Iterable[Event], now: float) -> list[Notice]:
        events = list(events)
        active_silences = silences(self.store, now)
        groups: dict[tuple[str, str, str, str | None], list[tuple[Incident, Item]]] = {}
        replaced: dict[tuple[str, str, str, str | None], list[Finding]] = {}
        for event in events:
            incident = event.incident
            for owner, items in address([incident.finding], self.config).items():
                if any(s.covers(incident, owner, now) for s in active_silences):
                    log.info("incident %s for %s is silenced", incident.id, owner)
                    continue
                key = (owner, event.phase, incident.threads.get(owner, ""), event.previous_severity)
                groups.setdefault(key, []).append((incident, self._item(incident, items[0], event.phase)))
                if event.replaces:
                    replaced.setdefault(key, []).append(event.replaces)
        notices = [self._send(owner, phase, thread, members, now, previous=previous,
                              replaces=tuple(replaced.get((owner, phase, thread, previous), ())))
                   for (owner, phase, thread, previous), members in groups.items()]
        for event in events:
            self.incidents.notified(event.incident, now)
        return notices

    def escalate(self, now: float, open_now: list[Incident] | None = None) -> list[Notice]:
        """Critical incidents nobody acknowledged in time also go to the owner's escalation contact,
        unless a silence covers them (for the owner or for the contact)."""
        notices = []
        active_silences = silences(self.store, now)
        for incident in self.incidents.open_incidents() if open_now is None else open_now:
            if incident.severity != Severity.CRITICAL or incident.acked_by or incident.escalated:
                continue
            for owner_id, items in address([incident.finding], self.config).items():
                owner = self.config.owners[owner_id]
                target = owner.escalate_to
                critical_since = incident.critical_since or incident.opened or now
                if not target or target not in self.config.owners or now - critical_since < owner.escalate_after:
                    continue
                if any(s.covers(incident, who, now) for s in active_silences for who in (owner_id, target)):
                    log.debug("escalation of %s to %s is silenced", incident.id, target)
                    continue
                incident.escalated = True
                item = self._item(incident, items[0], "escalation")
                notices.append(self._send(target, "escalation", incident.threads.get(target, ""), [(incident, item)],
                                          now, escalated_after=owner.escalate_after))
            if incident.escalated:
                self.incidents.save([incident])
        return notices

    def noted(self, now: float, open_now: list[Incident]) -> list[Notice]:
        """An update for every open incident IT wrote a note about since its owners were last told."""
        events = [Event("update", i) for i in open_now
                  if i.notes and max(n["at"] for n in i.notes) > i.noted]
        return self.dispatch(events, now) if events else []

    def _item(self, incident: Incident, item: Item, phase: str) -> Item:
        notes = tuple(Note(n["text"], n["author"], n["at"]) for n in incident.notes)
        last_fix = None
        if phase == "opening":
            before = self.incidents.previous(incident)
            if before is not None and before.resolved and before.opened:
                last_fix = PastFix(before.fix, before.resolved, before.resolved - before.opened)
        return Item(incident.finding, item.resource, notes, last_fix)

    def _send(self, owner: str, phase: str, thread: str, members: list[tuple[Incident, Item]], now: float, *,
              previous: str | None = None, escalated_after: float | None = None,
              replaces: tuple[Finding, ...] = ()) -> Notice:
        primary = members[0][0]
        if not thread:
            thread = hashlib.sha256(f"{owner}\n{primary.id}".encode()).hexdigest()[:16]
        for incident, _ in members:
            incident.threads.setdefault(owner, thread)
        lasted = (now - primary.opened) if phase == "resolution" and primary.opened else None
        notice = self.composer.compose(owner, [item for _, item in members], now, phase=phase, incident=primary.id,
                                       thread=thread, sequence=self._next_sequence(thread), lasted=lasted,
                                       thread_subject=primary.subjects.get(owner), previous_severity=previous,
                                       escalated_after=escalated_after,
                                       fix=primary.fix if phase == "resolution" else "")
        if replaces:
            notice = replace(notice, replaces=replaces)
        for incident, _ in members:
            incident.subjects.setdefault(owner, notice.subject)
        self.sink.enqueue(notice, not_before=quiet_until(self.config.owners[owner], notice.severity, now))
        return notice

    def _next_sequence(self, thread: str) -> int:
        key = f"thread:{thread}"
        with self.store.transaction():
            rows = self.store.query("SELECT value FROM meta WHERE key = ?", (key,))
            sequence = int(rows[0][0]) + 1 if rows else 0
            self.store.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(sequence)))
        return sequence
