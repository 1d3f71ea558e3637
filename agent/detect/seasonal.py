"""Weekly seasonal profile: what this hour of this weekday usually looks like."""

from __future__ import annotations

import math

WEEK = 7 * 86400
_READY_TENTHS = 9  # tenths of the week's slots seen before the profile may be used (gaps happen)
_VAR_RATE = 0.002  # weight of one point in the variance estimates (~500 points of memory)
_ON, _OFF = 0.4, 0.6  # residual/raw variance ratios that switch the profile on and off
_CLIP2 = 9.0  # squared clip, in residual sigmas, of one point's pull on its slot


class SeasonalProfile:
    """An hour-of-week profile (168 slots) learnt by clipped exponential averaging.

    `deseasonalise` returns the value minus its slot's usual level, but only once
    the profile explains the series: its residuals must vary much less than the
    value varies around its own one-day mean (with hysteresis, so the choice
    rarely flips). A trending, random-walk or rhythm-less series is better
    explained by its recent level than by last week, and passes through
    unchanged. Clipping the updates keeps a single anomaly from teaching the
    profile a false rhythm.
    """

    __slots__ = ("slot_seconds", "alpha", "slots", "filled", "ready", "last_ts", "last_step", "decay",
                 "mean", "raw_var", "res_var", "active")

    def __init__(self, slot_seconds: int = 3600, alpha: float = 0.25) -> None:
        self.slot_seconds = slot_seconds
        self.alpha = alpha
        self.slots: list[float | None] = [None] * (WEEK // slot_seconds)
        self.filled = 0
        self.ready = False
        self.last_ts: float | None = None
        self.last_step = 0.0
        self.decay = 0.0
        self.mean = 0.0
        self.raw_var = 0.0
        self.res_var = 0.0
        self.active = False

    def deseasonalise(self, ts: float, value: float) -> float:
        """The value with its weekly rhythm removed (or as is), then learn from it."""
        if self.last_ts is None:
            self.last_ts = ts
            self.mean = value
        step = ts - self.last_ts
        self.last_ts = ts
        if step != self.last_step:  # regular sampling: one exp() per series, not per point
            self.last_step = step
            self.decay = 1.0 - math.exp(-step / 86400.0) if step > 0.0 else 0.0
        mean = self.mean
        deviation = value - mean
        self.mean = mean = mean + deviation * self.decay
        raw_var = self.raw_var = self.raw_var + _VAR_RATE * (deviation * deviation - self.raw_var)

        slots = self.slots
        index = int(ts % WEEK) // self.slot_seconds
        usual = slots[index]
        if usual is None:
            slots[index] = value
            self.filled += 1
            if not self.ready and 10 * self.filled >= _READY_TENTHS * len(slots):
                self.ready = True
                self.res_var = raw_var  # undecided: residuals as wild as the raw series
            return value
        residual = value - usual
        square = residual * residual
        if self.ready:
            res_var = self.res_var = self.res_var + _VAR_RATE * (square - self.res_var)
            self.active = res_var < (_OFF if self.active else _ON) * raw_var
            if square > _CLIP2 * res_var:
                residual = math.copysign(math.sqrt(_CLIP2 * res_var), residual)
            slots[index] = usual + self.alpha * residual
            if self.active:
                return value - usual + mean
            return value
        slots[index] = usual + self.alpha * residual
        return value

    def to_state(self) -> dict:
        """JSON-serialisable state."""
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_state(cls, state: dict) -> SeasonalProfile:
        """Rebuild a profile saved by `to_state`."""
        profile = cls(int(state["slot_seconds"]), float(state["alpha"]))
        for name in cls.__slots__:
            setattr(profile, name, state[name])
        profile.slots = list(profile.slots)
        return profile
