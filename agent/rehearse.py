"""Rehearsing incident timelines: days of a scenario in seconds, on a simulated clock.

Only time and the measured numbers are simulated. Each check judges its scripted
measurements with its own code (a check class offers `rehearsal(config, script)`),
and everything after that is the production path: runner → incidents → dispatch
→ composer → outbox (retries, quiet hours, ordering) → a recording channel that
keeps what each owner would receive, and when. IT's actions (ack, note, silence,
resolve) and daemon restarts happen at scripted moments through the same code the
commands use.

A scenario file:

    start: 2026-11-23T08:00:00+01:00   # ISO-8601 with a zone
    duration: 4d
    config: {...}                      # the agent's config (or -c FILE)
    measure:                           # per check, per resource, per field: a number or [[at, value], ...]
      disk:
        /srv/finance: {size: 1TB, used: [[0h, 700GB], [60h, 990GB], [62h, 500GB]]}
    events:
      - {at: 30h, ack: true}
      - {at: 31h, note: "IT moves old archives tonight", by: Marco}
      - {at: 40h, restart: true}
      - {at: 45h, silence: {resource: /srv/finance}, for: 2h}
      - {at: 50h, resolve: true, fix: "archives moved to the NAS"}

Values between two points are interpolated linearly; sizes take units (GB, TiB).
"""

from __future__ import annotations

import bisect
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from agent.api import ConfigError, Delivery, Notice
from agent.clock import parse_moment
from agent.config import Config, parse_config
from agent.dispatch import add_silence
from agent.lifecycle import Lifecycle
from agent.outbox import Outbox
from agent.runner import Runner
from agent.store import Store
from agent.units import parse_duration, parse_size

EVENT_KINDS = ("ack", "note", "silence", "resolve", "restart")
HOUSEKEEPING_EVERY = 300.0
"""Between check runs, escalations, notes and held notices are looked at every 5 simulated minutes."""


@dataclass(frozen=True, slots=True)
class Series:
    """One measured field over time: (seconds from start, value) points, interpolated linearly."""

    points: tuple[tuple[float, float], ...]

    def at(self, offset: float) -> float:
        times = [t for t, _ in self.points]
        i = bisect.bisect_right(times, offset)
        if i == 0:
            return self.points[0][1]
        if i == len(self.points):
            return self.points[-1][1]
        (t0, v0), (t1, v1) = self.points[i - 1], self.points[i]
        return v0 + (v1 - v0) * (offset - t0) / (t1 - t0)


@dataclass(frozen=True, slots=True)
class Step:
    """Something IT or the host does at a moment of the scenario."""

    at: float
    kind: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class Scenario:
    start: float
    duration: float
    config: Config
    measure: Mapping[str, Mapping[str, Mapping[str, Series]]]
    events: tuple[Step, ...] = ()
    name: str = "scenario"

    def script(self, check: str) -> Callable[[float], dict[str, dict[str, float]]]:
        """The check's measurements at a moment: {resource: {field: value}}; a resource exists from its first point."""
        resources = self.measure.get(check, {})

        def at(now: float) -> dict[str, dict[str, float]]:
            offset = now - self.start
            return {name: {key: series.at(offset) for key, series in fields.items()}
                    for name, fields in resources.items()
                    if min(s.points[0][0] for s in fields.values()) <= offset}
        return at


@dataclass(frozen=True, slots=True)
class Delivered:
    """A notice as its owner received it: when, and through which channel."""

    at: float
    channel: str
    notice: Notice


@dataclass
class Transcript:
    scenario: Scenario
    delivered: list[Delivered] = field(default_factory=list)
    runs: int = 0
    open_at_end: set[tuple[str, str]] = field(default_factory=set)
    """(check, resource) of the incidents still open when the scenario ended."""

    def for_owner(self, owner: str) -> list[Delivered]:
        return [d for d in self.delivered if d.notice.owner == owner]


class _Recorder:
    """The channel of a rehearsal: keeps what would have been sent."""

    def __init__(self, name: str, transcript: Transcript, clock: Callable[[], float]):
        self.name, self.transcript, self.clock = name, transcript, clock

    def send(self, notice: Notice) -> Delivery:
        self.transcript.delivered.append(Delivered(self.clock(), self.name, notice))
        return Delivery(self.name)


class _RehearsalOutbox(Outbox):
    """The production outbox, whose channels record instead of sending."""

    def __init__(self, store: Store, config: Config, clock: Callable[[], float], transcript: Transcript):
        super().__init__(store, config, clock=clock)
        self.transcript = transcript

    def notifier(self, channel: str) -> _Recorder:
        return _Recorder(channel, self.transcript, self.clock)


class SimClock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def rehearse(scenario: Scenario, state_dir: Path | None = None) -> Transcript:
    """Plays the scenario through the production path; returns what every owner received."""
    with tempfile.TemporaryDirectory(prefix="forewarn-rehearsal-") as scratch:
        return _Player(scenario, Path(state_dir or scratch)).play()


class _Player:
    def __init__(self, scenario: Scenario, state_dir: Path):
        self.scenario, self.state_dir = scenario, state_dir
        self.clock = SimClock(scenario.start)
        self.transcript = Transcript(scenario)
        self.tick = min([60.0] + [cfg.interval for cfg in scenario.config.checks.values() if cfg.enabled])

    def play(self) -> Transcript:
        config, end = self.scenario.config, self.scenario.start + self.scenario.duration
        due = {name: self.scenario.start for name, cfg in config.checks.items() if cfg.enabled}
        pending = sorted(self.scenario.events, key=lambda s: s.at)
        self._boot()
        try:
            while self.clock.now <= end:
                now = self.clock.now
                while pending and self.scenario.start + pending[0].at <= now:
                    self._act(pending.pop(0), now)
                ran = False
                for name, when in due.items():
                    if when <= now:
                        result = self.runner.run(name)
                        self.transcript.runs += 1
                        self.lifecycle.handle(result, now)
                        due[name], ran = now + config.checks[name].interval, True
                if ran or (now - self.scenario.start) % HOUSEKEEPING_EVERY < self.tick:
                    self.lifecycle.housekeeping(now)
                    self.outbox.deliver_due(now)
                self.clock.now += self.tick
            self.transcript.open_at_end = {i.resource_key for i in self.lifecycle.incidents.open_incidents()}
        finally:
            self._shutdown()
        return self.transcript

    def _boot(self) -> None:
        config = self.scenario.config
        self.store = Store(self.state_dir)
        self.outbox = _RehearsalOutbox(self.store, config, self.clock, self.transcript)
        self.lifecycle = Lifecycle(config, self.store, self.outbox)
        self.runner = Runner(config, self.store, self.clock, build=self._build, isolate=False)

    def _build(self, cls: type, cfg: Any) -> Any:
        rehearsal = getattr(cls, "rehearsal", None)
        if rehearsal is None:
            raise ConfigError([f"{self.scenario.name}: the {cls.name} check cannot be rehearsed yet"])
        return rehearsal(cfg, self.scenario.script(cls.name))

    def _shutdown(self) -> None:
        self.runner.close()
        self.store.close()

    def _act(self, step: Step, now: float) -> None:
        incidents = self.lifecycle.incidents
        targets = [i for i in incidents.open_incidents()
                   if not step.args.get("resource") or i.finding.resource == step.args["resource"]]
        by = str(step.args.get("by", "it"))
        if step.kind == "restart":
            self._shutdown()
            self._boot()
        elif step.kind == "ack":
            for incident in targets:
                incidents.ack(incident.id, by)
        elif step.kind == "note":
            for incident in targets:
                incidents.note(incident.id, str(step.args["note"]), by, now)
        elif step.kind == "silence":
            matcher = {str(k): str(v) for k, v in dict(step.args["silence"]).items()}
            add_silence(self.store, matcher, now, now + parse_duration(step.args.get("for", "2h")), by, "rehearsal")
        elif step.kind == "resolve":  # as IT would: one `agent resolve` per troubled resource
            for incident in {i.resource_key: i for i in targets}.values():
                self.lifecycle.resolve(incident.id, str(step.args.get("fix", "")), now)


# ------------------------------------------------------------------ loading


def load_scenario(path: str, config: Config | None = None) -> Scenario:
    """Reads a scenario file; every problem is a line naming the file and key."""
    import yaml

    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{source}: scenario file not found"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"{source}: cannot read the scenario ({exc.__class__.__name__})"]) from None
    return parse_scenario(data, source, config)


def parse_scenario(data: Any, source: str, config: Config | None = None) -> Scenario:
    from agent.registry import default_registry

    if not isinstance(data, dict):
        raise ConfigError([f"{source}: a scenario is a mapping with start, duration, measure and events"])
    problems: list[str] = []
    unknown = set(data) - {"start", "duration", "config", "measure", "events", "name"}
    problems += [f"{source}: {key}: unknown key" for key in sorted(unknown, key=str)]
    start = _field(problems, source, "start", lambda v: parse_moment(str(v)), data.get("start"))
    duration = _field(problems, source, "duration", parse_duration, data.get("duration", "1d"))
    if config is None:
        try:
            config = parse_config(data.get("config") or {}, f"{source}: config", default_registry())
        except ConfigError as exc:
            problems += exc.problems
    measure: dict[str, dict[str, dict[str, Series]]] = {}
    for check, resources in (data.get("measure") or {}).items():
        for resource, fields in (resources or {}).items():
            for key, spec in (fields or {}).items():
                where = f"measure.{check}.{resource}.{key}"
                series = _field(problems, source, where, _series, spec)
                if series is not None:
                    measure.setdefault(str(check), {}).setdefault(str(resource), {})[str(key)] = series
    events = []
    for i, raw in enumerate(data.get("events") or []):
        kinds = [k for k in EVENT_KINDS if isinstance(raw, dict) and k in raw]
        if len(kinds) != 1 or "at" not in raw:
            problems.append(f"{source}: events.{i}: needs `at` and one of {', '.join(EVENT_KINDS)} (got {raw!r})")
            continue
        at = _field(problems, source, f"events.{i}.at", parse_duration, raw["at"])
        if at is not None:
            events.append(Step(at, kinds[0], raw))
    if problems:
        raise ConfigError(problems)
    return Scenario(start, duration, config, measure, tuple(events), name=source)


def _field(problems: list[str], source: str, where: str, parse: Callable[[Any], Any], value: Any) -> Any:
    try:
        if value is None:
            raise ValueError("required")
        return parse(value)
    except (ValueError, TypeError, ConfigError) as exc:
        message = exc.problems[0] if isinstance(exc, ConfigError) else str(exc)
        problems.append(f"{source}: {where}: {message} (got {value!r})")
        return None


def _number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return float(parse_size(str(value)))


def _series(spec: Any) -> Series:
    if not isinstance(spec, list):
        return Series(((0.0, _number(spec)),))
    points = []
    for point in spec:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise ValueError("points are [at, value] pairs")
        points.append((parse_duration(point[0]), _number(point[1])))
    if not points or any(b[0] <= a[0] for a, b in zip(points, points[1:])):
        raise ValueError("points must be given in time order, at least one")
    return Series(tuple(points))
