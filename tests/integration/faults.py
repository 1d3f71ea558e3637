"""Faults on a real host, for the resilience tests and bench/resilience.py: an `agent run` process driven from
outside, a filesystem kept full, a disk filled to a given level."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import yaml

from tests.integration.servers import free_port, wait_until

CHUNK = 1 << 20


class AgentProcess:
    """One `agent run` with its config file, log and /healthz."""

    def __init__(self, folder: Path, config: dict):
        self.folder, self.port = folder, free_port()
        self.config_path = folder / "forewarn.yaml"
        self.config_path.write_text(yaml.safe_dump(config, allow_unicode=True))
        self.log_path = folder / "agent.log"
        self.process: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> None:
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "-c", str(self.config_path),
                                             "--listen", f"127.0.0.1:{self.port}"], stdout=log,
                                            stderr=subprocess.STDOUT)
        if wait:
            assert wait_until(lambda: self.health() is not None, 30), self.log()

    def health(self) -> str | None:
        """The /healthz answer's body, or None while nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as answer:
                return answer.read().decode()
        except OSError:
            return None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        finally:
            self.kill()

    def agent(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agent.cli", *args, "-c", str(self.config_path)],
                              capture_output=True, text=True, timeout=60)


def notices(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def fill(directory: Path, name: str = "filler") -> int:
    """Writes into `directory` until its filesystem refuses; returns the bytes written."""
    written = 0
    with open(directory / name, "ab") as out:
        try:
            while True:
                written += out.write(b"\0" * CHUNK)
                out.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    try:  # the last partial megabyte
        with open(directory / name, "ab") as out:
            while True:
                written += out.write(b"\0" * 4096)
                out.flush()
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    return written


def fill_to(mount: Path, ratio: float, name: str = "data") -> None:
    """Brings a filesystem to `ratio` used with one file."""
    stat = os.statvfs(mount)
    total, free = stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize
    need = int(total * ratio) - (total - free)
    if need > 0:
        with open(mount / name, "ab") as out:
            out.write(b"\0" * need)


class KeepFull:
    """Keeps a filesystem full (whatever is freed is taken again at once) until stopped; then frees it."""

    def __init__(self, directory: Path, pause: float = 0.05):
        self.directory, self.pause = directory, pause
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> KeepFull:
        fill(self.directory)
        self.thread.start()
        return self

    def _run(self) -> None:
        count = 0
        while not self.stopping.wait(self.pause):
            count += 1
            fill(self.directory, f"filler-{count % 50}")

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        for path in self.directory.glob("filler*"):
            path.unlink()
