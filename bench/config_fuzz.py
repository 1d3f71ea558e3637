"""Hostile configs: N hypothesis-generated files through `agent config validate`, counting what went wrong.

The files (tests/configs.py: a valid config with odd values, then sometimes
damaged as text: alias bombs, deep nesting, tags, invalid UTF-8) are generated
first; then a fresh worker process passes each through the CLI's own entry
point under a 5 s alarm, counting exit codes, tracebacks, "internal error"
lines, hangs over 5 s and the slowest file, and reports its own peak RSS. The
peer, a second worker on the same files in the same run, is plain
`yaml.safe_load`: what the agent would face without its reading limits.

Usage: python bench/config_fuzz.py [--examples 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIMIT = 5.0


class Hung(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hung


def timed(fn, *args):
    """(result or the exception, seconds), the call cut off after LIMIT seconds."""
    signal.setitimer(signal.ITIMER_REAL, LIMIT)
    start = time.perf_counter()
    try:
        result = fn(*args)
    except Exception as exc:  # the peer's failures are what is counted
        result = exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return result, time.perf_counter() - start


def rss_mib() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent through fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(kind: str, folder: Path) -> None:
    """Runs every file in `folder` through `kind` (agent or peer); prints the counts as one JSON object."""
    import yaml

    from tests.configs import run_validate

    signal.signal(signal.SIGALRM, _alarm)
    if kind == "agent":
        run_validate("/nonexistent")  # imports the CLI before the baseline is taken
    counts: Counter[str] = Counter()
    counts["rss after imports"] = rss_mib()
    slowest = 0.0
    for path in sorted(folder.iterdir()):
        counts["files"] += 1
        outcome, seconds = timed(run_validate if kind == "agent" else lambda p: yaml.safe_load(p.read_bytes()),
                                 str(path) if kind == "agent" else path)
        slowest = max(slowest, seconds)
        if isinstance(outcome, Hung):
            counts["hangs"] += 1
        elif kind == "peer" and isinstance(outcome, yaml.YAMLError):
            counts["exit 2"] += 1
        elif isinstance(outcome, BaseException):  # the peer's crash, or one that escaped the CLI's handler
            counts["tracebacks"] += 1
        elif kind == "peer":
            counts["exit 0"] += 1
        else:
            code, stderr = outcome
            counts[f"exit {code}" if code in (0, 2) else "other"] += 1
            counts["tracebacks"] += "Traceback" in stderr
            counts["internal errors"] += "internal error" in stderr
    print(json.dumps({**counts, "slowest": slowest, "peak rss": rss_mib()}))


def generate(count: int, seed_value: int, folder: Path) -> None:
    from hypothesis import HealthCheck, given, seed, settings

    from tests.configs import config_files

    written = iter(range(count))

    @seed(seed_value)
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(config_files())
    def one(data: bytes) -> None:
        (folder / f"{next(written, count):05d}.yaml").write_bytes(data)

    one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]))
        return
    folder = Path(tempfile.mkdtemp(prefix="forewarn-fuzz-"))
    try:
        started = time.perf_counter()
        generate(args.examples, args.seed, folder)
        files = sum(1 for _ in folder.iterdir())
        print(f"config fuzz: {files} generated files (seed {args.seed}, {time.perf_counter() - started:.0f} s "
              f"to generate), alarm at {LIMIT:g} s per file")
        print(f"{'':24}{'files':>7}{'exit 0':>8}{'exit 2':>8}{'other':>7}{'tracebacks':>12}{'internal':>10}"
              f"{'hangs':>7}{'slowest s':>11}{'RSS MiB idle/peak':>19}")
        for kind, name in (("agent", "agent config validate"), ("peer", "peer: yaml.safe_load")):
            done = subprocess.run([sys.executable, __file__, "--worker", kind, str(folder)], capture_output=True,
                                  text=True, check=True)
            c = Counter(json.loads(done.stdout.splitlines()[-1]))
            internal = c["internal errors"] if kind == "agent" else "-"
            print(f"{name:24}{c['files']:>7}{c['exit 0']:>8}{c['exit 2']:>8}{c['other']:>7}{c['tracebacks']:>12}"
                  f"{internal!s:>10}{c['hangs']:>7}{c['slowest']:>11.2f}"
                  f"{c['rss after imports']:>11.1f} / {c['peak rss']:.1f}")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
