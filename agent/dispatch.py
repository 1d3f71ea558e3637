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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping, Protocol
from zoneinfo import ZoneInfo

from agent.api import Notice, Severity
from agent.composer import Composer, Item, address
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
    def __init__(self, config: Config, store: Store, incidents: Incidents, sink: Sink):
        self.config, self.store, self.incidents, self.sink = config, store, incidents, sink
        self.composer = Composer(config)

    def reconfigure(self, config: Config) -> None:
        self.config, self.composer = config, Composer(config)

    def dispatch(self, events: Iterable[Event], now: float) -> list[Notice]:
        active_silences = silences(self.store, now)
        groups: dict[tuple[str, str, str], list[Incident]] = {}
        for event in events:
            incident = event.incident
            for owner in self._owners(incident):
                if any(s.covers(incident, owner, now) for s in active_silences):
                    log.info("incident %s for %s is silenced", incident.id, owner)
                    continue
                thread = incident.threads.get(owner) or ""
                groups.setdefault((owner, event.phase, thread), []).append(incident)
        notices = [self._send(owner, phase, thread, incidents, now)
                   for (owner, phase, thread), incidents in groups.items()]
        for event in events:
            self.incidents.notified(event.incident, now)
        self.incidents.save(e.incident for e in events)
        return notices

    def escalate(self, now: float) -> list[Notice]:
        """Critical incidents nobody acknowledged in time also go to the owner's escalation contact."""
        notices = []
        for incident in self.incidents.open_incidents():
            if incident.severity != Severity.CRITICAL or incident.acked_by or incident.escalated:
                continue
            for owner_id in self._owners(incident):
                owner = self.config.owners[owner_id]
                target = owner.escalate_to
                if target and target in self.config.owners and now - (incident.opened or now) >= owner.escalate_after:
                    notices.append(self._send(target, "escalation", incident.threads.get(target, ""), [incident], now))
                    incident.escalated = True
            if incident.escalated:
                self.incidents.save([incident])
        return notices

    def _owners(self, incident: Incident) -> list[str]:
        return list(address([incident.finding], self.config))

    def _send(self, owner: str, phase: str, thread: str, incidents: list[Incident], now: float) -> Notice:
        primary = incidents[0]
        if not thread:
            thread = hashlib.sha256(f"{owner}\n{primary.id}".encode()).hexdigest()[:16]
        for incident in incidents:
            incident.threads.setdefault(owner, thread)
        items = [self._item(owner, incident) for incident in incidents]
        lasted = (now - primary.opened) if phase == "resolution" and primary.opened else None
        notice = self.composer.compose(owner, items, now, phase="update" if phase == "escalation" else phase,
                                       incident=primary.id, thread=thread, sequence=self._next_sequence(thread),
                                       lasted=lasted)
        self.sink.enqueue(notice, not_before=quiet_until(self.config.owners[owner], notice.severity, now))
        return notice

    def _item(self, owner: str, incident: Incident) -> Item:
        resources = [r for r in self.config.resources_for(incident.finding.check, incident.finding.labels)
                     if r.owner == owner]
        return Item(incident.finding, resources[0] if resources else None)

    def _next_sequence(self, thread: str) -> int:
        key = f"thread:{thread}"
        with self.store.transaction():
            rows = self.store.query("SELECT value FROM meta WHERE key = ?", (key,))
            sequence = int(rows[0][0]) + 1 if rows else 0
            self.store.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(sequence)))
        return sequence
