"""Time-to-full forecasts that do not cry wolf.

A disk is "filling" only when what remains after every cleanup keeps growing:
the forecast works on the lower envelope (the suffix minimum: the lowest level
the series came back to from each moment on), so bursts that are deleted and
rotations that reclaim space leave no trend. The growth must show alike in
both halves of a window at least two steps long on a doubling ladder of windows,
and a series with a recent large drop (a sawtooth) is not trusted until its
growth outgrows the drops. The rate is a Theil-Sen slope with Sen's confidence
interval, and the answer is a range, never a point.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from typing import Iterable, Sequence

Z_90 = 1.645
MAX_PAIRS_POINTS = 64


@dataclass(frozen=True, slots=True)
class Trend:
    rate: float
    """Units per second, best estimate."""
    rate_low: float
    rate_high: float
    window: float
    """Seconds of history the trend is visible over."""
    points: int

    def time_to(self, remaining: float) -> tuple[float, float, float]:
        """(best, earliest, latest) seconds until `remaining` more units are used."""
        return remaining / self.rate, remaining / self.rate_high, remaining / self.rate_low


def growth_trend(points: Sequence[tuple[float, float]], min_span: float, min_points: int = 8,
                 noise_floor: float = 0.0) -> Trend | None:
    """The sustained growth of a series, or None when it is flat, shrinking, bursty or a sawtooth.

    `min_span` is the shortest window worth judging (about ten check intervals);
    `noise_floor` is the smallest rise per half-window that counts as growth.
    """
    if len(points) < min_points:
        return None
    times = [t for t, _ in points]
    values = [v for _, v in points]
    envelope = _suffix_min(values)
    now = times[-1]
    span = now - times[0]
    steps = [b - a for a, b in zip(values, values[1:])]
    noise = max(noise_floor, 4.5 * _mad(steps))  # about 3 sigma of the point-to-point jitter

    qualifying: list[tuple[float, int]] = []
    for window in _ladder(min_span, span):
        start = _index_at(times, now - window)
        if len(times) - start < min_points:
            continue
        if _rises_in_both_halves(times, envelope, start, noise):
            qualifying.append((window, start))
    if not qualifying:
        return None
    persistent = [(window, start) for window, start in qualifying if window >= 2 * min_span]
    if not persistent:
        return None
    longest, start = persistent[-1]
    rise = envelope[-1] - envelope[start]
    middle = _index_at(times, now - longest / 2)
    if _drawdown(values[_index_at(times, now - 4 * longest):middle + 1]) > 0.5 * rise:
        return None  # a sawtooth: a recent cycle gave back more than this growth
    fits = [_theil_sen(times[s:], envelope[s:]) for _, s in persistent]
    rate = fits[0][0]
    pad = noise / longest  # the envelope's own uncertainty, spread over the window
    low = min(fit[1] for fit in fits) - pad
    high = max(fit[2] for fit in fits) + pad
    if rate <= 0 or low <= 0:
        return None
    return Trend(rate, low, high, longest, len(times) - start)


def _ladder(min_span: float, span: float) -> list[float]:
    windows, window = [], min_span
    while window < span:
        windows.append(window)
        window *= 2
    if span >= min_span:
        windows.append(span)
    return windows


def _rises_in_both_halves(times: list[float], envelope: list[float], start: int, noise: float) -> bool:
    middle = _index_at(times, (times[start] + times[-1]) / 2)
    first = envelope[middle] - envelope[start]
    second = envelope[-1] - envelope[middle]
    # Steady growth rises alike in both halves; a step or a young fill rises mostly in one.
    return first > noise and second > noise and min(first, second) >= max(first, second) / 3


def _suffix_min(values: list[float]) -> list[float]:
    out, low = [0.0] * len(values), math.inf
    for i in range(len(values) - 1, -1, -1):
        low = min(low, values[i])
        out[i] = low
    return out


def _drawdown(values: list[float]) -> float:
    worst, peak = 0.0, -math.inf
    for value in values:
        peak = max(peak, value)
        worst = max(worst, peak - value)
    return worst


def _index_at(times: list[float], moment: float) -> int:
    """First index at or after `moment` (times are sorted), at most the last index."""
    return min(bisect_left(times, moment), len(times) - 1)


def _median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) >> 1
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _mad(values: list[float]) -> float:
    centre = _median(values)
    return _median(abs(v - centre) for v in values)


def _theil_sen(times: list[float], values: list[float]) -> tuple[float, float, float]:
    """Median pairwise slope with Sen's 90% confidence interval (thinned to bound the cost)."""
    step = max(1, math.ceil(len(times) / MAX_PAIRS_POINTS))
    ts, vs = times[::step], values[::step]
    if ts[-1] != times[-1]:
        ts, vs = ts + [times[-1]], vs + [values[-1]]
    slopes = sorted((vs[j] - vs[i]) / (ts[j] - ts[i])
                    for i in range(len(ts)) for j in range(i + 1, len(ts)) if ts[j] > ts[i])
    n, pairs = len(ts), len(slopes)
    spread = Z_90 * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    low_index = max(0, int((pairs - spread) / 2))
    high_index = min(pairs - 1, int((pairs + spread) / 2))
    return _median(slopes), slopes[low_index], slopes[high_index]
