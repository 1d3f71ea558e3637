"""What the agent writes: never through a planted symbolic link; a root run outside systemd is warned about."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.integration.faults import AgentProcess


def config(tmp_path, notices) -> dict:
    return {"agent": {"state_dir": str(tmp_path / "state"), "default_owner": "it"},
            "owners": {"it": {"department": "IT", "notify": ["it-file"]}},
            "checks": {"disk": {"mounts": ["/"], "warning": "0%", "critical": "100%", "for": "0s"}},
            "notifiers": {"it-file": {"type": "file", "path": str(notices)}}}


def test_the_file_notifier_does_not_append_through_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "notices.jsonl").symlink_to(victim)
    path = tmp_path / "forewarn.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, tmp_path / "notices.jsonl")))
    done = subprocess.run([sys.executable, "-m", "agent.cli", "check", "--notify", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert victim.read_text() == "precious\n"
    assert "it-file: delivery dead: cannot append to" in done.stderr and "symbolic link" in done.stderr


@pytest.mark.parametrize("under_systemd", [False, True])
def test_running_as_root_outside_systemd_is_warned_about(tmp_path, under_systemd, monkeypatch):
    if os.geteuid() != 0:
        pytest.fail("this test checks the root warning and must run as root")
    if under_systemd:
        monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef")
    else:
        monkeypatch.delenv("INVOCATION_ID", raising=False)
    daemon = AgentProcess(tmp_path, config(tmp_path, tmp_path / "n.jsonl"))
    daemon.start()
    try:
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert ("running as root outside systemd" in daemon.log()) is not under_systemd
