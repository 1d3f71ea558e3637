import sqlite3

import pytest

from agent.api import Observation, StateError
from agent.store import FILENAME, MIGRATIONS, Store


def obs(ts, value, name="disk_used_bytes"):
    return Observation(name, value, {"mount": "/"}, "bytes", ts)


def test_history_reads_back_in_order(tmp_path):
    store = Store(tmp_path)
    store.record([obs(10, 1.0), obs(5, 0.5)])
    assert store.series("disk_used_bytes", {"mount": "/"}, 0) == [(5, 0.5), (10, 1.0)]


def test_old_samples_are_downsampled_so_a_year_stays_small(tmp_path):
    store = Store(tmp_path)
    day, start = 86400, 1_700_002_800  # a whole hour
    store.record([obs(start + i * 60, float(i)) for i in range(0, 3 * day // 60)])  # three days of minutes
    store.compact(start + 3 * day)
    points = store.series("disk_used_bytes", {"mount": "/"}, 0)
    assert len(points) <= 2 * 1440 + 288 + 1  # the oldest day is kept as 5-minute means
    assert points == sorted(points)
    five_minute = [p for p in points if p[0] < start + day]
    assert five_minute[0] == (start, pytest.approx(2.0))  # mean of minutes 0..4


def test_schema_version_is_recorded_and_reopening_keeps_data(tmp_path):
    Store(tmp_path).record([obs(1, 1.0)])
    store = Store(tmp_path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.series("disk_used_bytes", {"mount": "/"}, 0) == [(1, 1.0)]


def test_corrupt_database_is_a_clear_error(tmp_path):
    (tmp_path / FILENAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="corrupt.*move it aside"):
        Store(tmp_path)


def test_locked_database_is_a_clear_error(tmp_path):
    Store(tmp_path)
    holder = sqlite3.connect(tmp_path / FILENAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = Store.__new__(Store)
        with pytest.raises(StateError, match="locked by another process"):
            Store(tmp_path).record([obs(1, 1.0)])
    finally:
        holder.execute("ROLLBACK")


def test_database_from_a_newer_agent_is_refused(tmp_path):
    Store(tmp_path).db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StateError, match="newer Forewarn"):
        Store(tmp_path)
