"""The short variants of bench/resilience.py, in the default run: the counts that must be zero are zero."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "resilience.py"


@pytest.fixture(scope="module")
def bench():
    if os.geteuid() != 0:
        pytest.fail("bench/resilience.py mounts tmpfs disks and must run as root")
    spec = importlib.util.spec_from_file_location("resilience_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kill_9_at_random_moments_loses_nothing_and_sends_nothing_twice(bench):
    counts = bench.kill_restarts(8, seed=11)
    assert counts["notices"] > 0 and counts["drained"]
    assert (counts["lost"], counts["dead"], counts["sent twice (same Message-ID)"]) == (0, 0, 0)


def test_hung_channels_and_a_hung_redis_leave_the_disk_check_on_time_and_resources_flat(bench):
    counts = bench.hung(12, with_hung=True)
    assert counts["disk runs late (>3 s)"] == 0
    first, last = map(int, counts["threads first/last"].split("/"))
    assert last <= first + 2
    first, last = map(int, counts["fds first/last"].split("/"))
    assert last <= first + 4
