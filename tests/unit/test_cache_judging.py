"""What the cache check calls unusual, run after run, through a real detector bank (no server).

Each test replays 30 s runs of synthetic probes and server counters through
`CacheCheck`'s judging, as the daemon would: a lasting change is found after
the warm-up, a one-run blip is not, and nothing is found below the business
floors (half of slow_after, hit_ratio_drop, evictions_min).
"""

from __future__ import annotations

import logging
import random
from typing import Mapping

from agent.api import Context
from agent.detect.bank import DetectorBank
from checks.cache.check import BASE, CacheCheck, Outcome
from checks.cache.server import ServerStats
from checks.cache.stats import Probe

INTERVAL = 30.0
START = 1_700_000_000.0
WARM = BASE.warmup + 30  # runs of normal life before anything changes


class NoHistory:
    """A process with nothing stored yet: everything the check knows comes from this process and the bank."""

    def series(self, name: str, labels: Mapping[str, str], since: float) -> list[tuple[float, float]]:
        return []


class Replay:
    """Drives one CacheCheck run by run on a fake clock; counters add up like a real server's."""

    def __init__(self, bank: DetectorBank, start: float = START, seed: int = 7, **settings: object):
        config = CacheCheck.Config.parse(
            {"targets": [{"name": "pacs", "url": "redis://127.0.0.1:6379/0", "slow_after": "100ms"}], **settings})
        self.check, self.bank = CacheCheck(config), bank
        self.now, self.rng = start, random.Random(seed)
        self.hits = self.misses = self.evictions = 0

    def run(self, wait: float = 0.0003, hit_ratio: float = 0.95, lookups: int = 1000,
            evicted: int = 10) -> list[str]:
        """One run: 20 probes around `wait` seconds; the kinds of the findings it raised."""
        self.now += INTERVAL
        probes = tuple(Probe(self.now - 15 + i * 0.75, wait * self.rng.uniform(0.85, 1.15)) for i in range(20))
        hits = round(lookups * min(1.0, hit_ratio + self.rng.uniform(-0.01, 0.01)))
        self.hits, self.misses = self.hits + hits, self.misses + lookups - hits
        self.evictions += round(evicted * self.rng.uniform(0.8, 1.2))
        stats = ServerStats("redis", self.hits, self.misses, self.evictions)
        ctx = Context(now=lambda: self.now, history=NoHistory(), hostname="test-host",
                      log=logging.getLogger("test.cache"), detectors=self.bank)
        _, found, _, _ = self.check._judge(self.check.config.targets[0], Outcome(probes, "", stats, 15.0), ctx)
        self.findings = found
        return sorted(f.kind for f in found)

    def runs(self, count: int, **values: float) -> list[list[str]]:
        return [self.run(**values) for _ in range(count)]


def warmed(bank: DetectorBank | None = None) -> Replay:
    replay = Replay(bank or DetectorBank())
    assert not any(replay.runs(WARM))
    return replay


def flat(kinds: list[list[str]]) -> set[str]:
    return {kind for run in kinds for kind in run}


# ------------------------------------------------------------------ wait times


def test_one_run_of_slow_answers_below_the_limit_raises_nothing():
    replay = warmed()
    assert replay.run(wait=0.08) == []
    assert not flat(replay.runs(20))


def test_typical_wait_many_times_the_usual_raises_cache_slow_and_clears_when_back():
    replay = warmed()
    slow = replay.runs(20, wait=0.06)  # 200x the usual 0.3 ms, above half of the 100 ms budget
    assert "cache_slow" in slow[-1]
    assert "cache_slow" not in flat(slow[:2])  # one or two odd runs are not yet a slow cache
    finding = next(f for f in replay.findings if f.kind == "cache_slow")
    assert 0.0002 < finding.facts["usual_median_seconds"] < 0.0004
    assert "unusually high" in finding.evidence["rule"] and "100.0 ms" in finding.evidence["rule"]
    back = replay.runs(10)
    assert "cache_slow" not in flat(back[BASE.smooth - 1:])  # once the 4-run mean is back too


def test_small_waits_growing_several_fold_stay_quiet():
    replay = warmed()
    assert not flat(replay.runs(30, wait=0.003))  # 10x the usual, but 3 ms on a 100 ms budget


def test_slow_cache_during_the_warm_up_is_only_found_above_the_limit():
    replay = Replay(DetectorBank())
    replay.runs(20)
    assert not flat(replay.runs(20, wait=0.06))  # nothing learnt yet: the relative rule waits
    assert "cache_slow" in replay.runs(12, wait=0.3)[-1]  # the absolute rule does not


def test_a_restarted_check_keeps_what_its_detectors_learnt():
    bank = DetectorBank()
    warmed(bank).check.close()
    restarted = Replay(bank, start=START + WARM * INTERVAL + 60, seed=8)
    assert restarted.run() == []
    assert "cache_slow" in flat(restarted.runs(20, wait=0.06))
    fresh = Replay(DetectorBank(), start=START + WARM * INTERVAL + 60, seed=8)
    fresh.runs(1)
    assert not flat(fresh.runs(20, wait=0.06))  # a new bank would start a new warm-up


# ------------------------------------------------------------------ hit ratio


def test_hit_ratio_falling_and_staying_low_is_found_against_its_usual_value():
    replay = warmed()
    low = replay.runs(10, hit_ratio=0.6)
    assert "cache_hit_ratio_drop" in low[-1]
    finding = next(f for f in replay.findings if f.kind == "cache_hit_ratio_drop")
    assert 0.94 <= finding.facts["usual_hit_ratio"] <= 0.96 and finding.facts["hit_ratio"] < 0.62
    assert "unusually low" in finding.evidence["rule"]
    assert "cache_hit_ratio_drop" not in flat(replay.runs(10)[1:])


def test_one_run_with_a_low_hit_ratio_is_not_a_drop():
    replay = warmed()
    assert replay.run(hit_ratio=0.6) == []
    assert "cache_hit_ratio_drop" not in flat(replay.runs(20))


def test_a_small_lasting_fall_of_the_hit_ratio_is_not_a_drop():
    replay = warmed()
    assert "cache_hit_ratio_drop" not in flat(replay.runs(20, hit_ratio=0.85))  # below the 20-point floor


def test_a_quiet_cache_with_few_lookups_never_reports_a_drop():
    replay = warmed()
    assert "cache_hit_ratio_drop" not in flat(replay.runs(20, hit_ratio=0.3, lookups=50))


# ------------------------------------------------------------------ evictions


def test_evictions_rising_and_staying_high_are_a_surge():
    replay = warmed()
    high = replay.runs(10, evicted=3000)
    assert "cache_evictions_surge" in high[-1]
    finding = next(f for f in replay.findings if f.kind == "cache_evictions_surge")
    assert 15 <= finding.facts["usual_per_minute"] <= 25 and finding.facts["evicted"] >= 2400


def test_one_burst_of_evictions_is_not_a_surge():
    replay = warmed()
    assert replay.run(evicted=3000) == []
    assert "cache_evictions_surge" not in flat(replay.runs(20))


def test_evictions_unusual_but_few_are_not_a_surge():
    replay = warmed()
    assert "cache_evictions_surge" not in flat(replay.runs(20, evicted=60))  # 6x the usual, under evictions_min


def test_a_cache_that_never_evicted_surges_once_evictions_last():
    replay = Replay(DetectorBank())
    assert not flat(replay.runs(WARM, evicted=0))
    high = replay.runs(5, evicted=3000)
    assert "cache_evictions_surge" not in flat(high[:2]) and "cache_evictions_surge" in high[-1]
    assert replay.findings[0].facts["usual_per_minute"] == 0


def test_one_burst_on_a_cache_that_never_evicted_is_not_a_surge():
    replay = Replay(DetectorBank())
    replay.runs(WARM, evicted=0)
    assert replay.run(evicted=3000) == []
    assert not flat(replay.runs(20, evicted=0))
