"""The state database in trouble, seen from outside: a full state filesystem (a real tmpfs, filled), a damaged,
emptied or locked file. Commands answer in one line with exit 2; the daemon keeps telling owners and says why."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
import yaml

from tests.integration.faults import AgentProcess, KeepFull, fill, fill_to, notices
from tests.integration.servers import tmpfs, wait_until


def config(state, notices_path, watched) -> dict:
    return {
        "agent": {"state_dir": str(state), "default_owner": "it", "hostname": "fin-fs01"},
        "owners": {"it": {"department": "IT", "address_as": "Team", "notify": ["it-file"]}},
        "resources": [{"name": "Finance scratch space", "owner": "it", "impact": "the nightly invoice export fails",
                       "match": {"check": "disk", "mount": str(watched)}}],
        "checks": {"disk": {"interval": "1s", "for": "0s", "mounts": [str(watched)], "warning": "90%",
                            "critical": "95%"}},
        "notifiers": {"it-file": {"type": "file", "path": str(notices_path)}},
    }


def agent(*args: str, config_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args, "-c", str(config_path)], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def root():
    if os.geteuid() != 0:
        pytest.fail("these tests mount real tmpfs disks and must run as root (mount -t tmpfs)")


def test_agent_check_still_reports_the_full_disk_when_the_state_filesystem_is_full(root, tmp_path):
    with tmpfs("8m") as state, tmpfs("16m") as watched:
        fill(state)
        fill_to(watched, 0.97)
        path = tmp_path / "forewarn.yaml"
        path.write_text(yaml.safe_dump(config(state, tmp_path / "n.jsonl", watched)))
        done = agent("check", config_path=path)
    assert done.returncode == 2, done.stderr  # CRITICAL, as Nagios reads it
    assert str(watched) in done.stdout and "CRITICAL" in done.stdout
    assert "is full" in done.stderr and "in memory" in done.stderr and "Traceback" not in done.stderr


def test_the_daemon_keeps_telling_the_owner_while_its_state_filesystem_is_full_and_recovers(root, tmp_path):
    notices_path = tmp_path / "notices.jsonl"
    with tmpfs("64m") as state, tmpfs("16m") as watched:
        daemon = AgentProcess(tmp_path, config(state, notices_path, watched))
        daemon.start()
        try:
            assert (state / "forewarn.reserve").exists()
            with KeepFull(state):
                fill_to(watched, 0.97)
                assert wait_until(lambda: any(n["severity"] == "critical" for n in notices(notices_path)), 60), \
                    daemon.log()
                assert daemon.alive(), daemon.log()
                assert wait_until(lambda: "in memory" in (daemon.health() or ""), 20), daemon.log()
                assert "is full" in daemon.log()
            assert wait_until(lambda: "back on disk" in daemon.log(), 30), daemon.log()
            assert daemon.health() == "ok\n"
            listed = daemon.agent("incidents")
            assert listed.returncode == 0 and str(watched) in listed.stdout, listed.stderr
            assert daemon.stop() == 0
        finally:
            daemon.kill()
    [opening] = [n for n in notices(notices_path) if n["severity"] == "critical"]
    assert "Finance scratch space" in opening["body"]
    assert "Traceback" not in daemon.log()


def damage(path) -> None:
    with open(path, "r+b") as f:
        f.seek(2 * 4096)
        f.write(bytes(range(256)) * 4)


@pytest.fixture
def written(tmp_path):
    """A config and a state database with a few pages of history."""
    path = tmp_path / "forewarn.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path / "state", tmp_path / "n.jsonl", "/")))
    assert agent("check", config_path=path).returncode in (0, 1, 2)
    db = sqlite3.connect(tmp_path / "state" / "forewarn.db")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


def expected_exit(command: list[str]) -> int:
    """`agent check` is a monitoring plugin: what stops it is UNKNOWN (3); every other command exits 2."""
    return 3 if command == ["check"] else 2


@pytest.mark.parametrize("command", [["incidents"], ["check"], ["silence", "list"]])
def test_a_damaged_database_is_one_line_naming_the_file_and_exit_2(written, tmp_path, command):
    damage(tmp_path / "state" / "forewarn.db")
    done = agent(*command, config_path=written)
    assert done.returncode == expected_exit(command)
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert f"{tmp_path / 'state' / 'forewarn.db'}: the state database is damaged" in done.stderr


def test_an_emptied_database_is_not_silently_started_afresh(written, tmp_path):
    os.truncate(tmp_path / "state" / "forewarn.db", 0)
    done = agent("incidents", config_path=written)
    assert done.returncode == 2 and "is empty" in done.stderr and len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", [["incidents"], ["check"]])
def test_a_locked_database_is_one_line_and_exit_2(written, tmp_path, command):
    holder = sqlite3.connect(tmp_path / "state" / "forewarn.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        done = agent(*command, config_path=written)
    finally:
        holder.execute("ROLLBACK")
    assert done.returncode == expected_exit(command)
    assert done.stderr.splitlines() == [f"agent: {tmp_path / 'state' / 'forewarn.db'}: the state database is locked "
                                        "by another process; is another agent running with the same state_dir?"]


def test_the_daemon_keeps_speaking_on_a_damaged_database_and_says_so(written, tmp_path):
    damage(tmp_path / "state" / "forewarn.db")
    (tmp_path / "d").mkdir()
    with tmpfs("16m") as watched:
        document = config(tmp_path / "state", tmp_path / "d" / "n.jsonl", watched)
        daemon = AgentProcess(tmp_path / "d", document)
        daemon.start()
        try:
            fill_to(watched, 0.97)
            assert wait_until(lambda: notices(tmp_path / "d" / "n.jsonl"), 60), daemon.log()
            assert "damaged" in daemon.health() and "in memory" in daemon.health()
            assert "the state database is damaged" in daemon.log()
            assert daemon.stop() == 0
        finally:
            daemon.kill()
