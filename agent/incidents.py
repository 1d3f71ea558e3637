"""The life of a finding: pending, open, updated, resolved — persisted, so a restart
neither repeats an opening notice nor forgets a resolution.

A finding opens an incident only after it has held for its check's `for`
duration. An open incident resolves only after the finding has been absent for
`clear_after` (time hysteresis: a value hovering at a limit does not flap).
Critical incidents get an update every `update_interval` even when nothing
changed; warnings only when something material changes (severity, or the
forecast moving by more than `forecast_shift`).

The state database is the only copy: every evaluation reads the incidents it
judges afresh, so what `agent ack`, `agent note` and `agent resolve` wrote from
another process counts from the next cycle on, and is never overwritten.

One resource, one thread: a second finding on a resource that already has an
open incident (a disk that was filling and is now full) continues that
incident's threads as an update, and an incident that ends while another finding
on the same resource goes on hands over to it silently — never an all-clear
while the resource is still in trouble.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from typing import Iterable, Mapping

from agent.api import Finding, ResourceStatus, Severity
from agent.codec import finding_from_dict, finding_to_dict
from agent.store import Store

FORECAST_SHIFT = 0.25


@dataclass
class Incident:
    id: str
    dedup_key: str
    check: str
    state: str
    """pending | open | resolved"""
    first_seen: float
    last_seen: float
    finding: Finding
    opened: float | None = None
    resolved: float | None = None
    last_notice: float = 0.0
    notified_severity: str = ""
    notified_eta: float | None = None
    acked_by: str = ""
    escalated: bool = False
    threads: dict[str, str] = field(default_factory=dict)
    """owner -> thread id, so every notice about this incident stays in the owner's thread."""
    subjects: dict[str, str] = field(default_factory=dict)
    """owner -> the subject of the thread's opening: every later notice keeps it (mail clients thread by it)."""
    notes: list[dict] = field(default_factory=list)
    """What IT wrote (`agent note`): {text, author, at}; the newest goes into the next notice."""
    noted: float = 0.0
    """When the owners were last told about a note: a newer note gets an update of its own."""
    fix: str = ""
    """What fixed it (`agent resolve --fix`, else the last note), remembered for the next time."""
    handed_to: str = ""
    """The incident that carried on when this one ended (same resource, still in trouble)."""
    critical_since: float | None = None
    """When it became critical (escalation counts from then); None while it is not."""
    told: dict | None = None
    """The finding as the owners were last told it (its kind and severity may have changed since)."""

    @property
    def severity(self) -> Severity:
        return self.finding.severity

    @property
    def resource_key(self) -> tuple[str, str]:
        return self.check, self.finding.resource


@dataclass(frozen=True, slots=True)
class Event:
    """Something to tell: an incident's opening, update, resolution or escalation."""

    phase: str
    incident: Incident
    previous_severity: str | None = None
    """For an update: the severity the owners were last told, when it changed."""
    replaces: Finding | None = None
    """For an update: the finding the owners were told before, when this one differs in kind or severity."""


@dataclass(frozen=True, slots=True)
class Policy:
    for_: float
    clear_after: float
    update_interval: float
    forecast_shift: float = FORECAST_SHIFT


class Incidents:
    """Incidents in the state database. Each method reads what it judges, in one transaction."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def active(self) -> dict[str, Incident]:
        """Open and pending incidents by dedup key, as the database has them now."""
        return {i.dedup_key: i for i in self._load("state != 'resolved'")}

    def get(self, incident_id: str) -> Incident | None:
        found = self._load("id = ?", (incident_id,))
        return found[0] if found else None

    def evaluate(self, check: str, findings: Iterable[Finding], now: float, policy: Policy,
                 statuses: Iterable[ResourceStatus] = ()) -> list[Event]:
        """One successful run of `check`: what opens, what needs an update, what resolves.

        `statuses` are the run's resource rows: a resolution is told with the numbers of that moment.
        """
        with self.store.transaction():
            active = self.active
            events: list[Event] = []
            seen: dict[str, Incident] = {}
            for finding in findings:
                incident = active.get(finding.dedup_key)
                if incident is None:
                    incident = Incident(_new_id(finding.dedup_key, now), finding.dedup_key, check, "pending", now,
                                        now, finding)
                    active[finding.dedup_key] = incident
                incident.last_seen, incident.finding = now, finding
                critical = finding.severity == Severity.CRITICAL
                incident.critical_since = (incident.critical_since or now) if critical else None
                seen[finding.dedup_key] = incident
            for incident in seen.values():
                if incident.state == "pending" and now - incident.first_seen >= policy.for_:
                    events.append(self._open(incident, active, now))
                elif incident.state == "open" and _needs_update(incident, now, policy):
                    events.append(Event("update", incident, _changed(incident), _superseded(incident, incident)))
            current = {s.resource: s for s in statuses}
            for key, incident in list(active.items()):
                if incident.check != check or key in seen:
                    continue
                if incident.state == "pending":
                    del active[key]  # never held long enough to matter
                    self.store.execute("DELETE FROM incidents WHERE id = ?", (incident.id,))
                elif now - incident.last_seen >= policy.clear_after:
                    events += self._end(incident, seen.values(), current.get(incident.finding.resource), now)
            self.save(i for i in active.values() if i.check == check)
        return events

    def _open(self, incident: Incident, active: Mapping[str, Incident], now: float) -> Event:
        """Opens `incident`; on a resource that already has an open incident it continues that thread."""
        incident.state, incident.opened = "open", now
        carried = _sibling(incident, active.values())
        if carried is None:
            return Event("opening", incident)
        _inherit(incident, carried)
        incident.opened = carried.opened or now
        return Event("update", incident, carried.notified_severity or carried.severity.value,
                     _superseded(carried, incident))

    def _end(self, incident: Incident, present: Iterable[Incident], status: ResourceStatus | None,
             now: float) -> list[Event]:
        incident.state, incident.resolved = "resolved", now
        incident.fix = incident.fix or (incident.notes[-1]["text"] if incident.notes else "")
        heir = next((i for i in present if i.resource_key == incident.resource_key and i.state != "resolved"
                     and i.severity.rank >= incident.severity.rank), None)
        if heir is not None:
            incident.handed_to = heir.id  # the owner hears how it goes on in the same thread, not an all-clear
            _inherit(heir, incident)
            if heir.state == "pending":  # the trouble is continuous: no second wait of `for`
                heir.state, heir.opened = "open", incident.opened or now
                return [Event("update", heir, incident.notified_severity or incident.severity.value,
                              _superseded(incident, heir))]
            return []
        if status is not None and status.facts:
            incident.finding = at_resolution(incident.finding, status.facts, status.summary)
        return [Event("resolution", incident)]

    def notified(self, incident: Incident, now: float) -> None:
        """Remember what the owner was last told, to judge later changes against it."""
        incident.last_notice = now
        incident.notified_severity = incident.severity.value
        incident.notified_eta = incident.finding.forecast.eta if incident.finding.forecast else None
        incident.noted = max([incident.noted] + [n["at"] for n in incident.notes])
        incident.told = finding_to_dict(incident.finding)
        self.save([incident])

    def save(self, incidents: Iterable[Incident]) -> None:
        with self.store.transaction():
            for incident in incidents:
                self.store.execute(
                    "INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (incident.id, incident.dedup_key, "", incident.state, incident.severity.value,
                     incident.opened or incident.first_seen, incident.last_seen, incident.resolved, _dump(incident)))

    def change(self, incident_id: str, edit) -> Incident | None:
        """Applies `edit(incident)` to an incident read and written in one transaction (ack, note, fix)."""
        with self.store.transaction():
            incident = self.get(incident_id)
            if incident is None:
                return None
            edit(incident)
            self.save([incident])
        return incident

    def note(self, incident_id: str, text: str, author: str, now: float) -> Incident | None:
        """IT's words about an incident (`agent note`); the next update carries them."""
        return self.change(incident_id, lambda i: i.notes.append({"text": text, "author": author, "at": now}))

    def ack(self, incident_id: str, who: str) -> Incident | None:
        incident = self.get(incident_id)
        if incident is None or incident.state != "open":
            return None
        return self.change(incident_id, lambda i: setattr(i, "acked_by", who))

    def open_incidents(self) -> list[Incident]:
        return self._load("state = 'open'")

    def history(self, limit: int = 50) -> list[Incident]:
        """Closed incidents, newest first."""
        return self._load("state = 'resolved' ORDER BY resolved DESC LIMIT ?", (limit,))

    def previous(self, incident: Incident) -> Incident | None:
        """The last closed incident of the same kind on the same resource that IT said how it was fixed."""
        rows = self._load("state = 'resolved' AND dedup_key = ? AND id != ? ORDER BY resolved DESC LIMIT 5",
                          (incident.dedup_key, incident.id))
        return next((i for i in rows if i.fix), None)

    def _load(self, where: str, params: tuple = ()) -> list[Incident]:
        return [_load(data) for (data,) in self.store.query(f"SELECT data FROM incidents WHERE {where}", params)]


def at_resolution(finding: Finding, facts: Mapping, summary: str) -> Finding:
    """The finding told with the resource's numbers when it ended: the body reads `facts`, the appendix
    says what the resource measures now and what was last seen."""
    return replace(finding, facts={**finding.facts, **facts}, summary=f"ended (last seen: {finding.summary})",
                   evidence={"now": summary, **{k: v for k, v in finding.evidence.items()
                                                if k in ("mount", "target", "bucket")}})


def _inherit(heir: Incident, before: Incident) -> None:
    """A finding that carries on an incident on the same resource keeps its threads, subjects, ack and
    escalation: the owner lives through one incident, not two."""
    heir.threads = {**before.threads, **heir.threads}
    heir.subjects = {**before.subjects, **heir.subjects}
    heir.acked_by = heir.acked_by or before.acked_by
    heir.escalated = heir.escalated or before.escalated
    if before.critical_since and heir.critical_since:
        heir.critical_since = min(heir.critical_since, before.critical_since)


def _sibling(incident: Incident, others: Iterable[Incident]) -> Incident | None:
    """Another open incident on the same resource, whose threads a new finding there continues."""
    return next((o for o in others if o is not incident and o.state == "open"
                 and o.resource_key == incident.resource_key and o.threads), None)


def _superseded(before: Incident, now: Incident) -> Finding | None:
    """What the owners were told about `before`, if `now`'s finding differs from it in kind or severity."""
    if not before.told:
        return None
    told = finding_from_dict(before.told)
    return told if (told.kind, told.severity) != (now.finding.kind, now.finding.severity) else None


def _changed(incident: Incident) -> str | None:
    before = incident.notified_severity
    return before if before and before != incident.severity.value else None


def _needs_update(incident: Incident, now: float, policy: Policy) -> bool:
    if incident.severity.value != incident.notified_severity:
        return True
    if incident.severity == Severity.CRITICAL and now - incident.last_notice >= policy.update_interval:
        return True
    forecast, before = incident.finding.forecast, incident.notified_eta
    if forecast and before:
        horizon = max(before - now, 60.0)
        return abs(forecast.eta - before) / horizon > policy.forecast_shift
    return False


def _new_id(dedup_key: str, now: float) -> str:
    return hashlib.sha256(f"{dedup_key}\n{now!r}".encode()).hexdigest()[:16]


def _dump(incident: Incident) -> str:
    data = {f.name: getattr(incident, f.name) for f in fields(incident)}  # shallow: the finding has its codec
    data["finding"] = finding_to_dict(incident.finding)
    return json.dumps(data, ensure_ascii=False, default=str)


def _load(text: str) -> Incident:
    data = json.loads(text)
    known = {f.name for f in fields(Incident)}
    return Incident(**{**{k: v for k, v in data.items() if k in known}, "finding": finding_from_dict(data["finding"])})
