"""Resident cost of `agent run` next to Debian's prometheus-node-exporter.

Three processes run at the same time for one window: the agent on built-in
defaults (disk check every 60 s, the idle case), the agent with the disk check
every 1 s (the busy case), and node_exporter as the peer. For each it samples
RSS (VmHWM for the peak, VmRSS at the end) and CPU (utime+stime from
/proc/PID/stat, as % of one core), then times sequential `/metrics` scrapes
after a warm-up. It prints one table with ratios to the peer and the targets
of the daemon issue: RSS within 2.5x of node_exporter, scrape p99 under 10 ms,
idle CPU under 1% of a core.

Usage: python bench/daemon_overhead.py [--window 60] [--scrapes 500]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.servers import NodeExporter  # noqa: E402

HOST = "127.0.0.1"
TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_EVERY_S = 0.5
WARMUP_SCRAPES = 20
READY_TIMEOUT_S = 30
RSS_RATIO_TARGET = 2.5
P99_TARGET_MS = 10.0
IDLE_CPU_TARGET_PCT = 1.0


@dataclass
class Subject:
    """One process under measurement."""

    name: str
    pid: int
    url: str
    rss_kib: list[int] = field(default_factory=list)
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    scrape_ms: list[float] = field(default_factory=list)
    scrape_bytes: int = 0
    hwm_kib: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def status_kib(pid: int, key: str) -> int:
    """A size from /proc/PID/status: VmRSS now, or VmHWM, the peak RSS since start."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def rss_kib(pid: int) -> int:
    return status_kib(pid, "VmRSS")


def cpu_seconds(pid: int) -> float:
    """utime+stime of the whole process (all threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of proc(5)


def exe_name(pid: int) -> str:
    return Path(f"/proc/{pid}/exe").resolve().name


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and b"forewarn_disk_used_ratio" in response.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not serve disk metrics within {READY_TIMEOUT_S}s")


def start_agent(home: Path, name: str, interval: str | None) -> tuple[subprocess.Popen, str]:
    """`python -m agent.cli run`: the measured PID is the interpreter itself, not a pyenv shim."""
    port = free_port()
    state = home / name
    state.mkdir()
    config = home / f"{name}.yaml"
    checks = f"checks:\n  disk: {{interval: {interval}}}\n" if interval else ""
    config.write_text(f"agent:\n  state_dir: {state}\n  listen: \"{HOST}:{port}\"\n{checks}")
    log = open(home / f"{name}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "-c", str(config)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HOME": str(home)})
    log.close()
    url = f"http://{HOST}:{port}/metrics"
    wait_ready(url, proc)
    if not exe_name(proc.pid).startswith("python"):
        raise RuntimeError(f"measuring {exe_name(proc.pid)}, not the Python interpreter")
    return proc, url


def sample_window(subjects: list[Subject], window_s: float) -> None:
    """RSS every half second and CPU at both ends, with nothing else asking the processes for work."""
    for subject in subjects:
        subject.cpu_start = cpu_seconds(subject.pid)
    end = time.monotonic() + window_s
    while time.monotonic() < end:
        for subject in subjects:
            subject.rss_kib.append(rss_kib(subject.pid))
        time.sleep(SAMPLE_EVERY_S)
    for subject in subjects:
        subject.cpu_end = cpu_seconds(subject.pid)
        subject.rss_kib.append(rss_kib(subject.pid))


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
    subject.rss_kib.append(rss_kib(subject.pid))
    subject.hwm_kib = status_kib(subject.pid, "VmHWM")


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def report(subjects: list[Subject], window_s: float) -> None:
    peer = subjects[-1]
    rows = [
        ("RSS peak (MiB, VmHWM)", lambda s: s.hwm_kib / 1024, "{:.1f}"),
        ("RSS end (MiB)", lambda s: s.rss_kib[-1] / 1024, "{:.1f}"),
        (f"CPU over {window_s:.0f}s (s)", lambda s: s.cpu_end - s.cpu_start, "{:.2f}"),
        ("CPU (% of a core)", lambda s: 100 * (s.cpu_end - s.cpu_start) / window_s, "{:.2f}"),
        ("scrape median (ms)", lambda s: statistics.median(s.scrape_ms), "{:.2f}"),
        ("scrape p99 (ms)", lambda s: p99(s.scrape_ms), "{:.2f}"),
        ("scrape size (KiB)", lambda s: s.scrape_bytes / 1024, "{:.1f}"),
    ]
    width = 22
    header = f"{'':<24}" + "".join(f"{s.name:>{width}}" for s in subjects)
    print(header)
    for label, value, fmt in rows:
        cells = []
        base = value(peer)
        for subject in subjects:
            figure = value(subject)
            ratio = f" ({figure / base:.1f}x)" if subject is not peer and base else ""
            cells.append(f"{fmt.format(figure) + ratio:>{width}}")
        print(f"{label:<24}" + "".join(cells))
    idle, busy = subjects[0], subjects[1]
    rss_ratio = idle.hwm_kib / peer.hwm_kib
    idle_cpu = 100 * (idle.cpu_end - idle.cpu_start) / window_s
    checks = [
        (f"RSS peak within {RSS_RATIO_TARGET}x of node_exporter (idle agent)", f"{rss_ratio:.1f}x",
         rss_ratio <= RSS_RATIO_TARGET),
        (f"scrape p99 under {P99_TARGET_MS:.0f} ms (idle agent)", f"{p99(idle.scrape_ms):.2f} ms",
         p99(idle.scrape_ms) < P99_TARGET_MS),
        (f"scrape p99 under {P99_TARGET_MS:.0f} ms (busy agent)", f"{p99(busy.scrape_ms):.2f} ms",
         p99(busy.scrape_ms) < P99_TARGET_MS),
        (f"idle CPU under {IDLE_CPU_TARGET_PCT:.0f}% of a core", f"{idle_cpu:.2f}%", idle_cpu < IDLE_CPU_TARGET_PCT),
    ]
    print(f"\n{'target':<52} {'measured':>10}  result")
    for label, measured, ok in checks:
        print(f"{label:<52} {measured:>10}  {'met' if ok else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=60.0, help="seconds of CPU/RSS sampling")
    parser.add_argument("--scrapes", type=int, default=500, help="timed sequential scrapes per process")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="forewarn-bench-"))
    agents: list[subprocess.Popen] = []
    exporter = NodeExporter()
    try:
        exporter.start()
        idle_proc, idle_url = start_agent(home, "idle", None)
        agents.append(idle_proc)
        busy_proc, busy_url = start_agent(home, "busy", "1s")
        agents.append(busy_proc)
        subjects = [Subject("agent (60s, idle)", idle_proc.pid, idle_url),
                    Subject("agent (1s, busy)", busy_proc.pid, busy_url),
                    Subject("node_exporter", exporter.pid, exporter.metrics_url)]
        if exe_name(exporter.pid) != "prometheus-node-exporter":
            raise RuntimeError(f"measuring {exe_name(exporter.pid)}, not node_exporter")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; window {args.window:.0f}s, "
              f"{args.scrapes} scrapes each after {WARMUP_SCRAPES} warm-up; the three run concurrently\n")
        sample_window(subjects, args.window)
        for subject in subjects:
            scrape(subject, args.scrapes)
        report(subjects, args.window)
    finally:
        for proc in agents:
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
