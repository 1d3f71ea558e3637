"""Robust baseline: how far a value lies from the recent median, in robust spread units."""

from __future__ import annotations

from agent.detect.window import RollingWindow

# 1 / (2 * 0.6745): turns an inter-quartile range into a Gaussian-equivalent sigma.
_IQR_TO_SIGMA = 0.7413
# 1 / (2 * 1.2816): the same for the 10%..90% range, used when quartiles coincide.
_IDR_TO_SIGMA = 0.3901


def robust_scale(window: RollingWindow) -> float:
    """A sigma-like spread that survives outliers and quantised, mostly-constant series."""
    ordered = window.ordered
    n = len(ordered)
    scale = (ordered[(3 * n) >> 2] - ordered[n >> 2]) * _IQR_TO_SIGMA
    if scale > 0.0:
        return scale
    scale = (ordered[(9 * n) // 10] - ordered[n // 10]) * _IDR_TO_SIGMA
    if scale > 0.0:
        return scale
    # A (nearly) constant history: any change is news, measured against the level itself.
    return max(ordered[-1] - ordered[0], abs(ordered[n >> 1]) * 1e-3, 1e-9)


class RobustGauge:
    """Scores one input stream against its own bounded history.

    `measure` returns the signed robust z-score of a new value and whether it is
    a new extreme of the window (beyond every value seen in it), before the
    value joins the window: the decision uses only the past.
    """

    __slots__ = ("window",)

    def __init__(self, size: int) -> None:
        self.window = RollingWindow(size)

    def measure(self, value: float) -> tuple[float, bool]:
        """(signed z, is a new extreme in the same direction) against the history so far."""
        ordered = self.window.ordered
        if not ordered:
            return 0.0, False
        median = ordered[len(ordered) >> 1]
        z = (value - median) / robust_scale(self.window)
        extreme = value > ordered[-1] if z > 0 else value < ordered[0]
        return z, extreme

    def push(self, value: float) -> None:
        """Let the value join the history."""
        self.window.push(value)

    def to_state(self) -> dict:
        return self.window.to_state()

    @classmethod
    def from_state(cls, state: dict) -> RobustGauge:
        gauge = cls.__new__(cls)
        gauge.window = RollingWindow.from_state(state)
        return gauge
