"""The public API of the engine: the only module that checks and notifiers import.

Plain data is frozen dataclasses; config models (`CheckConfig`, `NotifierConfig`
and the unit types) are dataclasses too, checked at the config boundary by the
small walker in agent.schema (see its docstring for how to write one).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, ClassVar, Literal, Mapping, Protocol

from agent.errors import CheckError, ConfigError, ForewarnError, NotifyError, StateError
from agent.detect.bank import DetectorBank
from agent.detect.engine import SeriesDetector, Verdict
from agent.detect.forecast import Trend, growth_trend
from agent.detect.params import DetectorParams, preset
from agent.printable import printable
from agent.schema import Field, Invalid, Limit, Model, Parse, Refused, field_check, model_check, split_url
from agent.secrets import read_secret
from agent.units import format_bytes, format_duration, parse_duration, parse_percent, parse_size

__all__ = [  # what plugins may use; anything else in agent/ is the engine's own
    "ForewarnError", "ConfigError", "StateError", "CheckError", "NotifyError",
    "Duration", "Percent", "Size", "CheckConfig", "DetectionConfig", "NotifierConfig",
    "Model", "Field", "Limit", "Parse", "Invalid", "Refused", "field_check", "model_check", "split_url",
    "Status", "Severity", "Metric", "Observation", "Forecast", "Finding", "ResourceStatus", "CheckResult",
    "History", "Context", "Check", "Notice", "Delivery", "Notifier",
    "DetectorParams", "SeriesDetector", "Verdict", "Detectors",
    "Trend", "growth_trend", "read_secret", "printable",
    "format_bytes", "format_duration", "parse_duration", "parse_percent", "parse_size",
]

# ---------------------------------------------------------------- config unit types

Duration = Annotated[float, Parse(parse_duration)]
"""Seconds; written as 30s, 5m, 2h, 1d in the config."""
Percent = Annotated[float, Parse(parse_percent)]
"""A ratio 0..1; written as 85% in the config."""
Size = Annotated[float, Parse(parse_size)]
"""Bytes; written as 500MB or 2GiB in the config."""

MIN_INTERVAL = 1.0
"""Shorter intervals and timeouts are typos (0s ran a check every 0.2 s; a 0s timeout failed every run)."""
MAX_INTERVAL = 7 * 86400.0
"""A check that runs less than weekly is, for a monitor, a check that is off."""


class CheckConfig(Model):
    """Settings every check has. A check's own model subclasses this (see agent.schema for the pattern)."""

    enabled: bool = True
    interval: Duration = 60.0
    timeout: Duration = 30.0
    for_: Duration = Field(180.0, alias="for")
    """How long a condition must hold before it opens an incident."""

    @field_check("interval", "timeout")
    def _sensible_period(cls, name: str, value: float, data: Mapping[str, Any]) -> float:
        if value < MIN_INTERVAL:
            raise ValueError(f"must be at least {MIN_INTERVAL:g}s")
        if value > MAX_INTERVAL:
            raise ValueError(f"must be at most {format_duration(MAX_INTERVAL)}")
        return value

    def match_keys(self) -> tuple[str, ...] | None:
        """The labels this check's findings carry, which `resources[].match` may name (None: not declared)."""
        return None


class DetectionConfig(CheckConfig):
    """Settings of a check that judges "unusual" with the detection engine (a check's model subclasses it)."""

    sensitivity: Literal["low", "medium", "high"] = "medium"
    """How readily the detection engine calls a change unusual, for this check's series."""
    detector: dict[str, float] = {}
    """Expert overrides of `DetectorParams` (e.g. `threshold: 6`), applied after the sensitivity."""

    @field_check("detector")
    def _known_knobs(cls, name: str, value: dict[str, float], data: Mapping[str, Any]) -> dict[str, float]:
        tunable = [f for f in DetectorParams._fields if f != "floor"]  # the floor comes from the check's settings
        for knob, number in value.items():
            if knob not in tunable:
                raise ValueError(f"unknown detector parameter {knob!r} (known: {', '.join(tunable)})")
            default = DetectorParams._field_defaults[knob]
            if isinstance(default, (bool, int)) and number != int(number):
                raise ValueError(f"detector parameter {knob!r} must be a whole number, not {number:g}")
            if number < 0:
                raise ValueError(f"detector parameter {knob!r} must not be negative, not {number:g}")
        return value

    def detector_params(self, base: DetectorParams) -> DetectorParams:
        """This check's detector parameters: its own `medium` base, the sensitivity, then the overrides."""
        params = preset(self.sensitivity, base)
        overrides = {name: type(getattr(params, name))(number) for name, number in self.detector.items()}
        return params._replace(**overrides)


class NotifierConfig(Model):
    """Settings every notifier has. A notifier's own model subclasses this."""

    type: str


# ------------------------------------------------------------------------ data types


class Status(enum.IntEnum):
    """Nagios-compatible status; also the exit code of `agent check`."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def status(self) -> Status:
        return {"info": Status.OK, "warning": Status.WARNING, "critical": Status.CRITICAL}[self.value]

    @property
    def rank(self) -> int:
        return ("info", "warning", "critical").index(self.value)


@dataclass(frozen=True, slots=True)
class Metric:
    """A measured field, declared next to the code that measures it (name, unit, help)."""

    name: str
    unit: str
    help: str
    kind: str = "gauge"

    def observe(self, value: float, labels: Mapping[str, str], timestamp: float) -> Observation:
        return Observation(self.name, float(value), dict(labels), self.unit, timestamp)


@dataclass(frozen=True, slots=True)
class Observation:
    name: str
    value: float
    labels: Mapping[str, str]
    unit: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """When a threshold will be crossed: a best estimate inside a range (unix seconds)."""

    eta: float
    earliest: float
    latest: float
    method: str


@dataclass(frozen=True, slots=True)
class Finding:
    """Something an owner should hear about, with the facts the notice is written from.

    `labels` identify what was measured and are what `resources[].match` compares with;
    `facts` feed the business text; `evidence` is for the technical appendix only.
    `incident` names the incident family, so that e.g. nearly-full and full are one
    incident whose severity changes.
    """

    check: str
    kind: str
    severity: Severity
    resource: str
    labels: Mapping[str, str]
    summary: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    forecast: Forecast | None = None
    incident: str = ""

    @property
    def dedup_key(self) -> str:
        return f"{self.check}/{self.incident or self.kind}/{self.resource}"


@dataclass(frozen=True, slots=True)
class ResourceStatus:
    """One row of the status table: a measured thing and how it is doing."""

    resource: str
    status: Status
    summary: str
    labels: Mapping[str, str] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)
    """The resource's numbers now, in the keys its findings' facts use: a resolution is told with these."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str
    statuses: tuple[ResourceStatus, ...] = ()
    observations: tuple[Observation, ...] = ()
    findings: tuple[Finding, ...] = ()
    error: str = ""
    """Set when the check could not run at all (raised, hung): its incidents are left as they were."""


class Detectors(Protocol):
    """Persisted detection-engine state, one `SeriesDetector` per series key a check chooses."""

    def get(self, key: str, params: DetectorParams) -> SeriesDetector: ...


class History(Protocol):
    """Read access to stored series, oldest first."""

    def series(self, name: str, labels: Mapping[str, str], since: float) -> list[tuple[float, float]]: ...


@dataclass(frozen=True)
class Context:
    """What a check gets for one run. Time is injected so tests can replay history."""

    now: Callable[[], float]
    history: History
    hostname: str
    wanted: tuple[Mapping[str, str], ...] = ()
    """The `match` labels of the configured resources for this check."""
    log: logging.Logger = logging.getLogger("forewarn.check")
    detectors: Detectors = field(default_factory=DetectorBank)
    """This check's detectors by series key; the engine saves them after each run (state DB)."""


class Check(Protocol):
    """A check measures and judges; it never sends anything."""

    name: ClassVar[str]
    Config: ClassVar[type[CheckConfig]]
    metrics: ClassVar[tuple[Metric, ...]]

    def __init__(self, config: CheckConfig) -> None: ...

    def run(self, ctx: Context) -> CheckResult: ...


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to one owner. `body` is the business text; `appendix` is for IT."""

    owner: str
    locale: str
    subject: str
    body: str
    appendix: str
    html: str
    severity: Severity
    incident_id: str
    thread_id: str
    phase: str = "opening"
    """opening | update | escalation | resolution | test"""
    sequence: int = 0
    department: str = ""
    findings: tuple[Finding, ...] = ()
    created: float = 0.0
    replaces: tuple[Finding, ...] = ()
    """What the owner was told before and this notice supersedes (the incident changed kind or severity):
    a channel that keeps state per finding (Alertmanager) ends those."""

    @property
    def text(self) -> str:
        return f"{self.body}\n\n{self.appendix}" if self.appendix else self.body


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a notifier reports after a successful send."""

    channel: str
    detail: str = ""


class Notifier(Protocol):
    """Tries one delivery; raises NotifyError(permanent=...) on failure. Retries live elsewhere."""

    type: ClassVar[str]
    Config: ClassVar[type[NotifierConfig]]

    def __init__(self, name: str, config: NotifierConfig) -> None: ...

    def send(self, notice: Notice) -> Delivery: ...
