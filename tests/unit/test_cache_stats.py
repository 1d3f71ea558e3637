"""The tail statistics behind the cache findings: spikes found, noise and healthy caches quiet."""

import math

import pytest
from hypothesis import given, strategies as st

from checks.cache.stats import (PastRun, Probe, ProbeWindow, Rules, Unusual, latency_kind, quantile, summarize,
                                tally)

RULES = Rules(slow_after=0.1)


def probes(fast: int, slow: int = 0, *, fast_s: float = 0.0003, slow_s: float = 0.3, at: float = 1000.0,
           failed: int = 0) -> list[Probe]:
    made = [Probe(at + i, fast_s) for i in range(fast)] + [Probe(at + fast + i, slow_s) for i in range(slow)]
    return made + [Probe(at + fast + slow + i, 2.0, ok=False) for i in range(failed)]


def judge(window: list[Probe], past=(), median=Unusual(), rules=RULES, now=2000.0):
    summary = summarize(window, rules.slow_after)
    return latency_kind(summary, tally(window, past, rules.slow_after, now, 3600), median, rules)


def test_quantiles_interpolate_like_numpy():
    values = [1.0, 2.0, 3.0, 4.0]
    assert quantile(values, 0.5) == 2.5
    assert quantile(values, 0.0) == 1.0 and quantile(values, 1.0) == 4.0
    assert math.isnan(quantile([], 0.5))


def test_summary_counts_failed_probes_as_slow():
    summary = summarize(probes(95, 3, failed=2), 0.1)
    assert (summary.count, summary.slow, summary.failed) == (100, 5, 2)
    assert summary.slow_share == pytest.approx(0.05)
    assert summary.median == pytest.approx(0.0003)


def test_one_slow_request_in_twenty_is_an_intermittent_slowness():
    assert judge(probes(190, 10)) == "cache_latency_spikes"


def test_healthy_cache_raises_nothing():
    assert judge(probes(400)) is None


def test_two_hiccups_are_noise_not_a_finding():
    assert judge(probes(398, 2)) is None


def test_slow_share_below_one_percent_is_noise():
    assert judge(probes(1000, 5)) is None


def test_too_few_probes_are_not_judged():
    assert judge(probes(10, 5)) is None


def test_slow_median_is_a_slow_cache_not_spikes():
    assert judge(probes(10, 30)) == "cache_slow"


def test_unusually_high_median_is_slow_below_the_limit_only_from_half_of_it():
    up = Unusual("shift_up", 0.0004)
    assert judge(probes(100, fast_s=0.06), median=up) == "cache_slow"
    assert judge(probes(100, fast_s=0.06), median=Unusual("", 0.0004)) is None  # the detector sees nothing unusual
    assert judge(probes(100, fast_s=0.06), median=Unusual("shift_down", 0.2)) is None
    assert judge(probes(100, fast_s=0.04), median=up) is None  # 40 ms on a 100 ms budget is nobody's problem


def test_earlier_runs_count_where_memory_does_not_reach():
    window = probes(20, 1, at=1900)
    past = [PastRun(1850.0, 20, 1), PastRun(1870.0, 20, 1), PastRun(1950.0, 20, 20)]  # the last overlaps memory
    counts = tally(window, past, 0.1, 2000.0, 3600)
    assert (counts.probes, counts.slow, counts.since) == (61, 3, 1850.0)
    assert judge(window, past) == "cache_latency_spikes"


def test_earlier_runs_outside_the_lookback_are_ignored():
    counts = tally(probes(20, at=1990), [PastRun(10.0, 50, 50)], 0.1, 2000.0, 600)
    assert (counts.probes, counts.slow) == (20, 0)


def test_window_forgets_old_probes_and_stays_bounded():
    window = ProbeWindow(span=60, limit=100)
    window.add(probes(500, at=0))
    assert len(window.probes) == 100
    assert [p.at for p in window.recent(now=500)] == [float(t) for t in range(440, 500)]


@given(st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_are_ordered_and_inside_the_range(values):
    summary = summarize([Probe(0.0, v) for v in values], 0.1)
    assert min(values) <= summary.median <= summary.p95 <= summary.p99 <= summary.max == max(values)
