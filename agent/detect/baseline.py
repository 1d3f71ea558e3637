"""Robust baseline: how far a value lies from the recent median, in robust spread units."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from agent.detect.window import RollingWindow

# 1 / (2 * 0.6745): turns an inter-quartile range into a Gaussian-equivalent sigma.
_IQR_TO_SIGMA = 0.7413
# 1 / (2 * 1.2816): the same for the 10%..90% range, used when quartiles coincide.
_IDR_TO_SIGMA = 0.3901
# Spreads below this are no spread (quartiles of subnormal numbers like 5e-324): dividing by
# one would make a z-score of 1e300 or more, an infinite score and then NaN.
_TINY = 1e-150


def fallback_scale(ordered: list[float]) -> float:
    """Spread of a history whose quartiles coincide (quantised, mostly constant series)."""
    n = len(ordered)
    scale = (ordered[(9 * n) // 10] - ordered[n // 10]) * _IDR_TO_SIGMA
    if scale > _TINY:
        return scale
    # A (nearly) constant history: the mean absolute deviation (x 1.2533, Gaussian sigma)
    # keeps a few rare outliers from setting the scale, so a lasting rise from a flat
    # line stays unusual until it is common; a truly constant one measures any
    # change against the level itself.
    # At least 80% of the values equal the median here, so only the two sorted tails
    # (found by bisection, summed in C) deviate: no pass over the whole window.
    centre = ordered[n >> 1]
    below, above = bisect_left(ordered, centre), bisect_right(ordered, centre)
    total = centre * below - sum(ordered[:below]) + sum(ordered[above:]) - centre * (n - above)
    return max(total / n * 1.2533, abs(centre) * 1e-3, 1e-9)


class RobustGauge(RollingWindow):
    """Scores one input stream against its own bounded history.

    `observe` returns the signed robust z-score of a new value (distance from the
    window's median in IQR-derived sigmas) and whether it is a new extreme of the
    window in that direction, computed before the value joins the window: each
    decision uses only the past. It is the hot path, hence written out inline.
    """

    __slots__ = ()

    def spread(self) -> float:
        """The window's robust sigma (0 while it is empty)."""
        ordered = self.ordered
        n = len(ordered)
        if not n:
            return 0.0
        spread = (ordered[(3 * n) >> 2] - ordered[n >> 2]) * _IQR_TO_SIGMA
        return spread if spread > _TINY else fallback_scale(ordered)

    def observe(self, value: float) -> tuple[float, bool]:
        """(signed z, beyond every value of the window) against the history, then learn it."""
        ordered = self.ordered
        fifo = self.fifo
        n = len(ordered)
        if n:
            spread = (ordered[(3 * n) >> 2] - ordered[n >> 2]) * _IQR_TO_SIGMA
            if spread <= _TINY:
                spread = fallback_scale(ordered)
            z = (value - ordered[n >> 1]) / spread
            extreme = value > ordered[-1] if z > 0.0 else value < ordered[0]
        else:
            z = 0.0
            extreme = False
        fifo.append(value)
        insort(ordered, value)
        if n >= self.size:
            del ordered[bisect_left(ordered, fifo.popleft())]
        return z, extreme
