"""Trend change: abnormal sustained growth alerts; bursts and sawtooth growth do not."""

from __future__ import annotations

import math
import random

from agent.detect import SeriesDetector
from agent.detect.trend import TrendGauge


def disk(n: int, seed: int = 2, rate: float = 0.01) -> list[float]:
    """A disk filling steadily by `rate` per sample, with measurement noise."""
    rng = random.Random(seed)
    return [40.0 + rate * i + rng.gauss(0.0, 0.05) for i in range(n)]


def sawtooth(n: int, rise: int = 200) -> list[float]:
    """A disk that fills at 0.5 per point and is cleaned up every `rise` points."""
    return [0.5 * (i % rise) for i in range(n)]


def trend_rows(values: list[float]) -> list[int]:
    detector = SeriesDetector()
    return [i for i, v in enumerate(values) if detector.update(i * 60.0, v).kind == "trend"]


def test_growth_ten_times_faster_than_usual_raises_a_trend_alert():
    values = disk(5000)
    start = 4000
    for i in range(start, 5000):
        values[i] += 0.09 * (i - start)
    detector = SeriesDetector()
    verdicts = [detector.update(i * 60.0, v) for i, v in enumerate(values)]
    rows = [i for i, v in enumerate(verdicts) if v.alert]
    assert len(rows) == 1 and start < rows[0] < start + 120
    assert verdicts[rows[0]].kind == "trend"


def test_steady_growth_raises_no_alert():
    detector = SeriesDetector()
    assert [i for i, v in enumerate(disk(5000)) if detector.update(i * 60.0, v).alert] == []


def test_sawtooth_growth_raises_no_trend_alert():
    detector = SeriesDetector()
    rows = [i for i, v in enumerate(sawtooth(6000)) if detector.update(i * 60.0, v).alert]
    assert rows == []


def test_burst_growth_raises_no_trend_alert():
    """Growth in short bursts (a batch upload now and then) is not a trend change."""
    rng = random.Random(4)
    values, level = [], 0.0
    for i in range(6000):
        if i % 300 < 3:
            level += 5.0
        values.append(level + rng.gauss(0.0, 0.2))
    assert trend_rows(values) == []


def test_rate_ignores_a_single_jump_but_follows_steady_growth():
    jump, ramp = TrendGauge(48, 1000, 6), TrendGauge(48, 1000, 6)
    for i in range(200):
        jump.observe(0.0 if i < 100 else 50.0)
        ramp.observe(0.5 * i)
    assert jump.observe(50.0)[1] == 0.0
    assert math.isclose(ramp.observe(100.0)[1], 0.5)


def test_trend_gauge_state_round_trip():
    gauge = TrendGauge(48, 600, 6)
    values = sawtooth(700, rise=90)
    for v in values[:350]:
        gauge.observe(v)
    twin = TrendGauge.from_state(gauge.to_state())
    assert [gauge.observe(v) for v in values[350:]] == [twin.observe(v) for v in values[350:]]
