"""The checks' business floors inside the engine: what does not matter opens no episode.

Before, an anomaly below a check's floor still opened one and used up the
detector's cooldown (an hour for cache), so a real slowdown just after it was
found an hour late. Replayed run by run through `CacheCheck`'s judging.
"""

from __future__ import annotations

from test_cache_judging import Replay, flat, warmed

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
