"""The Prometheus view of the agent: every observation as a metric, plus the agent's own health.

Everything lives in a registry owned by the agent (never the module-global one),
so two agents — or two tests — never share state. Metric names and help come
from the checks' own `Metric` declarations.
"""

from __future__ import annotations

import platform
import threading
from typing import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agent import __version__
from agent.api import CheckResult, Metric, Observation
from agent.config import Config

PREFIX = "forewarn_"


class Metrics:
    def __init__(self, config: Config):
        self.registry = CollectorRegistry(auto_describe=True)
        self.observations = _Observations(config)
        self.registry.register(self.observations)
        self.check_duration = Histogram(
            "forewarn_check_duration_seconds", "Time a check run took.", ["check"], registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.check_errors = Counter("forewarn_check_errors", "Check runs that failed, hung or raised.", ["check"],
                                    registry=self.registry)
        self.last_success = Gauge("forewarn_check_last_success_timestamp_seconds",
                                  "When the check last ran successfully.", ["check"], registry=self.registry)
        self.incidents_open = Gauge("forewarn_incidents_open", "Open incidents.", ["severity"], registry=self.registry)
        self.notices = Counter("forewarn_notices", "Notice deliveries by channel and result.", ["channel", "result"],
                               registry=self.registry)
        build = Gauge("forewarn_build_info", "Build information; the value is always 1.", ["version", "python"],
                      registry=self.registry)
        build.labels(__version__, platform.python_version()).set(1)
        for severity in ("warning", "critical"):
            self.incidents_open.labels(severity).set(0)
        self._zero_series(config)

    def reconfigure(self, config: Config) -> None:
        """Checks that are gone stop being reported; new checks and channels start at zero."""
        for check in set(self.observations.config.checks) - set(config.checks):
            self.observations.latest.pop(check, None)
            for metric in (self.last_success, self.check_errors, self.check_duration):
                try:
                    metric.remove(check)
                except KeyError:
                    pass
        self.observations.config = config
        self._zero_series(config)

    def _zero_series(self, config: Config) -> None:
        """Counters exist from the start, so that the first error is an increase alerts can see."""
        for check in config.checks:
            self.check_errors.labels(check)
        for channel in config.notifiers:
            for result in ("sent", "failed", "dead"):
                self.notices.labels(channel, result)

    def record(self, result: CheckResult, duration: float, ok: bool, now: float) -> None:
        self.check_duration.labels(result.check).observe(duration)
        if ok:
            self.last_success.labels(result.check).set(now)
            self.observations.replace(result.check, result.observations)
        else:
            self.check_errors.labels(result.check).inc()

    def count_open(self, severities: Iterable[str]) -> None:
        counts = {"warning": 0, "critical": 0}
        for severity in severities:
            counts[severity] = counts.get(severity, 0) + 1
        for severity, count in counts.items():
            self.incidents_open.labels(severity).set(count)


class _Observations:
    """A custom collector: the latest observations of each check, with the owner's department."""

    def __init__(self, config: Config):
        self.config = config
        self.latest: dict[str, tuple[Observation, ...]] = {}
        self.lock = threading.Lock()

    def replace(self, check: str, observations: Iterable[Observation]) -> None:
        with self.lock:
            self.latest[check] = tuple(observations)

    def describe(self):
        return []

    def collect(self):
        with self.lock:
            latest = dict(self.latest)
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for check, observations in latest.items():
            declared = _declared(self.config, check)
            for obs in observations:
                spec = declared.get(obs.name) or Metric(obs.name, obs.unit, f"{obs.name} ({check} check).")
                labels = {**obs.labels, "department": self._department(check, obs.labels)}
                name = PREFIX + obs.name
                family = families.get(name)
                if family is None:
                    kind = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
                    family = families[name] = kind(name, spec.help, labels=sorted(labels))
                family.add_metric([labels[key] for key in sorted(labels)], obs.value)
        yield from families.values()

    def _department(self, check: str, labels: Mapping[str, str]) -> str:
        config = self.config
        owners = [r.owner for r in config.resources_for(check, labels)]
        owner = owners[0] if owners else config.agent.default_owner
        return config.owners[owner].department


def _declared(config: Config, check: str) -> dict[str, Metric]:
    try:
        return {m.name: m for m in config.registry.check(check).metrics}
    except KeyError:
        return {}
