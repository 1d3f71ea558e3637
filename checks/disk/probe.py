"""Measures mounts in a child process, so a hung network mount can never block the agent.

The child answers each request from its own thread and refuses a second request
for a mount whose first is still stuck, so stuck system calls never pile up:
a hung mount costs one thread in the child, and is reported as unresponsive
until the call returns. The agent itself only ever waits with a deadline.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass

# The child's protocol is plain text, so it loads nothing but os, sys and threading (json alone would add
# ~0.6 MiB to it): "ID PATH-HEX" in; "ID PATH-HEX stat N N N N N N N", "ID PATH-HEX error TEXT" or
# "ID PATH-HEX busy" out. Paths travel hex-encoded: a mount point may hold any byte but NUL.
WORKER = r"""
import os, sys, threading
pending, lock, out = set(), threading.Lock(), threading.Lock()
def reply(rid, key, what):
    with out:
        sys.stdout.write(f"{rid} {key} {what}\n"); sys.stdout.flush()
def measure(rid, key, path):
    try:
        s = os.statvfs(path)
        reply(rid, key, "stat " + " ".join(map(str, (s.f_frsize, s.f_blocks, s.f_bfree, s.f_bavail,
                                                         s.f_files, s.f_ffree, s.f_favail))))
    except OSError as exc:
        reply(rid, key, "error " + " ".join((exc.strerror or str(exc)).split()))
    finally:
        with lock:
            pending.discard(path)
for line in sys.stdin:
    rid, key = line.split()
    path = os.fsdecode(bytes.fromhex(key))
    with lock:
        busy = path in pending
        pending.add(path)
    if busy:
        reply(rid, key, "busy")
    else:
        threading.Thread(target=measure, args=(rid, key, path), daemon=True).start()
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
    def usable(self) -> int:
        """The size df's Use% counts (used + available to users): the one size Forewarn reports."""
        return self.used + self.free

    @property
    def used_ratio(self) -> float:
        return self.used / self.usable if self.usable else 0.0

    @property
    def inodes_used_ratio(self) -> float:
        return (self.files - self.files_free) / self.files if self.files else 0.0


@dataclass(frozen=True, slots=True)
class Unanswered:
    reason: str
    hung: bool = True
    """False when the system answered with an error (e.g. the path does not exist): nothing is stuck."""


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
            child.stdin.write(f"{self.next_id} {os.fsencode(path).hex()}\n".encode())
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
                rid, key, kind, *rest = line.decode().split(" ", 3)
                if int(rid) >= first_id and int(rid) in wanted:
                    results[os.fsdecode(bytes.fromhex(key))] = _parse(kind, rest[0] if rest else "")
        for path in paths:
            results.setdefault(path, Unanswered(f"no answer within {timeout:g}s"))
        return results

    def close(self) -> None:
        """Kills the child rather than waiting for it to wind down: it holds no state, and a one-shot
        `agent check` would otherwise spend a child's interpreter shutdown at its end."""
        if self.child is not None:
            self.child.stdin.close()
            self.child.kill()
            try:
                self.child.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass  # a thread stuck in the kernel keeps it until the call returns; never wait for that
            self.child = None


def _parse(kind: str, text: str) -> Usage | Unanswered:
    if kind == "busy":
        return Unanswered("still hung from an earlier measurement")
    if kind == "error":
        return Unanswered(text, hung=False)
    frsize, blocks, bfree, bavail, files, ffree, _ = map(int, text.split())
    return Usage(total=blocks * frsize, free=bavail * frsize, used=(blocks - bfree) * frsize,
                 files=files, files_free=ffree)
