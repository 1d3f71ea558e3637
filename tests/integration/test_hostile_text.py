"""Control characters from config text or a mount point's name reach no terminal raw: `agent check`, the
console notifier and `agent incidents` show them escaped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from agent.api import Finding, Severity
from agent.incidents import Incidents, Policy
from agent.store import Store
from tests.integration.faults import fill_to

HOSTILE = "\x1b]0;owned\x07\x1b[2J\r\u202egnp.exe"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def hostile_mount():
    if os.geteuid() != 0:
        pytest.fail("this test mounts a real tmpfs and must run as root (mount -t tmpfs)")
    parent = Path(tempfile.mkdtemp(prefix="forewarn-hostile-"))
    mount = parent / f"disk{HOSTILE}"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True, timeout=30)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True, timeout=30)
        mount.rmdir()
        parent.rmdir()


def write_config(tmp_path: Path, mount: Path) -> Path:
    path = tmp_path / "forewarn.yaml"
    path.write_text(yaml.safe_dump({
        "agent": {"state_dir": str(tmp_path / "state"), "default_owner": "it"},
        "owners": {"it": {"department": f"IT{HOSTILE}", "address_as": f"Team{HOSTILE}", "notify": ["screen"]}},
        "resources": [{"name": f"Scratch{HOSTILE}", "owner": "it", "impact": f"exports fail{HOSTILE}",
                       "match": {"check": "disk", "mount": str(mount)}}],
        "checks": {"disk": {"mounts": [str(mount)], "for": "0s"}},
        "notifiers": {"screen": {"type": "console"}},
    }))
    return path


def agent(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=60)


def test_agent_check_and_the_console_notifier_escape_control_characters(hostile_mount, tmp_path):
    fill_to(hostile_mount, 0.97)
    config = write_config(tmp_path, hostile_mount)
    for args in (["check", "--explain"], ["check", "--notify"]):
        done = agent(*args, "-c", str(config))
        assert done.returncode == 2, done.stderr
        assert not RAW.findall(done.stdout + done.stderr), args
        assert "\\x1b]0;owned\\x07" in done.stdout and "\\u202egnp.exe" in done.stdout, args
    assert "Subject: " in done.stdout and "\\x1b[2J" in done.stdout


def test_agent_incidents_escapes_control_characters(tmp_path):
    config = write_config(tmp_path, Path("/srv/x"))
    store = Store(tmp_path / "state")
    finding = Finding("disk", "disk_full", Severity.CRITICAL, f"/srv/x{HOSTILE}", {"mount": "/srv/x"},
                      f"/srv/x{HOSTILE} is 97% full")
    Incidents(store).evaluate("disk", [finding], 1_764_547_200.0, Policy(0, 0, 3600))
    store.close()
    done = agent("incidents", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert not RAW.findall(done.stdout) and "/srv/x\\x1b]0;owned\\x07" in done.stdout
