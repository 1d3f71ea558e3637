import logging
import os
import sqlite3
import subprocess
import sys

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
    with pytest.raises(StateError, match="damaged.*move it aside"):
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


def garble(path, data: bytes, at: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)


def test_garbled_pages_are_found_at_open_and_named(tmp_path):
    store = Store(tmp_path)
    store.record([obs(i, float(i)) for i in range(5000)])
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    garble(tmp_path / FILENAME, bytes(range(256)) * 8, 3 * 4096)  # a b-tree page's header
    with pytest.raises(StateError, match=f"{tmp_path / FILENAME}: the state database is damaged") as caught:
        Store(tmp_path)
    assert "\n" not in str(caught.value) and "Page 4" in str(caught.value)


def test_a_database_emptied_to_zero_bytes_is_not_reused_as_a_new_one(tmp_path):
    Store(tmp_path).record([obs(1, 1.0)])
    os.truncate(tmp_path / FILENAME, 0)
    with pytest.raises(StateError, match="is empty"):
        Store(tmp_path)
    assert (tmp_path / FILENAME).stat().st_size == 0  # left as found, for whoever looks into it


def test_the_daemon_keeps_going_in_memory_on_a_damaged_file_and_says_so(tmp_path, caplog):
    (tmp_path / FILENAME).write_bytes(b"\0" * 0 + b"garbage" * 1000)
    with caplog.at_level(logging.ERROR):
        store = Store(tmp_path, keep_going=True)
        second = Store(tmp_path, keep_going=True)  # the daemon's sender: the same in-memory state
    store.record([obs(1, 1.0)])
    assert second.series("disk_used_bytes", {"mount": "/"}, 0) == [(1, 1.0)]
    assert "damaged" in store.problem and str(tmp_path / FILENAME) in caplog.text and "in memory" in caplog.text
    assert (tmp_path / FILENAME).read_bytes() == b"garbage" * 1000  # untouched


def test_a_symlinked_database_is_refused_and_its_target_is_not_created(tmp_path):
    (tmp_path / "state").mkdir()
    target = tmp_path / "elsewhere.db"
    (tmp_path / "state" / FILENAME).symlink_to(target)
    with pytest.raises(StateError, match="symbolic link"):
        Store(tmp_path / "state")
    assert not target.exists()


def test_state_dir_is_0700_and_database_0600_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        Store(tmp_path / "state").record([obs(1, 1.0)])
    finally:
        os.umask(old)
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    for name in (FILENAME, FILENAME + "-wal", FILENAME + "-shm"):
        if (tmp_path / "state" / name).exists():
            assert (tmp_path / "state" / name).stat().st_mode & 0o777 == 0o600, name


OPEN = "import sys; from agent.store import Store; Store(sys.argv[1]).close()"


def test_processes_creating_a_fresh_database_at_once_all_succeed(tmp_path):
    for round_ in range(8):
        state = tmp_path / f"s{round_}"
        openers = [subprocess.Popen([sys.executable, "-c", OPEN, str(state)], stderr=subprocess.PIPE, text=True)
                   for _ in range(4)]
        errors = [p.communicate(timeout=60)[1] for p in openers]
        assert [p.returncode for p in openers] == [0] * 4, errors
        assert sorted(os.listdir(state)) == [FILENAME] or FILENAME in os.listdir(state)
        assert not [n for n in os.listdir(state) if n.endswith(".new")]


def test_the_daemon_does_not_run_in_memory_beside_another_agent_holding_the_lock(tmp_path):
    Store(tmp_path)
    holder = sqlite3.connect(tmp_path / FILENAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StateError, match="locked by another process"):
            Store(tmp_path, keep_going=True)
    finally:
        holder.execute("ROLLBACK")
