"""The per-series detector the daemon and `agent backtest` both run."""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

from agent.detect.baseline import RobustGauge
from agent.detect.params import DetectorParams
from agent.detect.policy import AlertPolicy
from agent.detect.record import RecordSpan
from agent.detect.seasonal import SeasonalProfile
from agent.detect.trend import TrendGauge

STATE_VERSION = 3


class Verdict(NamedTuple):
    """One point's outcome: score in [0, 1], whether a notice opens, and what was seen.

    `kind` names what made this point anomalous: `spike` or `dip` (the value),
    `shift_up` or `shift_down` (its short moving mean), or `trend` (faster
    growth than this series has shown); empty for a normal point. `episode` is the kind of the episode
    an alert opened and that still lasts (empty when none): what a check reports
    as a finding from one run to the next, so the incident stays open while
    the anomaly does and closes once it has passed.
    """

    score: float
    alert: bool
    kind: str
    episode: str = ""


_QUIET = Verdict(0.0, False, "")
_CLEAR = 0.5
"""An episode lasts while its input stays at least this share of the threshold out (hysteresis)."""
_LIMIT = 1e150
"""Inputs are clipped to +-this: squares of differences of any two stay finite, so every score does."""
_UP = frozenset({"spike", "shift_up", "trend"})


class SeriesDetector:
    """Online, causal anomaly detector for one series, O(window) memory.

    Two inputs are scored against their own robust baselines: the value (spikes
    and dips; deseasonalised when the series has a weekly rhythm) and a short
    moving mean (level shifts that single points hide in noise). A point is
    anomalous when one input is far out (robust z >= threshold), a new extreme
    of its window, and beyond every value that input took over the last
    `horizon` points: on a calm series a point that far out is such a record
    anyway, while an always-bursty (heavy-tailed) series needs a burst larger
    than all its recent ones, so each series calibrates itself. Records are
    learnt from ordinary points only (not during warm-up nor an open episode),
    so a second incident as large as the first is still news. A growth rate far
    above the series' own past rates for `trend_persistence` points is
    anomalous too. A business `floor` keeps an upward anomaly below it from
    opening an episode (and so from using up the cooldown). (A first-difference
    input was tried: on nab-dev it added false alarms and found nothing new.)
    `AlertPolicy` decides which anomalous points open a notice.
    """

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.params = params = params or DetectorParams()
        self.profile = SeasonalProfile()
        self._fresh_baselines()
        self.trend = TrendGauge(params.trend_span, params.window, params.trend_span // 8)
        self.trend_streak = 0
        self.policy = AlertPolicy(params.warmup, params.cooldown, params.persistence)
        self.last_ts: float | None = None
        """Newest point learnt: a caller replaying stored history feeds only what is newer."""
        self.episode = ""
        self.profiled = False
        """Whether the seasonal profile has been in use (the baselines were then learnt anew)."""

    def _fresh_baselines(self) -> None:
        """Empty baselines for the value and its moving mean, as at the start."""
        params = self.params
        self.level = RobustGauge(params.window)
        self.shift = RobustGauge(params.window)
        self.level_record = RecordSpan(params.horizon)
        self.shift_record = RecordSpan(params.horizon)
        self.recent: deque[float] = deque(maxlen=params.smooth)
        self.recent_sum = 0.0

    def update(self, ts: float, value: float) -> Verdict:
        """Score the point at epoch seconds `ts` (only the past is used), then learn it."""
        if not math.isfinite(value):
            return _QUIET
        value = min(max(value, -_LIMIT), _LIMIT)
        params = self.params
        threshold = params.threshold
        if params.seasonal:
            level = self.profile.deseasonalise(ts, value)
            if self.profile.active and not self.profiled:
                # The first time the rhythm is removed, the baselines hold only raw values (a week
                # of them or more): a deseasonalised value measured against those would hide
                # anomalies, as a flattened daily peak, for a whole window. Learn them anew.
                self.profiled = True
                self._fresh_baselines()
                self.policy.restart_warmup()
        else:
            level = value
        recent = self.recent
        if len(recent) == recent.maxlen:
            self.recent_sum -= recent[0]
        recent.append(level)
        self.recent_sum += level

        mean = self.recent_sum / len(recent)
        z_level, out_level = self.level.observe(level)
        z_shift, out_shift = self.shift.observe(mean)
        level_up, shift_up = z_level > 0.0, z_shift > 0.0
        if params.horizon:
            ordinary = not self.episode and self.policy.seen >= params.warmup
            out_level = self.level_record.step(level, level_up, ordinary) and out_level
            out_shift = self.shift_record.step(mean, shift_up, ordinary) and out_shift
        z_trend, rate = self.trend.observe(value)
        z_level, z_shift = abs(z_level), abs(z_shift)
        # Growth must also move the value, over the span, beyond its usual spread:
        # quantised series whose past rates were all zero would otherwise trip.
        if z_trend >= params.trend_threshold and rate * params.trend_span >= self.level.spread():
            self.trend_streak += 1
        else:
            self.trend_streak = 0

        if out_level and z_level >= threshold:
            kind, best = "spike" if level_up else "dip", z_level
        elif out_shift and z_shift >= threshold:
            kind, best = "shift_up" if shift_up else "shift_down", z_shift
        elif params.trend_persistence and self.trend_streak == params.trend_persistence:
            kind, best = "trend", threshold
        else:
            kind, best = "", max(z_level, z_shift)
        if kind in _UP and params.floor is not None and value < params.floor:
            kind = ""
        alert = self.policy.step(bool(kind))
        self.last_ts = ts
        if alert:
            self.episode = kind
        elif self.episode:
            self.episode = self._lasting(z_level, level_up, z_shift, shift_up, z_trend)
        return Verdict(best / (best + threshold) if best > 0.0 else 0.0, alert, kind, self.episode)

    def episode_length(self) -> int:
        """Points the open episode has lasted, its opening point included (0 when none is open)."""
        return self.policy.since_alert + 1 if self.episode else 0

    def usual(self) -> float | None:
        """The series' typical value: median of its bounded history (rhythm removed); None before any point."""
        ordered = self.level.ordered
        return ordered[len(ordered) >> 1] if ordered else None

    def _lasting(self, z_level: float, level_up: bool, z_shift: float, shift_up: bool, z_trend: float) -> str:
        """The open episode's kind while its input is still well out the same way, else ''."""
        episode, params = self.episode, self.params
        if episode == "trend":
            still = z_trend >= _CLEAR * params.trend_threshold
        elif episode in ("shift_up", "shift_down"):
            still = z_shift >= _CLEAR * params.threshold and shift_up == (episode == "shift_up")
        else:
            still = z_level >= _CLEAR * params.threshold and level_up == (episode == "spike")
        return episode if still else ""

    def to_state(self) -> dict:
        """Everything needed to continue after a restart, as JSON-serialisable data."""
        return {
            "version": STATE_VERSION,
            "params": self.params._asdict(),
            "profile": self.profile.to_state(),
            "level": self.level.to_state(),
            "shift": self.shift.to_state(),
            "level_record": self.level_record.to_state(),
            "shift_record": self.shift_record.to_state(),
            "trend": self.trend.to_state(),
            "recent": list(self.recent),
            "recent_sum": self.recent_sum,
            "trend_streak": self.trend_streak,
            "policy": self.policy.to_state(),
            "last_ts": self.last_ts,
            "episode": self.episode,
            "profiled": self.profiled,
        }

    @classmethod
    def from_state(cls, state: dict) -> SeriesDetector:
        """Rebuild a detector saved by `to_state`; it continues exactly where it stopped."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported detector state version {state.get('version')!r}")
        detector = cls(DetectorParams(**state["params"]))
        detector.profile = SeasonalProfile.from_state(state["profile"])
        detector.level = RobustGauge.from_state(state["level"])
        detector.shift = RobustGauge.from_state(state["shift"])
        detector.level_record = RecordSpan.from_state(state["level_record"])
        detector.shift_record = RecordSpan.from_state(state["shift_record"])
        detector.trend = TrendGauge.from_state(state["trend"])
        detector.recent.extend(state["recent"])
        detector.recent_sum = state["recent_sum"]
        detector.trend_streak = state["trend_streak"]
        detector.policy.restore(state["policy"])
        detector.last_ts = state["last_ts"]
        detector.episode = state["episode"]
        detector.profiled = state["profiled"]
        return detector
