"""Score the Forewarn detector on nab-dev with NAB's own scoring rules, and time it.

Usage: python bench/nab_score.py [--data DIR] [--sensitivity low|medium|high]

Scoring follows NAB's sweeper: inside an anomaly window only the earliest
detection counts, rewarded by a scaled sigmoid of its relative position (1 at
the window's start, ~0 at its end); every detection outside a window costs
A_FP times a scaled sigmoid of its distance past the previous window (so
detections just after a window cost little, and those before any window or
three window-widths later cost the full A_FP); each window without a detection
costs A_FN. The first 15% of a file (at most 750 rows) is not scored at all.
Totals are normalised as 100 * (raw - null) / (perfect - null) where the null
detector never alerts and the perfect one alerts at the first row of each window.
Alerts are binary here (the `alert` column), so there is no threshold sweep.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.backtest import read_series  # noqa: E402
from agent.detect import SeriesDetector, preset  # noqa: E402

DEFAULT_DATA = Path("/work/shared/datasets/nab-dev")


@dataclass(frozen=True, slots=True)
class Profile:
    """NAB's application profile: weights of true positives, false positives, misses."""

    name: str
    a_tp: float
    a_fp: float
    a_fn: float


PROFILES = (
    Profile("standard", 1.0, 0.11, 1.0),
    Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
)


@dataclass(frozen=True, slots=True)
class FileScore:
    """Raw NAB score of one file under one profile, with its null and perfect bounds."""

    raw: float
    null: float
    perfect: float
    tp: int
    fp: int
    fn: int


def scaled_sigmoid(position: float) -> float:
    """NAB's reward curve: ~1 at position -1 (window start), 0 at 0, -1 from 3 on."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probationary_length(rows: int) -> int:
    """Rows NAB leaves unscored at the start of a file: 15%, at most 750."""
    return min(math.floor(0.15 * rows), 750)


def window_indices(stamps: list[str], windows: list[list[str]]) -> list[tuple[int, int]]:
    """Map window limits (NAB writes them with microseconds) to row indices."""
    index = {stamp: i for i, stamp in enumerate(stamps)}
    return [(index[start[:19]], index[end[:19]]) for start, end in windows]


def score_file(alerts: list[int], windows: list[tuple[int, int]], profile: Profile) -> FileScore:
    """Sum NAB's weighted point scores of the rows that alert, plus A_FN per missed window."""
    rows = len(alerts)
    probation = probationary_length(rows)
    max_tp = scaled_sigmoid(-1.0)
    best = [None] * len(windows)
    fp_total = 0.0
    fp_count = 0
    for i in range(probation, rows):
        if not alerts[i]:
            continue
        inside = next((w for w, (lo, hi) in enumerate(windows) if lo <= i <= hi), None)
        if inside is not None:
            lo, hi = windows[inside]
            position = -(hi - i + 1) / (hi - lo + 1)
            weighted = scaled_sigmoid(position) * profile.a_tp / max_tp
            if best[inside] is None or weighted > best[inside]:
                best[inside] = weighted
            continue
        previous = [w for w in windows if w[1] < i]
        if previous:
            lo, hi = previous[-1]
            weighted = scaled_sigmoid(abs(hi - i) / (hi - lo)) * profile.a_fp
        else:
            weighted = -profile.a_fp
        fp_total += weighted
        fp_count += 1
    tp = [b for b in best if b is not None]
    fn = len(windows) - len(tp)
    raw = sum(tp) + fp_total - fn * profile.a_fn
    return FileScore(raw, -len(windows) * profile.a_fn, len(windows) * profile.a_tp, len(tp), fp_count, fn)


def normalised(raw: float, null: float, perfect: float) -> float:
    """NAB's 0..100 scale: 0 is the detector that never alerts, 100 the perfect one."""
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def run_detector(epochs: list[float], values: list[float], sensitivity: str) -> list[int]:
    """Replay one series through a fresh detector; returns the alert column."""
    detector = SeriesDetector(preset(sensitivity))
    update = detector.update
    return [1 if update(t, v)[1] else 0 for t, v in zip(epochs, values)]


def measure_throughput(series: list[tuple[list[float], list[float]]], sensitivity: str) -> tuple[int, float]:
    """Points per second of the bare detector loop over all files (one core)."""
    points = 0
    start = time.process_time()
    for epochs, values in series:
        run_detector(epochs, values, sensitivity)
        points += len(values)
    return points, time.process_time() - start


def measure_backtest_wall(csv_path: Path, repeats: int = 7) -> tuple[float, float]:
    """Best wall times of the installed `agent backtest FILE -o OUT` and of a bare `python -c pass`.

    The `agent` script is the one pip put next to this interpreter (not a shell
    shim). Bytecode is compiled first, as `pip install` does, so the figure is
    what a user sees rather than the cost of compiling our sources each run.
    """
    script = Path(sys.executable).with_name("agent")
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "agent")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.csv"
        best = _best_of(repeats, [str(script), "backtest", str(csv_path), "-o", str(out), "--json-summary"])
    return best, _best_of(repeats, [sys.executable, "-c", "pass"])


def _best_of(repeats: int, command: list[str]) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sensitivity", default="medium", choices=("low", "medium", "high"))
    args = parser.parse_args()

    labels = json.loads((args.data / "combined_windows.json").read_text())
    totals = {p.name: [0.0, 0.0, 0.0] for p in PROFILES}
    series = []
    header = f"{'file':52} {'rows':>6} {'win':>3} {'TP':>3} {'FP':>3} {'FN':>3}" + "".join(
        f" {p.name[:18]:>18}" for p in PROFILES)
    print(f"NAB scoring, sensitivity={args.sensitivity}; per file: raw score (normalised)")
    print(header)
    for name in sorted(labels):
        stamps, epochs, values = read_series(args.data / name)
        series.append((epochs, values))
        alerts = run_detector(epochs, values, args.sensitivity)
        windows = window_indices(stamps, labels[name])
        cells = []
        for profile in PROFILES:
            s = score_file(alerts, windows, profile)
            acc = totals[profile.name]
            acc[0] += s.raw
            acc[1] += s.null
            acc[2] += s.perfect
            cells.append(f"{s.raw:8.2f} ({normalised(s.raw, s.null, s.perfect):6.1f})")
        print(f"{name:52} {len(values):6d} {len(windows):3d} {s.tp:3d} {s.fp:3d} {s.fn:3d}"
              + "".join(f" {c:>18}" for c in cells))
    print()
    for profile in PROFILES:
        raw, null, perfect = totals[profile.name]
        print(f"normalised NAB score {profile.name:20} {normalised(raw, null, perfect):6.1f}"
              f"   (raw {raw:.2f}, null {null:.1f}, perfect {perfect:.1f})")

    points, seconds = measure_throughput(series, args.sensitivity)
    print(f"\ndetector loop: {points} points in {seconds:.2f} s CPU = {points / seconds:,.0f} points/s (one core)")
    with tempfile.TemporaryDirectory() as tmp:
        typical = Path(tmp) / "typical-5000-rows.csv"  # NAB's typical length, cut from a longer dev file
        lines = (args.data / "realTweets/Twitter_volume_KO.csv").read_text().splitlines(keepends=True)
        typical.write_text("".join(lines[:5001]))
        for sample in (args.data / "realKnownCause/ec2_request_latency_system_failure.csv", typical):
            wall, bare = measure_backtest_wall(sample)
            print(f"agent backtest {sample.name} ({len(read_series(sample)[2])} rows): {wall * 1000:.0f} ms wall, "
                  f"best of 7 (bare `python -c pass` here: {bare * 1000:.0f} ms, so {(wall - bare) * 1000:.0f} ms ours)")

if __name__ == "__main__":
    main()
