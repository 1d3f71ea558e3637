"""The per-series detector the daemon and `agent backtest` both run."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict
from typing import NamedTuple

from agent.detect.baseline import RobustGauge
from agent.detect.params import DetectorParams
from agent.detect.policy import AlertPolicy
from agent.detect.seasonal import SeasonalProfile
from agent.detect.trend import TrendGauge

STATE_VERSION = 1


class Verdict(NamedTuple):
    """One point's outcome: score in [0, 1], whether a notice opens, and what was seen.

    `kind` names the strongest input: `spike`, `dip`, `level_shift`, `jump` or
    `trend` (empty when nothing stands out).
    """

    score: float
    alert: bool
    kind: str


_QUIET = Verdict(0.0, False, "")


class SeriesDetector:
    """Online, causal anomaly detector for one series, O(window) memory.

    Three inputs are scored against their own robust baselines: the value
    (spikes and dips; deseasonalised when the series has a weekly rhythm), a
    short moving mean (level shifts that single points hide in noise) and the
    first difference (sudden jumps). A point is anomalous when one input is both
    far out (robust z >= threshold) and a new extreme of its window; a growth
    rate far above the series' own past rates for `trend_persistence` points is
    anomalous too. `AlertPolicy` decides which anomalous points open a notice.
    """

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.params = params = params or DetectorParams()
        self.profile = SeasonalProfile()
        self.level = RobustGauge(params.window)
        self.shift = RobustGauge(params.window)
        self.jump = RobustGauge(params.window)
        self.trend = TrendGauge(params.trend_span, params.window, params.trend_span // 8)
        self.recent: deque[float] = deque(maxlen=params.smooth)
        self.recent_sum = 0.0
        self.last_raw: float | None = None
        self.trend_streak = 0
        self.policy = AlertPolicy(params.warmup, params.cooldown, params.persistence)

    def update(self, ts: float, value: float) -> Verdict:
        """Score the point at epoch seconds `ts` (only the past is used), then learn it."""
        if not math.isfinite(value):
            return _QUIET
        params = self.params
        threshold = params.threshold
        last_raw = self.last_raw
        self.last_raw = value
        level = self.profile.deseasonalise(ts, value) if params.seasonal else value
        recent = self.recent
        if len(recent) == recent.maxlen:
            self.recent_sum -= recent[0]
        recent.append(level)
        self.recent_sum += level

        z, extreme = self.level.observe(level)
        anomalous = extreme and abs(z) >= threshold
        best, kind = abs(z), "spike" if z > 0.0 else "dip"
        z, extreme = self.shift.observe(self.recent_sum / len(recent))
        z = abs(z)
        if extreme and z >= threshold and not anomalous:
            anomalous, best, kind = True, max(best, z), "level_shift"
        elif z > best and not anomalous:
            best, kind = z, "level_shift"
        z, extreme = self.jump.observe(0.0 if last_raw is None else value - last_raw)
        z = abs(z)
        if extreme and z >= threshold and not anomalous:
            anomalous, best, kind = True, max(best, z), "jump"
        elif z > best and not anomalous:
            best, kind = z, "jump"
        z, rate = self.trend.observe(value)
        # Growth must also move the value, over the span, beyond its usual spread:
        # quantised series whose past rates were all zero would otherwise trip.
        grows = z >= params.trend_threshold and rate * params.trend_span >= self.level.spread()
        self.trend_streak = self.trend_streak + 1 if grows else 0
        if self.trend_streak == params.trend_persistence and not anomalous:
            anomalous, best, kind = True, max(best, threshold), "trend"

        alert = self.policy.step(anomalous)
        return Verdict(best / (best + threshold), alert, kind if best > 0.0 else "")

    def to_state(self) -> dict:
        """Everything needed to continue after a restart, as JSON-serialisable data."""
        return {
            "version": STATE_VERSION,
            "params": asdict(self.params),
            "profile": self.profile.to_state(),
            "level": self.level.to_state(),
            "shift": self.shift.to_state(),
            "jump": self.jump.to_state(),
            "trend": self.trend.to_state(),
            "recent": list(self.recent),
            "recent_sum": self.recent_sum,
            "last_raw": self.last_raw,
            "trend_streak": self.trend_streak,
            "policy": self.policy.to_state(),
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
        detector.jump = RobustGauge.from_state(state["jump"])
        detector.trend = TrendGauge.from_state(state["trend"])
        detector.recent.extend(state["recent"])
        detector.recent_sum = state["recent_sum"]
        detector.last_raw = state["last_raw"]
        detector.trend_streak = state["trend_streak"]
        detector.policy.restore(state["policy"])
        return detector
