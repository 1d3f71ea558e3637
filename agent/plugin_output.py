"""`agent check`'s first line in the monitoring-plugins format: `STATUS - summary | perfdata`.

Nagios, Icinga and Naemon show the text before `|` and graph what follows it
(https://www.monitoring-plugins.org/doc/guidelines.html#AEN201):
`'label'=value[UOM];[warn];[crit];[min];[max]`, space separated, labels in
single quotes (a quote inside doubled, no `=`). A check chooses its perfdata
with an optional `perfdata(config)` classmethod returning, per metric name,
(label suffix, warn range, crit range); its observations of those metrics are
printed, in the unit the metric declares.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

from agent.api import CheckResult, Observation, ResourceStatus, Status

# unit -> (UOM, scale, min, max): plugins know %, s, B (and c for counters); a ratio is shown as a percent.
UNITS: dict[str, tuple[str, float, str, str]] = {
    "ratio": ("%", 100.0, "0", "100"),
    "seconds": ("s", 1.0, "0", ""),
    "bytes": ("B", 1.0, "0", ""),
}
Limits = Mapping[str, tuple[str, str, str]]


def status_line(status: Status, results: list[CheckResult], limits: Callable[[str], Limits]) -> str:
    """The whole first line; `limits(check)` is that check's perfdata declaration (empty: none)."""
    statuses = [s for r in results for s in r.statuses]
    perf = " ".join(v for r in results for v in perfdata(r, limits(r.check)))
    return f"{status.name} - {summary(statuses)}" + (f" | {perf}" if perf else "")


def summary(statuses: list[ResourceStatus]) -> str:
    """The resources that are not OK, worst first; or how many were checked."""
    bad = sorted((s for s in statuses if s.status is not Status.OK), key=lambda s: -int(s.status))
    if not bad:
        return f"{len(statuses)} resource{'s' * (len(statuses) != 1)} OK"
    return "; ".join(f"{s.resource} {s.summary}" for s in bad)


def perfdata(result: CheckResult, limits: Limits) -> Iterable[str]:
    for obs in result.observations:
        if obs.name in limits and obs.unit in UNITS:
            suffix, warn, crit = limits[obs.name]
            yield value(f"{resource_of(obs, result.statuses)}{suffix}", obs, warn, crit)


def resource_of(obs: Observation, statuses: Iterable[ResourceStatus]) -> str:
    """The status row the observation belongs to (its labels include the row's labels)."""
    for status in statuses:
        if status.labels and all(obs.labels.get(k) == v for k, v in status.labels.items()):
            return status.resource
    return obs.name


def value(label: str, obs: Observation, warn: str, crit: str) -> str:
    uom, scale, low, high = UNITS[obs.unit]
    return f"{quote(label)}={number(obs.value * scale)}{uom};{warn};{crit};{low};{high}".rstrip(";")


def quote(label: str) -> str:
    return "'" + label.replace("=", "_").replace("'", "''") + "'"


def number(x: float) -> str:
    """Plain decimal, never an exponent (plugins parse [-0-9.] only)."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text

