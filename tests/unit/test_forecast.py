"""Both sides of the time-to-full forecast: real fills are found, bursts and sawtooths are not."""

import random

from agent.detect.forecast import growth_trend

MB = 1e6


def series(values, step=60.0):
    return [(i * step, v) for i, v in enumerate(values)]


def noisy(values, amplitude=0.2 * MB, seed=1):
    rng = random.Random(seed)
    return [v + rng.uniform(0, amplitude) for v in values]


def test_steady_fill_gets_a_trend_whose_range_contains_the_true_rate():
    rate = 1 * MB  # per minute
    points = series(noisy([500 * MB + i * rate for i in range(120)]))
    trend = growth_trend(points, min_span=600)
    assert trend is not None
    assert trend.rate_low * 60 <= rate <= trend.rate_high * 60


def test_fill_starting_after_a_flat_period_is_found_once_it_persists():
    values = [500 * MB] * 60 + [500 * MB + i * MB for i in range(1, 41)]
    trend = growth_trend(series(noisy(values)), min_span=600)
    assert trend is not None
    assert trend.rate_low * 60 <= MB <= trend.rate_high * 60


def test_fill_too_young_to_be_persistent_gets_no_trend():
    values = [500 * MB] * 60 + [500 * MB + i * MB for i in range(1, 12)]
    assert growth_trend(series(noisy(values)), min_span=600) is None


def test_flat_disk_gets_no_trend():
    assert growth_trend(series(noisy([500 * MB] * 200, amplitude=5 * MB)), min_span=600) is None


def test_shrinking_disk_gets_no_trend():
    assert growth_trend(series([900 * MB - i * MB for i in range(200)]), min_span=600) is None


def test_burst_that_is_deleted_gets_no_trend_at_any_moment():
    values = noisy([500 * MB + (300 * MB if 60 <= i < 75 else 0) for i in range(150)])
    for end in range(20, 150):
        assert growth_trend(series(values[:end]), min_span=600) is None, end


def test_sawtooth_of_log_rotation_gets_no_trend_once_a_rotation_was_seen():
    values = noisy([500 * MB + (i % 30) * 5 * MB for i in range(200)])
    for end in range(31, 200):
        assert growth_trend(series(values[:end]), min_span=600) is None, end


def test_sawtooth_whose_floor_keeps_rising_is_a_real_fill():
    values = [500 * MB + (i % 30) * 2 * MB + i * 1 * MB for i in range(300)]
    trend = growth_trend(series(values), min_span=600)
    assert trend is not None
    assert trend.rate_low * 60 <= 1.001 * MB and 0.999 * MB <= trend.rate_high * 60


def test_too_little_history_gets_no_trend():
    assert growth_trend(series([1, 2, 3]), min_span=10) is None
