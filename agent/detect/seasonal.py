"""Weekly seasonal profile: what this hour of this weekday usually looks like."""

from __future__ import annotations

import math

WEEK = 7 * 86400
_READY = 9  # tenths of the week's slots seen before the profile may be used (gaps happen)


class SeasonalProfile:
    """An hour-of-week profile (168 slots) learnt by clipped exponential averaging.

    `deseasonalise` returns the value minus its slot's usual level, but only once
    the profile explains the series: its residuals must vary much less than the
    value varies around its own one-day mean (with hysteresis, so the choice
    rarely flips). A trending or random-walk series is better explained by its
    recent level than by last week, and stays as it is. Series
    without a weekly or daily rhythm pass through unchanged. Clipping the
    updates keeps a single anomaly from teaching the profile a false rhythm.
    """

    __slots__ = ("slot_seconds", "alpha", "slots", "filled", "last_ts", "last_step", "decay", "mean", "raw_var", "res_var", "active")

    def __init__(self, slot_seconds: int = 3600, alpha: float = 0.25) -> None:
        self.slot_seconds = slot_seconds
        self.alpha = alpha
        self.slots: list[float | None] = [None] * (WEEK // slot_seconds)
        self.filled = 0
        self.last_ts = math.nan
        self.last_step = 0.0
        self.decay = 0.0
        self.mean = math.nan
        self.raw_var = 0.0
        self.res_var = 0.0
        self.active = False

    def deseasonalise(self, ts: float, value: float) -> float:
        """The value with its weekly rhythm removed (or as is), then learn from it."""
        index = int(ts % WEEK) // self.slot_seconds
        usual = self.slots[index]
        if self.mean != self.mean:
            self.mean = value
            self.last_ts = ts
        deviation = value - self.mean
        step = ts - self.last_ts
        self.last_ts = ts
        if step != self.last_step:  # regular sampling: one exp() per series, not per point
            self.last_step = step
            self.decay = 1.0 - math.exp(-step / 86400.0) if step > 0.0 else 0.0
        self.mean += deviation * self.decay
        self.raw_var += 0.002 * (deviation * deviation - self.raw_var)
        if usual is None:
            self.slots[index] = value
            self.filled += 1
            if self.filled == _READY * len(self.slots) // 10:
                self.res_var = self.raw_var  # undecided: residuals as wild as the raw series
            return value
        residual = value - usual
        if 10 * self.filled >= _READY * len(self.slots):
            self.res_var += 0.002 * (residual * residual - self.res_var)
            ratio = self.res_var / self.raw_var if self.raw_var > 0.0 else 1.0
            self.active = ratio < (0.6 if self.active else 0.4)
        bound = 3.0 * math.sqrt(self.res_var) if self.res_var > 0.0 else math.inf
        self.slots[index] = usual + self.alpha * max(-bound, min(bound, residual))
        return residual + self.mean if self.active else value

    def to_state(self) -> dict:
        """JSON-serialisable state (NaN written as null)."""
        return {
            "slot_seconds": self.slot_seconds, "alpha": self.alpha, "slots": list(self.slots),
            "filled": self.filled, "last_ts": _json_float(self.last_ts),
            "last_step": self.last_step, "decay": self.decay, "mean": _json_float(self.mean),
            "raw_var": self.raw_var, "res_var": self.res_var, "active": self.active,
        }

    @classmethod
    def from_state(cls, state: dict) -> SeasonalProfile:
        """Rebuild a profile saved by `to_state`."""
        profile = cls(int(state["slot_seconds"]), float(state["alpha"]))
        profile.slots = list(state["slots"])
        profile.filled = int(state["filled"])
        profile.last_ts = math.nan if state["last_ts"] is None else state["last_ts"]
        profile.last_step = state["last_step"]
        profile.decay = state["decay"]
        profile.mean = math.nan if state["mean"] is None else state["mean"]
        profile.raw_var = state["raw_var"]
        profile.res_var = state["res_var"]
        profile.active = bool(state["active"])
        return profile


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value
