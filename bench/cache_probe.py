"""Cache probe overhead: the agent's PING times next to `redis-cli --latency`, and CPU per hour.

Starts its own redis-server on 127.0.0.1 (tests/integration/servers.py), then:
1. sends PINGs every 10 ms for a few seconds on the agent's persistent
   connection (as `agent run` does, minus the spreading), and runs
   `redis-cli --latency --raw` for the same number of one-second rounds on the
   same server (redis-cli times each PING in whole milliseconds and prints
   min, max, avg, count per round);
2. measures the CPU seconds of the agent's probing (2,000 probes, one in ten on
   a new connection, as configured by default) and of reading the server's
   statistics, and extrapolates to one hour of one target at the default rate
   (20 probes and one statistics read every 30 s).

Usage: python bench/cache_probe.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checks.cache.clients import Session, client_for  # noqa: E402
from checks.cache.config import CacheConfig, Target  # noqa: E402
from checks.cache.stats import quantile  # noqa: E402
from tests.integration.servers import RedisServer, require_binary  # noqa: E402

DEFAULTS = CacheConfig()
PROBES_PER_HOUR = DEFAULTS.probes * 3600 / DEFAULTS.interval
RUNS_PER_HOUR = 3600 / DEFAULTS.interval


def agent_pings(target: Target, seconds: float) -> list[float]:
    """PING every 10 ms on one persistent connection, like redis-cli --latency; seconds per PING."""
    session = Session(client_for(target, 2.0, 0))
    try:
        probes, error = session.cycle(int(seconds * 100), seconds, fresh_every=10**9, patience=2.0,
                                      now=time.time)
    finally:
        session.close()
    if error:
        raise SystemExit(f"agent probes failed: {error}")
    return [p.seconds for p in probes[1:]]  # the first one opened the connection


def redis_cli_rounds(port: int, rounds: int) -> list[tuple[int, int, float, int]]:
    """(min ms, max ms, avg ms, count) of `rounds` one-second `redis-cli --latency --raw` runs."""
    found = []
    for _ in range(rounds):
        done = subprocess.run([require_binary("redis-cli"), "-h", "127.0.0.1", "-p", str(port), "--latency", "--raw"],
                              capture_output=True, text=True, timeout=10)
        low, high, avg, count = done.stdout.split()
        found.append((int(low), int(high), float(avg), int(count)))
    return found


def cpu_seconds(target: Target) -> tuple[float, float]:
    """CPU seconds per probe (default mix of new connections) and per statistics read."""
    session = Session(client_for(target, 2.0, DEFAULTS.slowlog_entries))
    try:
        session.cycle(20, 0.0, 10, 2.0, time.time)  # warm up: imports, first connection
        started = time.process_time()
        session.cycle(2000, 0.0, DEFAULTS.fresh_every, 60.0, time.time)
        per_probe = (time.process_time() - started) / 2000
        started = time.process_time()
        for _ in range(100):
            session.stats(0.0)
        per_stats = (time.process_time() - started) / 100
    finally:
        session.close()
    return per_probe, per_stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="seconds of PINGs for each side (default 5)")
    args = parser.parse_args()
    with RedisServer() as server:
        target = Target(name="bench", url=f"redis://127.0.0.1:{server.port}/0")
        ours = sorted(agent_pings(target, args.seconds))
        cli = redis_cli_rounds(server.port, args.seconds)
        per_probe, per_stats = cpu_seconds(target)
    ms = [s * 1000 for s in ours]
    cli_count = sum(r[3] for r in cli)
    cli_avg = sum(r[2] * r[3] for r in cli) / cli_count
    rows = [
        ("samples", f"{len(ms)}", f"{cli_count}", ""),
        ("min", f"{ms[0]:.3f}", f"{min(r[0] for r in cli)}", ""),
        ("median", f"{quantile(ms, 0.5):.3f}", "-", ""),
        ("avg", f"{statistics.fmean(ms):.3f}", f"{cli_avg:.2f}", f"{statistics.fmean(ms) / cli_avg:.2f}" if cli_avg else "-"),
        ("p99", f"{quantile(ms, 0.99):.3f}", "-", ""),
        ("max", f"{ms[-1]:.3f}", f"{max(r[1] for r in cli)}", f"{ms[-1] / max(r[1] for r in cli):.2f}"
         if max(r[1] for r in cli) else "-"),
    ]
    print(f"PING round trip on 127.0.0.1, every 10 ms for {args.seconds} s each (milliseconds)")
    print(f"{'measure':<8} {'agent':>10} {'redis-cli --latency':>20} {'ratio':>7}")
    for row in rows:
        print(f"{row[0]:<8} {row[1]:>10} {row[2]:>20} {row[3]:>7}")
    print("(redis-cli counts each PING in whole milliseconds, so its min/max are integers and its avg is coarse)")
    hour = PROBES_PER_HOUR * per_probe + RUNS_PER_HOUR * per_stats
    print(f"\nCPU: {per_probe * 1e6:.0f} us per probe (1 in {DEFAULTS.fresh_every} on a new connection), "
          f"{per_stats * 1e3:.2f} ms per statistics read (INFO, LATENCY LATEST, SLOWLOG GET {DEFAULTS.slowlog_entries})")
    print(f"One target at the default rate ({PROBES_PER_HOUR:.0f} probes and {RUNS_PER_HOUR:.0f} statistics reads "
          f"per hour): {hour:.2f} CPU seconds per hour ({hour / 36:.4f}% of one core)")


if __name__ == "__main__":
    main()
