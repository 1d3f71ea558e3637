"""Measures mounts in a child process, so a hung network mount can never block the agent.

The child answers each request from its own thread and refuses a second request
for a mount whose first is still stuck, so stuck system calls never pile up:
a hung mount costs one thread in the child, and is reported as unresponsive
until the call returns. The agent itself only ever waits with a deadline.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass

WORKER = r"""
import json, os, sys, threading
pending, lock, out = set(), threading.Lock(), threading.Lock()
def reply(obj):
    with out:
        sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()
def measure(rid, path):
    try:
        s = os.statvfs(path)
        reply({"id": rid, "path": path, "stat": [s.f_frsize, s.f_blocks, s.f_bfree, s.f_bavail,
                                                  s.f_files, s.f_ffree, s.f_favail]})
    except OSError as exc:
        reply({"id": rid, "path": path, "error": exc.strerror or str(exc)})
    finally:
        with lock:
            pending.discard(path)
for line in sys.stdin:
    rid, path = json.loads(line)
    with lock:
        busy = path in pending
        pending.add(path)
    if busy:
        reply({"id": rid, "path": path, "busy": True})
    else:
        threading.Thread(target=measure, args=(rid, path), daemon=True).start()
"""


@dataclass(frozen=True, slots=True)
class Usage:
    total: int
    free: int
    """Free for unprivileged users (what df calls Avail)."""
    used: int
    files: int
    files_free: int

    @property
    def used_ratio(self) -> float:
        usable = self.used + self.free
        return self.used / usable if usable else 0.0

    @property
    def inodes_used_ratio(self) -> float:
        return (self.files - self.files_free) / self.files if self.files else 0.0


@dataclass(frozen=True, slots=True)
class Unanswered:
    reason: str


class Prober:
    """A long-lived measuring child; `measure` waits at most `timeout` seconds in total."""

    def __init__(self, command: list[str] | None = None):
        self.command = command or [sys.executable, "-I", "-S", "-c", WORKER]
        self.child: subprocess.Popen | None = None
        self.buffer = b""
        self.next_id = 0

    def _start(self) -> subprocess.Popen:
        if self.child is None or self.child.poll() is not None:
            self.child = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, close_fds=True)
            self.buffer = b""
        return self.child

    def measure(self, paths: list[str], timeout: float) -> dict[str, Usage | Unanswered]:
        child = self._start()
        first_id = self.next_id
        wanted: dict[int, str] = {}
        for path in paths:
            wanted[self.next_id] = path
            child.stdin.write((json.dumps([self.next_id, path]) + "\n").encode())
            self.next_id += 1
        child.stdin.flush()
        results: dict[str, Usage | Unanswered] = {}
        deadline = time.monotonic() + timeout
        while len(results) < len(wanted):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([child.stdout], [], [], left)[0]:
                break
            chunk = os.read(child.stdout.fileno(), 65536)
            if not chunk:
                self.child = None
                break
            self.buffer += chunk
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                answer = json.loads(line)
                if answer["id"] >= first_id and answer["id"] in wanted:
                    results[answer["path"]] = _parse(answer)
        for path in paths:
            results.setdefault(path, Unanswered(f"no answer within {timeout:g}s"))
        return results

    def close(self) -> None:
        if self.child is not None:
            self.child.stdin.close()
            try:
                self.child.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.child.kill()  # a thread stuck in the kernel keeps it until the call returns
            self.child = None


def _parse(answer: dict) -> Usage | Unanswered:
    if answer.get("busy"):
        return Unanswered("still hung from an earlier measurement")
    if "error" in answer:
        return Unanswered(answer["error"])
    frsize, blocks, bfree, bavail, files, ffree, _ = answer["stat"]
    return Usage(total=blocks * frsize, free=bavail * frsize, used=(blocks - bfree) * frsize,
                 files=files, files_free=ffree)
