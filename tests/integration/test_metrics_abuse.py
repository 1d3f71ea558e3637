"""/metrics under abuse, against a real `agent run`: half-sent requests hold no threads and are cut off, the
listen backlog takes a crowd, a scraper is served throughout."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from pathlib import Path

from tests.integration.faults import AgentProcess
from tests.integration.servers import wait_until


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def hung_up(connection: socket.socket) -> bool:
    try:
        return connection.recv(1024) == b""
    except ConnectionResetError:
        return True


def config(tmp_path) -> dict:
    return {"agent": {"state_dir": str(tmp_path / "state"), "default_owner": "it"},
            "owners": {"it": {"department": "IT", "notify": ["it-file"]}},
            "checks": {"disk": {"mounts": ["/"], "interval": "5s"}},
            "notifiers": {"it-file": {"type": "file", "path": str(tmp_path / "n.jsonl")}}}


def test_half_sent_requests_hold_no_threads_are_cut_off_and_a_scraper_is_served(tmp_path):
    daemon = AgentProcess(tmp_path, config(tmp_path))
    daemon.start()
    slow = []
    try:
        before = threads_of(daemon.process.pid)
        for _ in range(600):
            connection = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
            connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
            slow.append(connection)
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/metrics", timeout=10) as answer:
            assert answer.status == 200 and b"forewarn_build_info" in answer.read()
        assert threads_of(daemon.process.pid) <= before + 5
        assert all(hung_up(c) for c in slow)  # each cut off (bounded by the test's socket timeout)
        assert daemon.alive()
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{daemon.port}"], capture_output=True, text=True)
        assert int(listening.stdout.split()[2]) >= 128  # Send-Q of a listening socket: its backlog
        assert daemon.stop() == 0
    finally:
        for connection in slow:
            connection.close()
        daemon.kill()
