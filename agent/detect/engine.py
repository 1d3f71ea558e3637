"""The per-series detector the daemon and `agent backtest` both run."""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

from agent.detect.baseline import RobustGauge
from agent.detect.params import DetectorParams
from agent.detect.policy import AlertPolicy
from agent.detect.seasonal import SeasonalProfile


class Verdict(NamedTuple):
    """One point's outcome: score in [0, 1], whether a notice opens, and which input saw it."""

    score: float
    alert: bool
    kind: str


_QUIET = Verdict(0.0, False, "")
_INPUTS = ("level", "shift", "jump")


class SeriesDetector:
    """Online, causal anomaly detector for one series, O(window) memory.

    Three inputs are scored against their own robust baselines: the value
    (spikes and dips), a short moving mean (level shifts that single points
    hide in noise) and the first difference (sudden jumps). A point is
    anomalous when one input is both far out (robust z >= threshold) and a new
    extreme of its window; `AlertPolicy` decides which anomalous points open
    a notice.
    """

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.params = params = params or DetectorParams()
        self.gauges = tuple(RobustGauge(params.window) for _ in _INPUTS)
        self.recent: deque[float] = deque(maxlen=params.smooth)
        self.recent_sum = 0.0
        self.last_raw = math.nan
        self.profile = SeasonalProfile()
        self.policy = AlertPolicy(params.warmup, params.cooldown, params.persistence)

    def update(self, ts: float, value: float) -> Verdict:
        """Score the point at epoch seconds `ts` and learn from it."""
        if not math.isfinite(value):
            return _QUIET
        raw = value
        if self.params.seasonal:
            value = self.profile.deseasonalise(ts, value)
        recent = self.recent
        if len(recent) == recent.maxlen:
            self.recent_sum -= recent[0]
        recent.append(value)
        self.recent_sum += value
        inputs = (value, self.recent_sum / len(recent), raw - self.last_raw if self.last_raw == self.last_raw else 0.0)
        self.last_raw = raw
        threshold = self.params.threshold
        best = 0.0
        kind = ""
        anomalous = False
        for name, gauge, x in zip(_INPUTS, self.gauges, inputs):
            z, extreme = gauge.observe(x)
            if z < 0.0:
                z = -z
            if z > best:
                best = z
                if not anomalous:
                    kind = name
            if extreme and z >= threshold and not anomalous:
                anomalous = True
                kind = name
        alert = self.policy.step(anomalous)
        return Verdict(best / (best + threshold), alert, kind if best > 0.0 else "")
