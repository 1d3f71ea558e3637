"""Behaviour of the per-series detector: what alerts, what stays quiet, and its state."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.detect import SeriesDetector, Verdict, preset

STEP = 300.0  # five-minute samples, as in most NAB series


def noise(n: int, seed: int = 7, sigma: float = 1.0, level: float = 100.0) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0.0, sigma) for _ in range(n)]


def run(values: list[float], detector: SeriesDetector | None = None, start: int = 0) -> list[Verdict]:
    detector = detector or SeriesDetector()
    return [detector.update((start + i) * STEP, v) for i, v in enumerate(values)]


def alert_rows(verdicts: list[Verdict]) -> list[int]:
    return [i for i, v in enumerate(verdicts) if v.alert]


def test_flat_series_never_alerts():
    verdicts = run([42.0] * 3000)
    assert alert_rows(verdicts) == []
    assert all(v.score == 0.0 for v in verdicts)


def test_noisy_normal_series_stays_quiet():
    assert alert_rows(run(noise(5000))) == []


def test_spike_alerts_on_the_spike_row():
    values = noise(3000)
    values[2000] += 25.0
    verdicts = run(values)
    assert alert_rows(verdicts) == [2000]
    assert verdicts[2000].kind == "spike"
    assert verdicts[2000].score > 0.5


def test_dip_alerts_as_a_dip():
    values = noise(3000)
    values[2000] -= 25.0
    verdicts = run(values)
    assert alert_rows(verdicts) == [2000]
    assert verdicts[2000].kind == "dip"


def test_level_shift_alerts_once_per_episode():
    values = noise(4000)
    for i in range(2000, 4000):
        values[i] += 6.0
    rows = alert_rows(run(values))
    assert len(rows) == 1
    assert 2000 <= rows[0] < 2020


def test_a_shift_is_one_episode_that_lasts_while_unusual_and_ends_after():
    values = noise(4000)
    for i in range(2000, 3000):
        values[i] += 8.0
    verdicts = run(values)
    opened = alert_rows(verdicts)[0]
    assert opened == 2000 and verdicts[opened].episode in ("spike", "shift_up")
    assert all(v.episode == verdicts[opened].episode for v in verdicts[2000:2200])  # one episode, no re-alert
    assert all(not v.episode for v in verdicts[:2000]) and all(not v.episode for v in verdicts[3300:])
    # Robust statistics: once the new level fills a good share of the window it is the new normal.
    assert not verdicts[2999].episode


def test_a_single_spike_is_an_episode_of_one_point():
    values = noise(3000)
    values[2000] += 25.0
    verdicts = run(values)
    assert verdicts[2000].episode == "spike"
    assert verdicts[2001].episode == ""


def test_a_drop_never_continues_an_upward_episode():
    values = noise(3000)
    values[2000] += 25.0
    values[2001] -= 25.0
    verdicts = run(values)
    assert verdicts[2000].episode == "spike" and verdicts[2001].episode == ""


def test_a_faster_growth_rate_is_an_episode_while_a_sawtooth_is_not():
    rng = random.Random(5)
    sawtooth = [(i % 96) * 1.0 + rng.gauss(0, 0.3) for i in range(4000)]  # fills and empties every 8 h
    assert alert_rows(run(sawtooth)) == []
    growing = [i * 0.01 + rng.gauss(0, 0.3) for i in range(4000)]
    for i in range(2500, 4000):
        growing[i] += (i - 2500) * 0.2  # twenty times the usual pace
    verdicts = run(growing)
    rows = alert_rows(verdicts)
    assert len(rows) == 1 and 2500 < rows[0] < 2700
    assert verdicts[3000].episode in ("spike", "shift_up", "trend")


def test_a_checks_own_base_is_scaled_by_sensitivity():
    base = preset("medium", window=100, threshold=4.0, cooldown=30)
    assert preset("low", base).threshold == pytest.approx(5.6) and preset("low", base).cooldown == 40
    assert preset("high", base).threshold == pytest.approx(2.8) and preset("high", base).cooldown == 20
    assert preset("medium", base) == base and preset("high", base).window == 100


def test_no_alert_during_warmup():
    values = noise(600)
    values[50] += 50.0
    assert alert_rows(run(values)) == []


def test_weekly_rhythm_is_learnt_and_a_break_in_it_alerts():
    """A daily cycle far larger than the anomaly: only the seasonal residual reveals it."""
    rng = random.Random(3)
    points_per_day = 48
    values = [100.0 + 50.0 * math.sin(2 * math.pi * i / points_per_day) + rng.gauss(0.0, 1.0)
              for i in range(points_per_day * 35)]
    quiet = SeriesDetector()
    assert [i for i, v in enumerate(values) if quiet.update(i * 1800.0, v).alert] == []
    anomaly = points_per_day * 30 + 12  # the daily peak, missing for half a day
    for i in range(anomaly, anomaly + 24):
        values[i] -= 40.0
    detector = SeriesDetector()
    rows = [i for i, v in enumerate(values) if detector.update(i * 1800.0, v).alert]
    assert rows and anomaly <= rows[0] < anomaly + 24
    assert detector.profile.active


def test_series_without_rhythm_is_not_deseasonalised():
    detector = SeriesDetector()
    run(noise(4032), detector)
    assert not detector.profile.active


def test_non_finite_values_are_ignored():
    detector = SeriesDetector()
    run(noise(500), detector)
    before = detector.to_state()
    assert detector.update(500 * STEP, math.nan) == Verdict(0.0, False, "")
    assert detector.update(501 * STEP, math.inf) == Verdict(0.0, False, "")
    assert detector.to_state() == before


def test_higher_sensitivity_alerts_at_least_as_often():
    rng = random.Random(11)
    values = [rng.lognormvariate(0.0, 0.6) for _ in range(6000)]
    counts = {s: len(alert_rows(run(values, SeriesDetector(preset(s))))) for s in ("low", "medium", "high")}
    assert counts["low"] <= counts["medium"] <= counts["high"]
    assert counts["high"] > 0


def test_unknown_sensitivity_is_refused():
    with pytest.raises(ValueError, match="low, medium, high"):
        preset("paranoid")


def test_expert_parameters_override_a_preset():
    params = preset("high", window=500)
    assert params.window == 500
    assert params.threshold == preset("high").threshold


def test_same_input_same_output():
    values = noise(3000, seed=5)
    values[1500] += 30.0
    assert run(values) == run(values)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=400), st.integers(0, 400))
def test_prefix_output_equals_whole_file_prefix(values, cut):
    params = preset("high", warmup=10, window=50)
    whole = run(values, SeriesDetector(params))
    prefix = run(values[:cut], SeriesDetector(params))
    assert prefix == whole[:cut]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=300), st.data())
def test_scores_stay_between_0_and_1(values, data):
    for verdict in run(values, SeriesDetector(preset("high", warmup=5, window=40))):
        assert 0.0 <= verdict.score <= 1.0


@pytest.mark.parametrize("cut", [0, 1, 200, 1999, 2000, 2600])
def test_state_round_trip_through_json_continues_identically(cut):
    rng = random.Random(1)
    values = [100.0 + 30.0 * math.sin(i / 8.0) + rng.gauss(0, 2) for i in range(3000)]
    values[2100] += 80.0
    straight = run(values)
    first = SeriesDetector()
    resumed = run(values[:cut], first)
    restored = SeriesDetector.from_state(json.loads(json.dumps(first.to_state(), allow_nan=False)))
    resumed += run(values[cut:], restored, start=cut)
    assert resumed == straight
    assert restored.to_state() == SeriesDetector.from_state(restored.to_state()).to_state()


def test_state_of_another_version_is_refused():
    state = SeriesDetector().to_state()
    state["version"] = 999
    with pytest.raises(ValueError, match="version"):
        SeriesDetector.from_state(state)


def test_episode_length_counts_the_points_of_the_open_episode():
    detector = SeriesDetector()
    values = noise(2200)
    for i in range(2000, 2200):
        values[i] += 8.0
    run(values[:2000], detector)
    assert detector.episode_length() == 0
    run(values[2000:2010], detector, start=2000)
    assert detector.episode and detector.episode_length() == 10


def test_a_lasting_rise_from_a_flat_zero_line_stays_unusual_while_one_burst_does_not_set_the_scale():
    """E.g. evictions of a cache that never evicted: a first burst must not make later ones look normal."""
    params = preset("medium", window=300, warmup=50, cooldown=100, persistence=3, seasonal=False)
    values = [0.0] * 400 + [50.0] + [0.0] * 200 + [50.0 + (i % 3) for i in range(30)]
    verdicts = run(values, SeriesDetector(params))
    rows = alert_rows(verdicts)  # the lone burst (row 400) is one point, not three in a row
    assert len(rows) == 1 and 601 < rows[0] <= 605
    assert all(v.episode for v in verdicts[rows[0]:631])


def test_trend_persistence_zero_judges_no_trend():
    rng = random.Random(2)
    values = [40.0 + 0.01 * i + rng.gauss(0.0, 0.05) for i in range(5000)]  # a disk filling steadily
    for i in range(4000, 5000):
        values[i] += 0.09 * (i - 4000)  # then ten times faster
    assert "trend" in {v.kind for v in run(values)}
    assert "trend" not in {v.kind for v in run(values, SeriesDetector(preset(trend_persistence=0)))}


@pytest.mark.parametrize("values", [
    [5e-324, 1e-323, 0.0, 5e-324] * 100,  # subnormal quartiles: the spread once was 5e-324, the score NaN
    [1e308, -1e308] * 200,
    [0.0] * 200 + [1e308] + [5e-324] * 50 + [-1.7976931348623157e308],
])
def test_scores_are_finite_for_extreme_inputs(values):
    for verdict in run(values, SeriesDetector(preset("high", warmup=5, window=40))):
        assert 0.0 <= verdict.score <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=2, max_size=300))
def test_scores_are_finite_for_any_finite_input(values):
    for verdict in run(values, SeriesDetector(preset("high", warmup=5, window=40, horizon=100))):
        assert 0.0 <= verdict.score <= 1.0


def test_an_always_bursty_series_needs_a_rarer_burst():
    """Heavy-tailed noise beats its 1000-point window every few days; only bursts beyond its recent ones count."""
    rng = random.Random(3)
    values = [100.0 + 10.0 * rng.paretovariate(1.5) for _ in range(20000)]
    assert len(alert_rows(run(values))) <= 6  # the engine before the horizon: 16
    values[19000] = 3 * max(values[14000:19000])
    assert 19000 in alert_rows(run(values))


def test_a_calm_series_alerts_on_a_spike_far_smaller_than_a_bursty_one_needs():
    values = noise(6000, seed=4)
    values[5500] += 8.0
    assert alert_rows(run(values)) == [5500]


def test_an_anomaly_below_the_business_floor_opens_nothing_and_keeps_the_cooldown_free():
    """A rise that does not matter must not delay the notice of one that does, just after it."""
    values = noise(3000)
    values[2000] += 15.0  # unusual, but below the floor of 120
    values[2050] += 30.0
    assert alert_rows(run(values)) == [2000]  # without a floor, the cooldown hides the second
    verdicts = run(values, SeriesDetector(preset(floor=120.0)))
    assert alert_rows(verdicts) == [2050] and verdicts[2000].kind == "" and verdicts[2000].score > 0.5


def test_the_floor_leaves_downward_anomalies_alone():
    values = noise(3000)
    values[2000] -= 25.0
    assert alert_rows(run(values, SeriesDetector(preset(floor=120.0)))) == [2000]


def test_a_second_incident_as_large_as_the_first_is_still_news():
    """Records are learnt from ordinary points only: an incident does not raise the bar for the next one."""
    values = noise(6000)
    for start in (2000, 4000):
        for i in range(start, start + 50):
            values[i] += 30.0
    assert alert_rows(run(values)) == [2000, 4000]
