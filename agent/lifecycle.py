"""From a check's result to notices in the outbox: the one production path shared by
`agent run`, `agent check --notify` and `agent rehearse`.

A result's incident changes and the notices they cause are written in one
transaction: a crash in between can neither lose a resolution nor send an
opening twice (the outbox row and the incident state commit together).
"""

from __future__ import annotations

import json
import logging

from agent.api import CheckResult, Finding, Notice, Severity
from agent.config import Config
from agent.dispatch import Dispatcher, Sink
from agent.incidents import Event, Incident, Incidents, Policy, at_resolution
from agent.store import Store

log = logging.getLogger(__name__)
FAILURES_BEFORE_NOTICE = 3


class Lifecycle:
    def __init__(self, config: Config, store: Store, sink: Sink):
        self.config, self.store = config, store
        self.incidents = Incidents(store)
        self.dispatcher = Dispatcher(config, store, self.incidents, sink)
        self.failures: dict[str, int] = {}

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.dispatcher.reconfigure(config)

    def policy(self, check: str) -> Policy:
        cfg = self.config.checks[check]
        return Policy(cfg.for_, max(cfg.for_, 2 * cfg.interval), self.config.agent.update_interval)

    def handle(self, result: CheckResult, now: float) -> list[Notice]:
        """One run of a check: incidents from its findings (when it ran), and from its failing."""
        name = result.check
        self.failures[name] = self.failures.get(name, 0) + 1 if result.error else 0
        failing = [check_failing(name, result)] if self.failures[name] >= FAILURES_BEFORE_NOTICE else []
        with self.store.transaction():
            events: list[Event] = []
            if not result.error:
                events += self.incidents.evaluate(name, result.findings, now, self.policy(name), result.statuses)
                self._remember(name, result, now)
            events += self.incidents.evaluate(f"forewarn/{name}", failing, now, Policy(0, 0, 3600))
            return self.dispatcher.dispatch(events, now) if events else []

    def resolve(self, incident_id: str, fix: str, now: float) -> Incident | None:
        """IT says it is over (`agent resolve`): the owners get one closing notice now, for the incident and
        any other open on the same resource, told with the resource's last measured numbers; the fix is
        remembered for the next time. Should the check still see the problem, a new incident opens after `for`."""
        with self.store.transaction():
            incident = self.incidents.get(incident_id)
            if incident is None:
                return None
            closing = [incident] + [i for i in self.incidents.open_incidents()
                                    if i.id != incident.id and i.resource_key == incident.resource_key]
            facts, summary = self._last_measured(incident.check, incident.finding.resource)
            events = []
            for each in closing:
                if each.state == "open":
                    if facts:
                        each.finding = at_resolution(each.finding, facts, summary)
                    events.append(Event("resolution", each))
                if each.state != "resolved":
                    each.state, each.resolved = "resolved", now
            incident.fix = fix or incident.fix or (incident.notes[-1]["text"] if incident.notes else "")
            self.incidents.save(closing)
            if events:
                self.dispatcher.dispatch(events, now)
        return incident

    def _remember(self, check: str, result: CheckResult, now: float) -> None:
        """The last measured numbers of each resource with an open incident: a resolution by hand tells them."""
        troubled = {i.finding.resource for i in self.incidents.open_incidents() if i.check == check}
        for status in result.statuses:
            if status.resource in troubled and status.facts:
                measured = {"facts": dict(status.facts), "summary": status.summary}
                self.store.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                   (f"measured:{check}:{status.resource}", json.dumps(measured, default=str)))

    def _last_measured(self, check: str, resource: str) -> tuple[dict, str]:
        rows = self.store.query("SELECT value FROM meta WHERE key = ?", (f"measured:{check}:{resource}",))
        if not rows:
            return {}, ""
        measured = json.loads(rows[0][0])
        return measured["facts"], measured["summary"]

    def housekeeping(self, now: float) -> list[Notice]:
        """What is due without a check run: escalations, and updates for IT's new notes."""
        with self.store.transaction():
            open_now = self.incidents.open_incidents()
            if not open_now:
                return []
            return self.dispatcher.escalate(now, open_now) + self.dispatcher.noted(now, open_now)


def check_failing(name: str, result: CheckResult) -> Finding:
    return Finding("forewarn", "check_failing", Severity.WARNING, name, {"check_name": name},
                   f"the {name} check keeps failing: {result.error}", {"check_name": name},
                   {"check": name, "error": result.error, "rule": f"{FAILURES_BEFORE_NOTICE} failed runs in a row"})
