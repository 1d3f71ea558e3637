"""Disk forecasts on real filesystems, checked from outside through `agent check --json`.

Five small tmpfs disks (root only) are driven by threads, each along its own
scenario, while `agent check disk` runs about once a second against all of
them, as a user would see it on a host with several disks:

- steady fill: one writer fills the disk at a constant pace, so it is full
  after about 70 s; the agent must warn BEFORE that, with a time range that
  holds the moment the disk really became full;
- flat, burst, sawtooth (log rotation) and shrinking disks: the agent must
  never claim they are filling up.

One agent process per second measures all the disks (this machine has two
CPUs; four agents a second would starve the sampling). Every disk has its own
tmpfs; the observations of each are keyed by their mount, so they do not mix.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from tests.integration.servers import tmpfs

DISK_SIZE = "48m"
FILL_SECONDS = 70.0        # the steady disk is full about this long after the start
HARD_LIMIT_S = 120.0       # no loop in this file runs longer than this
TOLERANCE_S = 3.0          # sampling and the whole seconds of the ISO timestamps
TECHNICAL_WORDS = ("p99", "inode", "errno", "threshold", "statvfs", "tmpfs")
SCENARIOS = ("steady", "flat", "burst", "sawtooth", "shrinking")


def agent_command() -> list[str]:
    beside = Path(sys.executable).with_name("agent")
    found = str(beside) if beside.exists() else shutil.which("agent")
    assert found, "the `agent` command is not installed (pip install -e .)"
    return [found]


# ---------------------------------------------------------------- scenario drivers


def statvfs_free(mount: Path) -> int:
    st = os.statvfs(mount)
    return st.f_bavail * st.f_frsize


def statvfs_size(mount: Path) -> int:
    st = os.statvfs(mount)
    return st.f_blocks * st.f_frsize


def write_bytes(path: Path, size: int) -> None:
    chunk = b"\0" * (1 << 20)
    with open(path, "ab") as out:
        left = size
        while left > 0:
            left -= out.write(chunk[:min(left, len(chunk))])


def pace(start: float, until: float, stop: threading.Event) -> bool:
    """Sleeps until `start + until` (monotonic); False when asked to stop."""
    delay = start + until - time.monotonic()
    return not stop.wait(delay) if delay > 0 else not stop.is_set()


@dataclass
class Scenario:
    name: str
    mount: Path
    stop: threading.Event
    start: float = 0.0                  # monotonic
    full_at: float | None = None        # wall clock, when the disk refused a write
    notes: list[str] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def steady_fill(s: Scenario) -> None:
    """Appends at a constant pace so the disk is full after FILL_SECONDS; keeps writing after that."""
    free = statvfs_free(s.mount)
    rate = free / FILL_SECONDS
    s.notes.append(f"free at start {free} B, rate {rate:.0f} B/s")
    written, chunk_max = 0, 256 * 1024
    fd = os.open(s.mount / "growing.dat", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while time.monotonic() - s.start < HARD_LIMIT_S and not s.stop.is_set():
            target = int(rate * (time.monotonic() - s.start))
            while written < target:
                try:
                    written += os.write(fd, b"\1" * min(chunk_max, target - written))
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if s.full_at is None:
                        s.full_at = time.time()
                        s.notes.append(f"full after {time.monotonic() - s.start:.1f} s, {written} B written")
                    break
            s.stop.wait(0.05)
    finally:
        os.close(fd)


def flat(s: Scenario) -> None:
    write_bytes(s.mount / "data.dat", int(0.40 * statvfs_size(s.mount)))
    pace(s.start, 65, s.stop)


def burst(s: Scenario) -> None:
    size = statvfs_size(s.mount)
    write_bytes(s.mount / "data.dat", int(0.20 * size))
    if not pace(s.start, 25, s.stop):
        return
    write_bytes(s.mount / "burst.dat", int(0.30 * size))
    s.notes.append(f"burst written at {time.monotonic() - s.start:.1f} s")
    if not pace(s.start, 40, s.stop):
        return
    os.unlink(s.mount / "burst.dat")
    s.notes.append(f"burst deleted at {time.monotonic() - s.start:.1f} s")
    pace(s.start, 65, s.stop)


def sawtooth(s: Scenario) -> None:
    """A log grows steadily to +25% in 15 s, is rotated away, four times over."""
    size = statvfs_size(s.mount)
    write_bytes(s.mount / "data.dat", int(0.10 * size))
    tooth, rate = 15.0, 0.25 * size / 15.0
    for n in range(4):
        began, written = s.start + n * tooth, 0
        with open(s.mount / "app.log", "ab") as log:
            while time.monotonic() - began < tooth and not s.stop.is_set():
                target = int(rate * (time.monotonic() - began))
                if target > written:
                    written += log.write(b"\1" * (target - written))
                    log.flush()
                s.stop.wait(0.05)
        os.unlink(s.mount / "app.log")
        s.notes.append(f"rotated at {time.monotonic() - s.start:.1f} s after {written} B")
        if s.stop.is_set():
            return


def shrinking(s: Scenario) -> None:
    """Starts 60% full, and a cleanup job frees space steadily down to 10% in 60 s."""
    size = statvfs_size(s.mount)
    path = s.mount / "old.dat"
    write_bytes(path, int(0.60 * size))
    high, low, span = 0.60 * size, 0.10 * size, 60.0
    while not s.stop.is_set():
        elapsed = time.monotonic() - s.start
        if elapsed >= span:
            break
        os.truncate(path, int(high - (high - low) * elapsed / span))
        s.stop.wait(0.1)


DRIVERS: dict[str, Callable[[Scenario], None]] = {
    "steady": steady_fill, "flat": flat, "burst": burst, "sawtooth": sawtooth, "shrinking": shrinking,
}


def _drive(s: Scenario) -> None:
    try:
        DRIVERS[s.name](s)
    except BaseException as exc:  # reported by the test of that scenario
        s.error = exc
    finally:
        s.done.set()


# ---------------------------------------------------------------- the agent, run as a user would


@dataclass
class Run:
    started: float      # wall clock
    ended: float
    exit_code: int
    document: dict | None
    stderr: str

    def findings(self, mount: Path, kind: str) -> list[dict]:
        if not self.document:
            return []
        return [f for f in self.document["findings"] if f["resource"] == str(mount) and f["kind"] == kind]

    def measured(self, mount: Path) -> str | None:
        if not self.document:
            return None
        return next((r["status"] for r in self.document["results"] if r["resource"] == str(mount)), None)


@dataclass
class Observed:
    scenarios: dict[str, Scenario]
    runs: list[Run]
    config: dict


def write_config(path: Path, state_dir: Path, mounts: dict[str, Path]) -> dict:
    resources = [{"name": "Finance shared drive", "owner": "finance",
                  "impact": "month-end closing reports can't be saved",
                  "match": {"check": "disk", "mount": str(mounts["steady"])}}]
    resources += [{"name": f"{name.capitalize()} archive", "owner": "it", "impact": "archives stop",
                   "match": {"check": "disk", "mount": str(mounts[name])}} for name in SCENARIOS[1:]]
    config = {
        "agent": {"state_dir": str(state_dir), "default_owner": "it"},
        "owners": {
            "it": {"department": "IT", "contact": "On-call engineer", "address_as": "Team", "tone": "friendly",
                   "language": "en"},
            "finance": {"department": "Finance", "contact": "Marco Santino", "address_as": "Mr. Santino",
                        "tone": "formal", "language": "en", "timezone": "Europe/Rome"},
        },
        "resources": resources,
        "checks": {"disk": {"interval": "1s", "for": "0s", "warning": "99%", "critical": "100%",
                            "inodes_warning": "100%", "inodes_critical": "100%"}},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return config


def run_check(config: Path, cwd: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if k != "FOREWARN_CONFIG"}
    started = time.time()
    done = subprocess.run(agent_command() + ["check", "disk", "-c", str(config), "--json"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=30)
    document = None
    with contextlib.suppress(ValueError):
        document = json.loads(done.stdout)
    return Run(started, time.time(), done.returncode, document, done.stderr[-2000:])


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """Runs all five scenarios at once, with `agent check disk` about once a second, for about 75 s."""
    if os.geteuid() != 0:
        pytest.fail("these tests mount real tmpfs disks and must run as root (mount -t tmpfs)")
    base = tmp_path_factory.mktemp("disk-forecast")
    with contextlib.ExitStack() as stack:
        mounts = {name: stack.enter_context(tmpfs(DISK_SIZE)) for name in SCENARIOS}
        config = write_config(base / "forewarn.yaml", base / "state", mounts)
        stop = threading.Event()
        scenarios = {name: Scenario(name, mounts[name], stop) for name in SCENARIOS}
        stack.callback(stop.set)  # drivers end before the disks are unmounted
        start = time.monotonic()
        threads = []
        for s in scenarios.values():
            s.start = start
            threads.append(threading.Thread(target=_drive, args=(s,), name=f"disk-{s.name}", daemon=True))
        for thread in threads:
            thread.start()
        for thread in threads:
            stack.callback(thread.join, 10)
        stack.callback(stop.set)

        runs: list[Run] = []
        steady = scenarios["steady"]
        while time.monotonic() - start < HARD_LIMIT_S:
            began = time.monotonic()
            runs.append(run_check(base / "forewarn.yaml", base))
            drivers_done = all(s.done.is_set() for n, s in scenarios.items() if n != "steady")
            steady_over = steady.done.is_set() or (steady.full_at is not None and time.time() > steady.full_at + 3)
            if drivers_done and steady_over:
                break
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
        stop.set()
        yield Observed(scenarios, runs, config)


def describe(observed: Observed, name: str) -> str:
    s = observed.scenarios[name]
    lines = [f"scenario {name} on {s.mount}: " + "; ".join(s.notes)]
    for run in observed.runs:
        found = [(f["kind"], f["forecast"]) for f in run.findings(s.mount, "disk_filling")]
        lines.append(f"  {datetime.fromtimestamp(run.started).isoformat(timespec='seconds')} exit {run.exit_code} "
                     f"{run.measured(s.mount)} {found or ''}")
    return "\n".join(lines)


def assert_measured_throughout(observed: Observed, name: str) -> None:
    s = observed.scenarios[name]
    assert s.error is None, f"the {name} scenario itself broke: {s.error!r}"
    broken = [r for r in observed.runs if r.document is None or r.exit_code not in (0, 1, 2)]
    assert not broken, (f"`agent check disk --json` failed: exit {broken[0].exit_code}, "
                        f"stderr: {broken[0].stderr}")
    assert len(observed.runs) >= 30, f"only {len(observed.runs)} checks ran in {HARD_LIMIT_S:g} s"
    unmeasured = [r for r in observed.runs if r.measured(s.mount) in (None, "UNKNOWN")]
    assert not unmeasured, f"{s.mount} (named in resources) was not measured in {len(unmeasured)} runs"


def iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# ---------------------------------------------------------------- tests


def test_steadily_filling_disk_is_forecast_before_it_is_full_with_a_range_that_holds_the_moment(
        observed: Observed) -> None:
    steady = observed.scenarios["steady"]
    assert_measured_throughout(observed, "steady")
    assert steady.full_at is not None, "the steady writer never filled its disk: " + "; ".join(steady.notes)
    before_full = [(run, f) for run in observed.runs if run.ended < steady.full_at - 1
                   for f in run.findings(steady.mount, "disk_filling")]
    assert before_full, ("no disk_filling finding before the disk was full\n" + describe(observed, "steady"))
    first_run, first = before_full[0]
    assert first["severity"] in ("warning", "critical")
    assert first["forecast"] and first["forecast"]["earliest"] and first["forecast"]["latest"], first
    wrong = []
    for run, f in before_full:
        earliest, latest = iso(f["forecast"]["earliest"]), iso(f["forecast"]["latest"])
        if not earliest - TOLERANCE_S <= steady.full_at <= latest + TOLERANCE_S:
            wrong.append(f"at {datetime.fromtimestamp(run.started).isoformat(timespec='seconds')}: "
                         f"{f['forecast']['earliest']} .. {f['forecast']['latest']}")
    truth = datetime.fromtimestamp(steady.full_at).astimezone().isoformat(timespec="seconds")
    assert not wrong, (f"the disk was really full at {truth}, but {len(wrong)} of {len(before_full)} forecasts "
                       f"made before that gave a range without it:\n" + "\n".join(wrong)
                       + "\n" + describe(observed, "steady"))
    lead = steady.full_at - first_run.ended
    assert lead >= 20, f"the first warning came only {lead:.0f} s before the disk was full"


def test_owner_of_the_filling_disk_is_told_in_business_words_only(observed: Observed) -> None:
    steady = observed.scenarios["steady"]
    assert_measured_throughout(observed, "steady")
    warned = [run for run in observed.runs
              if run.findings(steady.mount, "disk_filling") and (steady.full_at is None or run.ended < steady.full_at)]
    assert warned, "no disk_filling finding before the disk was full\n" + describe(observed, "steady")
    device = next(f["labels"]["device"] for f in warned[0].findings(steady.mount, "disk_filling"))
    for run in warned:
        notices = [n for n in run.document["notices"] if n["owner"] == "finance"]
        assert len(notices) == 1, f"finance got {len(notices)} notices, expected one"
        notice = notices[0]
        text = notice["subject"] + "\n" + notice["body"]
        assert "Finance shared drive" in notice["body"], notice["body"]
        assert notice["body"].startswith("Dear Mr. Santino"), notice["body"]
        assert str(steady.mount) not in text, f"the mount path leaks into the owner's notice:\n{text}"
        assert device not in text, f"the device {device!r} leaks into the owner's notice:\n{text}"
        leaked = [w for w in TECHNICAL_WORDS if w in text.lower()]
        assert not leaked, f"technical words {leaked} in the owner's notice:\n{text}"
        assert "disk_filling" in notice["appendix"] and str(steady.mount) in notice["appendix"], notice["appendix"]


@pytest.mark.parametrize("name", ["flat", "burst", "sawtooth", "shrinking"])
def test_disk_that_is_not_filling_up_for_good_is_never_called_filling(observed: Observed, name: str) -> None:
    assert_measured_throughout(observed, name)
    s = observed.scenarios[name]
    alarms = [(run, f) for run in observed.runs for f in run.findings(s.mount, "disk_filling")]
    assert not alarms, (f"{len(alarms)} disk_filling findings for the {name} disk, first: {alarms[0][1]}\n"
                        + describe(observed, name))
