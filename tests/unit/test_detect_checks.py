"""The cache and cloud storage checks on the engine: business floors inside it, and its record horizon.

Before, an anomaly below a check's floor still opened an episode and used up
the detector's cooldown (an hour for cache), so a real slowdown just after it
was found an hour late. Replayed run by run through the checks' own judging
(`CacheCheck._judge`, `CloudStorageCheck.assess`), both sides: what matters is
found, a normal stretch is not flagged.
"""

from __future__ import annotations

import random

import pytest
from test_cache_judging import flat, warmed
from test_cloud_growth import daily_runs, raised

from agent.detect.bank import DetectorBank


def test_a_slowdown_that_matters_right_after_one_that_does_not_is_found_at_once():
    replay = warmed()
    assert not flat(replay.runs(10, wait=0.003))  # 10x the usual 0.3 ms, far below half of 100 ms
    assert not flat(replay.runs(10))
    slow = replay.runs(20, wait=0.06)  # 60 ms: unusual and above half the budget
    assert "cache_slow" in slow[-1]


def test_below_the_floor_the_median_detector_opens_no_episode():
    bank = DetectorBank()
    replay = warmed(bank)
    replay.runs(10, wait=0.003)
    assert bank.live["pacs/median"].policy.since_alert > 100  # no alert opened, so no cooldown is running


def test_a_normal_day_after_the_warm_up_stays_quiet():
    replay = warmed()
    assert not flat(replay.runs(600))


# ------------------------------------------------------------------ cloud storage on the new engine


def bill_after_a_cleanup(step: float, seed: int) -> list[float]:
    """40 days at about 10 USD a day, a cleanup to about 2, 70 quiet days (longer than the window), then `step` more."""
    rng = random.Random(seed)
    values = [10.0 + rng.gauss(0.0, 0.1) for _ in range(40)] + [2.0 + rng.gauss(0.0, 0.02) for _ in range(70)]
    return values + [2.0 + step + rng.gauss(0.0, 0.02) for _ in range(15)]


@pytest.mark.parametrize("seed", range(4))
def test_a_bill_stepping_back_up_after_a_cleanup_is_news(seed):
    """Below its old level, yet unlike its last two months: the engine's records span the check's window only."""
    runs = daily_runs(bill_after_a_cleanup(6.0, seed))
    assert raised(runs) and min(raised(runs)) <= 113


@pytest.mark.parametrize("seed", range(4))
def test_a_bill_quiet_after_a_cleanup_raises_nothing(seed):
    assert raised(daily_runs(bill_after_a_cleanup(0.0, seed))) == []
