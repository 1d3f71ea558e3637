"""Wall time of `agent check` on built-in defaults and import time of the CLI.

Prints a table; the peer is a bare interpreter (`python -c pass`) measured in the
same run, so the figures say what the agent adds. Also shows that the CLI path
does not import boto3, redis or pymemcache when no such check is configured.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RUNS = 7


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    home = tempfile.mkdtemp(prefix="forewarn-bench-")
    config = os.path.join(home, "forewarn.yaml")
    with open(config, "w") as handle:
        handle.write(f"agent: {{state_dir: {home}/state}}\n")
    env = {**os.environ, "HOME": home}
    agent = [sys.executable, "-m", "agent.cli"]  # not the console script: pyenv shims add ~300 ms
    cases = {
        "python -c pass (peer)": [sys.executable, "-c", "pass"],
        "import agent.cli": [sys.executable, "-c", "import agent.cli"],
        "agent --version": agent + ["--version"],
        "agent check (defaults)": agent + ["check", "-c", config],
        "agent check --json": agent + ["check", "-c", config, "--json"],
    }
    print(f"{'command':<26} {'median ms':>10} {'min ms':>8} {'x peer':>7}")
    peer = None
    for name, argv in cases.items():
        samples = [timed(argv, env) for _ in range(RUNS)]
        median = statistics.median(samples)
        peer = peer or median
        print(f"{name:<26} {median * 1000:>10.1f} {min(samples) * 1000:>8.1f} {median / peer:>7.1f}")
    probe = ("import sys, runpy; sys.argv=['agent','check','-c',%r,'--json']\n"
             "import agent.cli\n"
             "try:\n    agent.cli.cli.main(standalone_mode=False)\nexcept SystemExit: pass\n"
             "print('HEAVY', [m for m in ('boto3','botocore','redis','pymemcache') if m in sys.modules], file=sys.stderr)") % config
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    heavy = [line for line in result.stderr.splitlines() if line.startswith("HEAVY")]
    print(f"\nheavy modules imported by `agent check` on disks: {heavy[-1][6:] if heavy else 'unknown'}")
    json.loads(result.stdout)  # the JSON document stayed clean
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
