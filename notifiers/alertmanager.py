"""Prometheus Alertmanager: each finding of a notice becomes one alert (POST /api/v2/alerts).

Alertmanager identifies an alert by its label set, so the labels hold only
what names the problem (alertname, department, owner, severity, check,
resource, instance) and the business text goes into annotations. Two agents
posting the same incident send the same label set and Alertmanager keeps one
alert: that is how a fleet de-duplicates, and how a re-send after a crash is
harmless. Routing (by `department`, `severity`, ...) is Alertmanager's job.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any, ClassVar

from agent.api import Delivery, Duration, Finding, Notice, NotifierConfig, NotifyError, model_check
from notifiers._http import host_of, post_json

STALE_AFTER_REFRESHES = 4
"""endsAt of a firing alert: this many refresh periods ahead, as Prometheus does."""


class AlertmanagerConfig(NotifierConfig):
    url: str | None = None
    urls: tuple[str, ...] = ()
    """Every member of an HA cluster; the notice counts as sent when one accepted it."""
    instance: str | None = None
    """The `instance` label; default this host's name. Give agents watching one shared thing the same value."""
    timeout: Duration = 10.0

    @model_check
    def _some_url(self) -> None:
        if not self.url and not self.urls:
            raise ValueError("give url (one Alertmanager) or urls (every member of a cluster)")

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(u.rstrip("/") + "/api/v2/alerts" for u in ((self.url,) if self.url else ()) + self.urls))


def alertname(kind: str) -> str:
    """disk_nearly_full -> ForewarnDiskNearlyFull."""
    return "Forewarn" + "".join(part[:1].upper() + part[1:] for part in kind.replace("-", "_").split("_"))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _labels(notice: Notice, finding: Finding | None, instance: str) -> dict[str, str]:
    labels = {
        "alertname": alertname(finding.kind if finding else notice.phase),
        "department": notice.department,
        "owner": notice.owner,
        "severity": str(finding.severity if finding else notice.severity),
        "check": finding.check if finding else "forewarn",
        "resource": finding.resource if finding else notice.incident_id,
        "instance": instance,
    }
    return {k: v for k, v in labels.items() if v}


def alerts_for(notice: Notice, instance: str, now: float, stale_after: float) -> list[dict[str, Any]]:
    """One alert per finding (a notice without findings, e.g. an operator notice, is one alert of its own)."""
    findings: tuple[Finding | None, ...] = notice.findings or (None,)
    ends = now if notice.phase == "resolution" else now + stale_after
    starts = _iso(min(notice.created or now, now))
    annotations = {"summary": notice.subject, "description": notice.body, "appendix": notice.appendix,
                   "incident_id": notice.incident_id}
    alerts = [{"labels": _labels(notice, finding, instance), "annotations": annotations, "startsAt": starts,
               "endsAt": _iso(ends)} for finding in findings]
    alerts += [{"labels": _labels(notice, finding, instance), "annotations": {"incident_id": notice.incident_id},
                "startsAt": starts, "endsAt": _iso(now)}  # what the incident was before it changed kind or severity
               for finding in notice.replaces]
    return alerts


class AlertmanagerNotifier:
    """Pushes alerts to Alertmanager (every URL of a cluster; success when any accepted).

    Alertmanager resolves an alert nobody re-posts before its endsAt, so while
    an incident is open its latest notice must be sent again regularly:
    `refresh_every` tells the daemon how often (it re-sends the latest notice
    of each open incident to channels whose notifier class has this attribute).
    Firing alerts carry endsAt = now + 4 × refresh_every; a resolution sets
    endsAt = now.
    """

    type: ClassVar[str] = "alertmanager"
    Config: ClassVar[type[AlertmanagerConfig]] = AlertmanagerConfig
    refresh_every: ClassVar[float] = 60.0

    def __init__(self, name: str, config: AlertmanagerConfig):
        self.name, self.config = name, config

    def send(self, notice: Notice) -> Delivery:
        instance = self.config.instance or os.uname().nodename
        alerts = alerts_for(notice, instance, time.time(), STALE_AFTER_REFRESHES * self.refresh_every)
        failures: list[NotifyError] = []
        accepted = []
        for endpoint in self.config.endpoints:
            try:
                post_json(endpoint, alerts, self.config.timeout)
                accepted.append(host_of(endpoint))
            except NotifyError as exc:
                failures.append(exc)
        if not accepted:
            raise NotifyError("; ".join(str(f) for f in failures), permanent=all(f.permanent for f in failures))
        return Delivery(self.name, ", ".join(accepted))
