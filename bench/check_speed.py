"""Wall time of `agent check` on built-in defaults, against the interpreter importing what it must.

The peer, measured in the same run and interleaved with the agent's runs, is
`python -c "import click, yaml, psutil, sqlite3"`: the CLI, the config, the
disk and the state database, the least a check of the disks can load. The
target of the install issue is `agent check` within 2.5x of it. pydantic's
own time is measured too (the interpreter importing what the config's models
use from pydantic and building one model, against a bare one), so the figure
without it can be read off while the config still uses it; it is a lower
bound of pydantic's share (the agent builds dozens of models). Also shows which heavy modules the check path loads.

Usage: python bench/check_speed.py [--runs 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 2.5
HEAVY = ("pydantic", "jinja2", "babel", "boto3", "botocore", "redis", "pymemcache", "prometheus_client")
# What the config's models pull in from pydantic (its package import alone is lazy and small).
PYDANTIC = ("from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, "
            "model_validator\nclass M(BaseModel):\n    x: int = Field(1, ge=0)\nTypeAdapter(dict[str, M])")
PROBE = """import sys
sys.argv = ['agent', 'check', '-c', {config!r}]
import agent.cli
try:
    agent.cli.cli.main(standalone_mode=False)
except SystemExit:
    pass
print('LOADED', ' '.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def loaded_modules(config: str, env: dict) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE.format(config=config, heavy=HEAVY)], env=env,
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.startswith("LOADED")]
    return (lines[-1][7:] or "none") if lines else f"unknown ({done.stderr.strip()[-200:]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command, interleaved")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="forewarn-bench-")
    config = os.path.join(home, "forewarn.yaml")
    with open(config, "w") as handle:
        handle.write(f"agent: {{state_dir: {home}/state}}\n")
    env = {**os.environ, "HOME": home}
    python = [sys.executable]
    agent = python + ["-m", "agent"]  # not a console script: a pyenv shim would add ~300 ms
    cases = {
        "python -c pass": python + ["-c", "pass"],
        "import click,yaml,psutil,sqlite3 (peer)": python + ["-c", "import click, yaml, psutil, sqlite3"],
        "agent --version": agent + ["--version"],
        "agent check (defaults)": agent + ["check", "-c", config],
        "agent check --json": agent + ["check", "-c", config, "--json"],
    }
    if importlib.util.find_spec("pydantic"):  # for comparison with the builds that validated with it
        cases["pydantic, as the config loads it"] = python + ["-c", PYDANTIC]
    timed(agent + ["check", "-c", config], env)  # the first run creates the state database
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, argv in cases.items():
            samples[name].append(timed(argv, env))
    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    peer = median["import click,yaml,psutil,sqlite3 (peer)"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.runs} interleaved runs each\n")
    print(f"{'command':<40} {'median ms':>10} {'min ms':>8} {'x peer':>7}")
    for name in cases:
        print(f"{name:<40} {median[name]:>10.1f} {min(samples[name]) * 1000:>8.1f} {median[name] / peer:>7.2f}")
    loaded = loaded_modules(config, env)
    check = median["agent check (defaults)"]
    pydantic_ms = max(0.0, median.get("pydantic, as the config loads it", 0.0) - median["python -c pass"])
    print(f"\nheavy modules loaded by `agent check` on defaults: {loaded}")
    print(f"\n{'target':<52} {'measured':>10}  result")
    print(f"{f'agent check within {TARGET}x of the peer':<52} {check / peer:>9.2f}x  "
          f"{'met' if check / peer <= TARGET else 'MISSED'}")
    if "pydantic" in loaded.split():
        without = (check - pydantic_ms) / peer
        print(f"{'  the same less pydantic (projected, at most)':<52} {without:>9.2f}x  "
              f"{'met' if without <= TARGET else 'MISSED'}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
