"""The rolling sorted window and the robust gauge built on it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent.detect.baseline import RobustGauge
from agent.detect.window import RollingWindow


@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False)), st.integers(1, 30))
def test_window_holds_the_last_values_sorted(values, size):
    window = RollingWindow(size)
    for v in values:
        window.push(v)
    assert list(window.fifo) == values[-size:] if values else not window.fifo
    assert window.ordered == sorted(values[-size:])
    assert RollingWindow.from_state(window.to_state()).ordered == window.ordered


def test_window_evicts_the_oldest_value():
    window = RollingWindow(5)
    for v in [9, 1, 5, 3, 7, 100]:
        window.push(float(v))
    assert window.ordered == [1.0, 3.0, 5.0, 7.0, 100.0]
    assert list(window.fifo) == [1.0, 5.0, 3.0, 7.0, 100.0]


def test_gauge_scores_against_the_past_only():
    gauge = RobustGauge(100)
    for i in range(100):
        gauge.observe(float(i % 10))
    z, extreme = gauge.observe(1000.0)
    assert z > 100 and extreme
    z, extreme = gauge.observe(5.0)
    assert abs(z) < 1 and not extreme


def test_gauge_on_a_constant_history_still_sees_change():
    gauge = RobustGauge(50)
    for _ in range(50):
        gauge.observe(10.0)
    z, extreme = gauge.observe(11.0)
    assert z > 5 and extreme
