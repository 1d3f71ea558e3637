"""Hostile configs: N hypothesis-generated files through `agent config validate`, counting what went wrong.

Each file (tests/configs.py: a valid config with odd values, then sometimes
damaged as text: alias bombs, deep nesting, tags, invalid UTF-8) goes through
the CLI's own entry point in this process, under a 5 s alarm. Counted: exit
codes, tracebacks, "internal error" lines, hangs over 5 s, the slowest file,
and the process's peak RSS. The peer, in the same run and on the same files,
is plain `yaml.safe_load` under the same alarm: what the agent would face
without its reading limits.

Usage: python bench/config_fuzz.py [--examples 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from tests.configs import config_files, run_validate  # noqa: E402

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
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    run_validate("/nonexistent")  # imports the CLI before the baseline is taken
    baseline = rss_mib()
    agent, peer = Counter(), Counter()
    worst = {"agent": 0.0, "peer": 0.0}
    workdir = Path(tempfile.mkdtemp(prefix="forewarn-fuzz-"))
    path = workdir / "fuzz.yaml"

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(config_files())
    def one(data: bytes) -> None:
        path.write_bytes(data)
        agent["files"] += 1
        outcome, seconds = timed(run_validate, str(path))
        worst["agent"] = max(worst["agent"], seconds)
        if isinstance(outcome, Hung):
            agent["hangs"] += 1
        elif isinstance(outcome, BaseException):  # escaped the CLI's own handler
            agent["tracebacks"] += 1
            agent["other"] += 1
        else:
            code, stderr = outcome
            agent[f"exit {code}" if code in (0, 2) else "other"] += 1
            agent["tracebacks"] += "Traceback" in stderr
            agent["internal errors"] += "internal error" in stderr
        outcome, seconds = timed(lambda: yaml.safe_load(data))
        worst["peer"] = max(worst["peer"], seconds)
        if isinstance(outcome, Hung):
            peer["hangs"] += 1
        elif isinstance(outcome, yaml.YAMLError):
            peer["exit 2"] += 1
        elif isinstance(outcome, BaseException):
            peer["tracebacks"] += 1
        else:
            peer["exit 0"] += 1

    started = time.perf_counter()
    one()
    elapsed = time.perf_counter() - started
    print(f"config fuzz: {agent['files']} generated files, seed {args.seed}, {elapsed:.0f} s, "
          f"alarm at {LIMIT:g} s; RSS after imports {baseline:.1f} MiB")
    print(f"{'':28}{'files':>7}{'exit 0':>8}{'exit 2':>8}{'other':>7}{'tracebacks':>12}{'internal':>10}"
          f"{'hangs':>7}{'slowest s':>11}")
    for name, counts, slowest, internal in (("agent config validate", agent, worst["agent"], agent["internal errors"]),
                                            ("peer: yaml.safe_load", peer, worst["peer"], "-")):
        print(f"{name:28}{agent['files']:>7}{counts['exit 0']:>8}{counts['exit 2']:>8}{counts['other']:>7}"
              f"{counts['tracebacks']:>12}{internal!s:>10}{counts['hangs']:>7}{slowest:>11.2f}")
    print(f"peak RSS of the whole run: {rss_mib():.1f} MiB")


if __name__ == "__main__":
    main()
