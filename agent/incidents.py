"""The life of a finding: pending, open, updated, resolved — persisted, so a restart
neither repeats an opening notice nor forgets a resolution.

A finding opens an incident only after it has held for its check's `for`
duration. An open incident resolves only after the finding has been absent for
`clear_after` (time hysteresis: a value hovering at a limit does not flap).
Critical incidents get an update every `update_interval` even when nothing
changed; warnings only when something material changes (severity, or the
forecast moving by more than `forecast_shift`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Iterable

from agent.api import Finding, Severity
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

    @property
    def severity(self) -> Severity:
        return self.finding.severity


@dataclass(frozen=True, slots=True)
class Event:
    """Something to tell: an incident's opening, update or resolution."""

    phase: str
    incident: Incident


@dataclass(frozen=True, slots=True)
class Policy:
    for_: float
    clear_after: float
    update_interval: float
    forecast_shift: float = FORECAST_SHIFT


class Incidents:
    """Open and pending incidents, loaded once and written back on every change."""

    def __init__(self, store: Store):
        self.store = store
        self.active: dict[str, Incident] = {}
        for (data,) in store.query("SELECT data FROM incidents WHERE state != 'resolved'"):
            incident = _load(data)
            self.active[incident.dedup_key] = incident

    def evaluate(self, check: str, findings: Iterable[Finding], now: float, policy: Policy) -> list[Event]:
        """One successful run of `check`: what opens, what needs an update, what resolves."""
        events: list[Event] = []
        seen = set()
        for finding in findings:
            seen.add(finding.dedup_key)
            incident = self.active.get(finding.dedup_key)
            if incident is None:
                incident = Incident(_new_id(finding.dedup_key, now), finding.dedup_key, check, "pending", now, now,
                                    finding)
                self.active[finding.dedup_key] = incident
            incident.last_seen, incident.finding = now, finding
            if incident.state == "pending" and now - incident.first_seen >= policy.for_:
                incident.state, incident.opened = "open", now
                events.append(Event("opening", incident))
            elif incident.state == "open" and _needs_update(incident, now, policy):
                events.append(Event("update", incident))
        for key, incident in list(self.active.items()):
            if incident.check != check or key in seen:
                continue
            if incident.state == "pending":
                del self.active[key]  # never held long enough to matter
                self.store.execute("DELETE FROM incidents WHERE id = ?", (incident.id,))
            elif now - incident.last_seen >= policy.clear_after:
                incident.state, incident.resolved = "resolved", now
                events.append(Event("resolution", incident))
        self.save(i for i in self.active.values() if i.check == check)
        for event in events:
            if event.phase == "resolution":
                del self.active[event.incident.dedup_key]
        return events

    def notified(self, incident: Incident, now: float) -> None:
        """Remember what the owner was last told, to judge later changes against it."""
        incident.last_notice = now
        incident.notified_severity = incident.severity.value
        incident.notified_eta = incident.finding.forecast.eta if incident.finding.forecast else None

    def save(self, incidents: Iterable[Incident]) -> None:
        with self.store.transaction():
            for incident in incidents:
                self.store.execute(
                    "INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (incident.id, incident.dedup_key, "", incident.state, incident.severity.value,
                     incident.opened or incident.first_seen, incident.last_seen, incident.resolved, _dump(incident)))

    def ack(self, incident_id: str, who: str) -> Incident | None:
        for incident in self.active.values():
            if incident.id == incident_id:
                incident.acked_by = who
                self.save([incident])
                return incident
        return None

    def open_incidents(self) -> list[Incident]:
        return [i for i in self.active.values() if i.state == "open"]


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
    return Incident(**{**data, "finding": finding_from_dict(data["finding"])})
