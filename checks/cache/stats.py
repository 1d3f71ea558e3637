"""Plain robust statistics over probe times: what the tail looks like, and whether it matters.

An average hides "slow one time in fifty"; the share of slow probes and the
high percentiles show it. A finding needs enough probes and a slow share
clearly above noise, so one hiccup on a busy host raises nothing. What is
"unusual" for a target is the detection engine's call (`watch`), fed one
point per run.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

from agent.api import SeriesDetector

UP = ("spike", "shift_up")
DOWN = ("dip", "shift_down")


@dataclass(frozen=True, slots=True)
class Probe:
    at: float
    """When it was sent (the check's clock)."""
    seconds: float
    """How long the answer took; for a failed probe, how long until it failed."""
    ok: bool = True
    fresh: bool = False
    """Sent on a new connection, so the time includes connecting."""


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    failed: int
    slow: int
    median: float
    p95: float
    p99: float
    max: float

    @property
    def slow_share(self) -> float:
        return self.slow / self.count if self.count else 0.0


@dataclass(frozen=True, slots=True)
class PastRun:
    """A run of an earlier process, as its stored observations tell it."""

    at: float
    probes: int
    slow: int


@dataclass(frozen=True, slots=True)
class Tally:
    """Probes and slow probes over the judged window (memory plus earlier runs)."""

    probes: int
    slow: int
    since: float

    @property
    def slow_share(self) -> float:
        return self.slow / self.probes if self.probes else 0.0


@dataclass(frozen=True, slots=True)
class Rules:
    slow_after: float
    min_probes: int = 20
    min_slow: int = 3
    min_slow_share: float = 0.01


@dataclass(frozen=True, slots=True)
class Unusual:
    """What a series' detector says of this run: the episode still open ('' when none), and the usual value."""

    episode: str = ""
    usual: float | None = None
    learnt: int = 0
    """How many runs the usual value is the median of (the detector's bounded history, not its window)."""

    @property
    def up(self) -> bool:
        return self.episode in UP

    @property
    def down(self) -> bool:
        return self.episode in DOWN


def quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); `ordered` is sorted."""
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Iterable[float]) -> float:
    return quantile(sorted(values), 0.5)


def is_slow(probe: Probe, slow_after: float) -> bool:
    return not probe.ok or probe.seconds > slow_after


def summarize(probes: Sequence[Probe], slow_after: float) -> Summary:
    ordered = sorted(p.seconds for p in probes)
    return Summary(
        count=len(probes), failed=sum(not p.ok for p in probes),
        slow=sum(is_slow(p, slow_after) for p in probes),
        median=quantile(ordered, 0.5), p95=quantile(ordered, 0.95), p99=quantile(ordered, 0.99),
        max=ordered[-1] if ordered else math.nan)


class ProbeWindow:
    """The recent probes of one target, bounded in age and count, kept between runs."""

    def __init__(self, span: float, limit: int = 5000):
        self.span = span
        self.probes: deque[Probe] = deque(maxlen=limit)

    def add(self, probes: Iterable[Probe]) -> None:
        self.probes.extend(probes)

    def recent(self, now: float) -> list[Probe]:
        while self.probes and self.probes[0].at < now - self.span:
            self.probes.popleft()
        return list(self.probes)


def tally(window: Sequence[Probe], past: Iterable[PastRun], slow_after: float, now: float, span: float) -> Tally:
    """Counts over the window, adding earlier runs only where memory does not reach (no double count)."""
    oldest = min((p.at for p in window), default=now)
    earlier = [r for r in past if now - span <= r.at < oldest]
    return Tally(probes=len(window) + sum(r.probes for r in earlier),
                 slow=sum(is_slow(p, slow_after) for p in window) + sum(r.slow for r in earlier),
                 since=min([oldest] + [r.at for r in earlier]))


def watch(detector: SeriesDetector, ts: float, value: float) -> Unusual:
    """Feed this run's value (once per run); the usual value is read first, so it is the past's."""
    usual, learnt = detector.usual(), len(detector.level.ordered)
    return Unusual(detector.update(ts, value).episode, usual, learnt)


def watch_seconds(detector: SeriesDetector, ts: float, seconds: float) -> Unusual:
    """Wait times grow by factors, so the detector sees log seconds; the usual value comes back in seconds."""
    seen = watch(detector, ts, math.log(max(seconds, 1e-6)))
    return Unusual(seen.episode, math.exp(seen.usual) if seen.usual is not None else None, seen.learnt)


def latency_kind(summary: Summary, counts: Tally, median: Unusual, rules: Rules) -> str | None:
    """`cache_slow` when typical requests are slow, `cache_latency_spikes` when only some are.

    The typical wait is also slow when the target's detector sees its per-run
    median unusually high and it is at least half of `slow_after`: a jump from
    0.2 ms to 0.6 ms is news to statistics, not to anyone waiting.
    """
    if summary.count == 0:
        return None
    if summary.median > rules.slow_after:
        return "cache_slow"
    if median.up and summary.median >= rules.slow_after / 2:
        return "cache_slow"
    if (counts.probes >= rules.min_probes and counts.slow >= rules.min_slow
            and counts.slow_share >= rules.min_slow_share):
        return "cache_latency_spikes"
    return None
