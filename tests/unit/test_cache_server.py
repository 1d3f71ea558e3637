"""Server-side cache evidence: INFO and stats parsed without key names, and when they matter."""

from checks.cache.server import (Reading, ServerRules, ServerStats, eviction_rate, evidence, from_memcached,
                                 from_redis, judge, period_hit_ratio)
from checks.cache.stats import Unusual

RULES = ServerRules()
QUIET = Unusual()
INFO = {"keyspace_hits": "900", "keyspace_misses": "100", "evicted_keys": "5", "used_memory": "950000",
        "maxmemory": "1000000", "maxmemory_policy": "allkeys-lru", "mem_fragmentation_ratio": "1.2",
        "used_memory_rss": "1140000", "connected_clients": "7", "blocked_clients": "1", "latest_fork_usec": "2500"}
SLOWLOG = [
    [3, 1700000100, 350000, [b"KEYS", b"patient:*"], b"10.0.0.9:5000", b""],
    [2, 1700000090, 300000, [b"get", b"patient:4711:ssn"], b"10.0.0.9:5000", b""],
    [1, 1700000080, 20000, [b"PING"], b"127.0.0.1:4000", b"forewarn"],
    [0, 1600000000, 20000, [b"FLUSHALL"], b"10.0.0.9:5000", b""],
]


def kinds(verdicts):
    return sorted(v.kind for v in verdicts)


def test_slowlog_keeps_command_names_only_and_leaves_out_our_probes_and_old_entries():
    stats = from_redis(INFO, [[b"command", 1700000100, 350, 400]], SLOWLOG, since=1700000000)
    assert stats.slow_commands == (("KEYS", 1), ("GET", 1))
    shown = repr(stats) + repr(evidence(stats))
    assert "patient" not in shown and "4711" not in shown
    assert "command 350 ms (max 400 ms)" in evidence(stats)["latency events"]


def test_memory_near_the_limit_is_information_when_the_cache_evicts_and_a_warning_when_it_refuses_writes():
    lru = from_redis(INFO)
    assert [(v.kind, v.severity) for v in judge(lru, None, None, QUIET, QUIET, RULES)] == [
        ("cache_memory_near_limit", "info")]
    refusing = from_redis({**INFO, "maxmemory_policy": "noeviction"})
    assert judge(refusing, None, None, QUIET, QUIET, RULES)[0].severity == "warning"


def test_no_memory_limit_means_no_memory_finding():
    assert judge(from_redis({**INFO, "maxmemory": "0"}), None, None, QUIET, QUIET, RULES) == []


def test_evictions_surge_needs_an_unusual_rate_and_enough_evictions():
    stats = from_redis({**INFO, "maxmemory": "0"})
    before, now, up = Reading(0, 100, 10, 0), Reading(60, 200, 20, 600), Unusual("shift_up", 0.1)
    (surge,) = judge(stats, before, now, QUIET, up, RULES)
    assert surge.kind == "cache_evictions_surge" and surge.facts["usual_per_minute"] == 6.0
    assert kinds(judge(stats, before, now, QUIET, QUIET, RULES)) == []  # 10/s is not unusual here
    assert kinds(judge(stats, before, now, QUIET, Unusual("dip", 20.0), RULES)) == []
    assert kinds(judge(stats, before, Reading(60, 200, 20, 50), QUIET, up, RULES)) == []  # too few
    assert kinds(judge(stats, Reading(0, 100, 10, 900), now, QUIET, up, RULES)) == []  # restarted


def test_hit_ratio_drop_needs_an_unusual_dip_enough_lookups_and_a_clear_fall():
    stats = from_redis({**INFO, "maxmemory": "0"})
    before, low = Reading(0, 1000, 0, 0), Unusual("shift_down", 0.95)
    assert kinds(judge(stats, before, Reading(60, 1300, 300, 0), low, QUIET, RULES)) == ["cache_hit_ratio_drop"]
    assert kinds(judge(stats, before, Reading(60, 1550, 50, 0), low, QUIET, RULES)) == []  # 91%: a small fall
    assert kinds(judge(stats, before, Reading(60, 1010, 90, 0), low, QUIET, RULES)) == []  # 100 lookups
    assert kinds(judge(stats, before, Reading(60, 1300, 300, 0), Unusual("", 0.95), QUIET, RULES)) == []


def test_fragmentation_matters_only_when_it_wastes_real_memory():
    small = from_redis({**INFO, "maxmemory": "0", "mem_fragmentation_ratio": "9", "used_memory_rss": "9000000"})
    assert judge(small, None, None, QUIET, QUIET, RULES) == []
    big = from_redis({**INFO, "maxmemory": "0", "used_memory": "200000000", "used_memory_rss": "400000000",
                      "mem_fragmentation_ratio": "2.0"})
    assert kinds(judge(big, None, None, QUIET, QUIET, RULES)) == ["cache_fragmentation_high"]


def test_memcached_stats_map_to_the_same_fields():
    stats = from_memcached({b"get_hits": 80, b"get_misses": 20, b"evictions": 3, b"bytes": 60,
                            b"limit_maxbytes": 64, b"curr_connections": 4})
    assert (stats.hits, stats.misses, stats.evictions, stats.clients) == (80, 20, 3, 4)
    assert stats.memory_ratio == 60 / 64


def test_hit_ratio_and_eviction_rates_between_readings():
    assert period_hit_ratio(Reading(0, 10, 10, 0), Reading(1, 19, 11, 0)) == (0.9, 10)
    assert period_hit_ratio(Reading(0, 10, 10, 0), Reading(1, 10, 10, 0)) is None
    assert eviction_rate(Reading(0, 0, 0, 0), Reading(10, 0, 0, 100)) == (100, 10)
    assert eviction_rate(Reading(10, 0, 0, 100), Reading(20, 0, 0, 50)) is None  # restarted


def test_stats_without_counters_are_fine():
    assert judge(ServerStats(kind="redis"), None, None, QUIET, QUIET, RULES) == []
