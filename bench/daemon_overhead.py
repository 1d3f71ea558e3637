"""Memory and CPU of `agent run` and its children, beside Debian's prometheus-node-exporter, in one run.

Three processes run at the same time for one window: the agent on built-in
defaults (disk check every 60 s: the idle case), the agent that has composed
and sent notices (disk check every 1 s, limits of 1% and 2% so every run
finds something, a file channel: the busy case), and node_exporter as the
peer. Memory is PSS (/proc/PID/smaps_rollup), summed over the process and its
children (the disk prober), so pages they share are counted once; it is
sampled every half second and the peak is reported, with the main process's
RSS beside it. CPU is utime+stime of the tree over the window. Then `/metrics`
is scraped in sequence after a warm-up.

pydantic's share is measured in the same run (a python that imports pydantic
against a bare one), so the figure without it can be read off while the
config still uses it; the table says whether the agent has it loaded.

Targets (install issue): idle <= 30 MiB, after notices <= 40 MiB; scrape p99
under 10 ms and idle CPU under 1% of a core (daemon issue).

Usage: python bench/daemon_overhead.py [--window 60] [--scrapes 500]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.servers import NodeExporter, free_port  # noqa: E402

HOST = "127.0.0.1"
TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_EVERY_S = 0.5
WARMUP_SCRAPES = 20
READY_TIMEOUT_S = 60
IDLE_TARGET_MIB = 30.0
NOTICES_TARGET_MIB = 40.0
P99_TARGET_MS = 10.0
IDLE_CPU_TARGET_PCT = 1.0
BUSY_CONFIG = """\
checks:
  disk: {interval: 1s, for: 0s, warning: 1%, critical: 2%}
owners:
  it: {department: IT, contact: On-call, address_as: Team, notify: [audit]}
notifiers:
  audit: {type: file, path: NOTICES}
"""


@dataclass
class Subject:
    """One process tree under measurement."""

    name: str
    pid: int
    url: str
    pss_kib: list[int] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    scrape_ms: list[float] = field(default_factory=list)
    scrape_bytes: int = 0
    processes: int = 1
    pydantic: bool = False


def tree(pid: int) -> list[int]:
    """The process and all its descendants, from /proc/PID/task/*/children."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            try:
                queue += [int(c) for c in (task / "children").read_text().split()]
            except FileNotFoundError:  # a thread that ended meanwhile (the agent's HTTP threads come and go)
                continue
    return found


def proc_kib(path: str, key: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in {path}")


def pss_kib(pid: int) -> int:
    return sum(proc_kib(f"/proc/{p}/smaps_rollup", "Pss") for p in tree(pid))


def cpu_seconds(pid: int) -> float:
    """utime+stime of the tree (all threads), in seconds."""
    total = 0
    for p in tree(pid):
        stat = Path(f"/proc/{p}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total / TICKS


def has_pydantic(pid: int) -> bool:
    return "pydantic_core" in Path(f"/proc/{pid}/maps").read_text()


def exe_name(pid: int) -> str:
    return Path(f"/proc/{pid}/exe").resolve().name


def wait_until(ready, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready within {READY_TIMEOUT_S}s")


def serves_disk_metrics(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200 and b"forewarn_disk_used_ratio" in response.read()
    except OSError:
        return False


def start_agent(home: Path, name: str, extra: str) -> tuple[subprocess.Popen, str]:
    """`python -m agent run`: the measured PID is the interpreter itself, not a pyenv shim."""
    port = free_port()
    (home / name).mkdir()
    config = home / f"{name}.yaml"
    notices = home / name / "notices.jsonl"
    config.write_text(f"agent: {{state_dir: {home / name}, listen: \"{HOST}:{port}\"}}\n"
                      + extra.replace("NOTICES", str(notices)))
    with open(home / f"{name}.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(config)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(home)})
    url = f"http://{HOST}:{port}/metrics"
    wait_until(lambda: serves_disk_metrics(url), proc, name)
    if extra:
        wait_until(lambda: notices.exists() and notices.stat().st_size > 0, proc, f"{name}: first notice")
    if not exe_name(proc.pid).startswith("python"):
        raise RuntimeError(f"measuring {exe_name(proc.pid)}, not the Python interpreter")
    return proc, url


def sleeper(imports: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"{imports}import time; time.sleep(3600)"])


def sample_window(subjects: list[Subject], window_s: float) -> None:
    """PSS and RSS every half second, CPU at both ends, with nothing else asking the processes for work."""
    for subject in subjects:
        subject.cpu_start = cpu_seconds(subject.pid)
    end = time.monotonic() + window_s
    while time.monotonic() < end:
        for subject in subjects:
            subject.pss_kib.append(pss_kib(subject.pid))
            subject.rss_kib.append(proc_kib(f"/proc/{subject.pid}/status", "VmRSS"))
        time.sleep(SAMPLE_EVERY_S)
    for subject in subjects:
        subject.cpu_end = cpu_seconds(subject.pid)
        subject.processes = len(tree(subject.pid))
        subject.pydantic = has_pydantic(subject.pid)


def scrape(subject: Subject, count: int) -> None:
    for _ in range(WARMUP_SCRAPES):
        with urllib.request.urlopen(subject.url, timeout=5) as response:
            response.read()
    for _ in range(count):
        start = time.perf_counter()
        with urllib.request.urlopen(subject.url, timeout=5) as response:
            body = response.read()
        subject.scrape_ms.append((time.perf_counter() - start) * 1000)
        subject.scrape_bytes = len(body)
    subject.pss_kib.append(pss_kib(subject.pid))


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def peak_mib(subject: Subject) -> float:
    return max(subject.pss_kib) / 1024


def report(subjects: list[Subject], window_s: float, pydantic_mib: float) -> None:
    peer = subjects[-1]
    rows = [
        ("PSS peak, tree (MiB)", peak_mib, "{:.1f}"),
        ("PSS end, tree (MiB)", lambda s: s.pss_kib[-1] / 1024, "{:.1f}"),
        ("RSS peak, main (MiB)", lambda s: max(s.rss_kib) / 1024, "{:.1f}"),
        ("processes", lambda s: s.processes, "{:.0f}"),
        ("pydantic loaded", lambda s: s.pydantic, "{}"),
        (f"CPU over {window_s:.0f}s (% core)", lambda s: 100 * (s.cpu_end - s.cpu_start) / window_s, "{:.2f}"),
        ("scrape median (ms)", lambda s: statistics.median(s.scrape_ms), "{:.2f}"),
        ("scrape p99 (ms)", lambda s: p99(s.scrape_ms), "{:.2f}"),
        ("scrape size (KiB)", lambda s: s.scrape_bytes / 1024, "{:.1f}"),
    ]
    width = 22
    print(f"{'':<30}" + "".join(f"{s.name:>{width}}" for s in subjects))
    for label, value, fmt in rows:
        cells = []
        for subject in subjects:
            figure = value(subject)
            ratio = ""
            if "MiB" in label and subject is not peer and value(peer):
                ratio = f" ({figure / value(peer):.1f}x)"
            cells.append(f"{fmt.format(figure) + ratio:>{width}}")
        print(f"{label:<30}" + "".join(cells))
    idle, busy = subjects[0], subjects[1]
    if pydantic_mib:
        print(f"\npydantic's own share (a python with pydantic and one TypeAdapter, less a bare one): "
              f"{pydantic_mib:.1f} MiB (approximate; without pydantic the agent itself is measured)")
    idle_cpu = 100 * (idle.cpu_end - idle.cpu_start) / window_s
    checks = [
        (f"idle on defaults, PSS peak <= {IDLE_TARGET_MIB:.0f} MiB", peak_mib(idle), IDLE_TARGET_MIB, idle.pydantic),
        (f"after notices, PSS peak <= {NOTICES_TARGET_MIB:.0f} MiB", peak_mib(busy), NOTICES_TARGET_MIB,
         busy.pydantic),
    ]
    print(f"\n{'target':<52} {'measured':>10}  result")
    for label, measured, target, loaded in checks:
        print(f"{label:<52} {measured:>7.1f} MiB  {'met' if measured <= target else 'MISSED'}")
        if loaded:
            without = measured - pydantic_mib
            print(f"{'  the same less pydantic (projected)':<52} {without:>7.1f} MiB  {'met' if without <= target else 'MISSED'}")
    for label, measured, ok in (
            (f"scrape p99 under {P99_TARGET_MS:.0f} ms (idle agent)", p99(idle.scrape_ms), None),
            (f"scrape p99 under {P99_TARGET_MS:.0f} ms (busy agent)", p99(busy.scrape_ms), None),
            (f"idle CPU under {IDLE_CPU_TARGET_PCT:.0f}% of a core", idle_cpu, idle_cpu < IDLE_CPU_TARGET_PCT)):
        met = ok if ok is not None else measured < P99_TARGET_MS
        unit = "%" if "CPU" in label else " ms"
        print(f"{label:<52} {measured:>7.2f}{unit:<4} {'met' if met else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=60.0, help="seconds of memory/CPU sampling")
    parser.add_argument("--scrapes", type=int, default=500, help="timed sequential scrapes per process")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="forewarn-bench-"))
    procs: list[subprocess.Popen] = []
    exporter = NodeExporter()
    try:
        exporter.start()
        if exe_name(exporter.pid) != "prometheus-node-exporter":
            raise RuntimeError(f"measuring {exe_name(exporter.pid)}, not node_exporter")
        idle_proc, idle_url = start_agent(home, "idle", "")
        busy_proc, busy_url = start_agent(home, "notices", BUSY_CONFIG)
        procs += [idle_proc, busy_proc]
        if importlib.util.find_spec("pydantic"):  # for comparison with the builds that validated with it
            procs += [sleeper(""), sleeper("from pydantic import BaseModel, TypeAdapter; TypeAdapter(dict[str, int]); ")]
        subjects = [Subject("agent idle (defaults)", idle_proc.pid, idle_url),
                    Subject("agent after notices", busy_proc.pid, busy_url),
                    Subject("node_exporter", exporter.pid, exporter.metrics_url)]
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; window {args.window:.0f}s, "
              f"{args.scrapes} scrapes each after {WARMUP_SCRAPES} warm-up; the three run concurrently\n")
        sample_window(subjects, args.window)
        pydantic_mib = (pss_kib(procs[3].pid) - pss_kib(procs[2].pid)) / 1024 if len(procs) == 4 else 0.0
        for subject in subjects:
            scrape(subject, args.scrapes)
        report(subjects, args.window, pydantic_mib)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        exporter.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
