"""Score the Forewarn detector on nab-dev with NAB's own scoring rules, and time it.

Usage: python bench/nab_score.py [--data DIR] [--sensitivity low|medium|high]

Besides the dev score of the shipped preset, it checks that the preset's
settings generalise: leave-one-category-out cross-validation (for each NAB
category, the best setting of a small grid on the other four, scored on the
one left out; the worst fold is the figure that counts) and the setting the
worst fold picks. It counts the alerts on the artificial series without any
anomaly (`nab-artificial/` beside `--data`: every alert is a false alarm), and
times the detector beside a plain standard-library detector
(`bench/stdlib_peer.py`: rolling mean and standard deviation, z >= 5),
measured in the same run: the bare loops, and `agent backtest` against the
peer run as a script on the same file (wall time, process start included).

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
import itertools
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.backtest import read_series  # noqa: E402
from agent.detect import DetectorParams, SeriesDetector, preset  # noqa: E402
from stdlib_peer import detect as stdlib_peer  # noqa: E402

DEFAULT_DATA = Path("/work/shared/datasets/nab-dev")
GRID = {"threshold": (4.0, 5.0, 6.0), "horizon": (0, 2500, 5000), "cooldown": (100, 300)}
"""The settings cross-validated: the z threshold, the record horizon and the cooldown (the rest stay as shipped)."""


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


def run_detector(epochs: list[float], values: list[float], params: DetectorParams) -> list[int]:
    """Replay one series through a fresh detector; returns the alert column."""
    update = SeriesDetector(params).update
    return [1 if update(t, v)[1] else 0 for t, v in zip(epochs, values)]


@dataclass
class Series:
    """One labelled file: its NAB category, rows, and windows as row indices."""

    name: str
    category: str
    epochs: list[float]
    values: list[float]
    windows: list[tuple[int, int]]


def load(data: Path) -> list[Series]:
    """Every labelled file of a NAB-style directory, by name."""
    labels = json.loads((data / "combined_windows.json").read_text())
    loaded = []
    for name in sorted(labels):
        stamps, epochs, values = read_series(data / name)
        loaded.append(Series(name, name.split("/")[0], epochs, values, window_indices(stamps, labels[name])))
    return loaded


def normalised_total(alerts: dict[str, list[int]], series: list[Series], profile: Profile) -> float:
    """NAB's normalised score of these files together (raw, null and perfect summed first)."""
    scores = [score_file(alerts[s.name], s.windows, profile) for s in series]
    return normalised(sum(f.raw for f in scores), sum(f.null for f in scores), sum(f.perfect for f in scores))


def objective(alerts: dict[str, list[int]], series: list[Series]) -> float:
    """What a setting is chosen by: the lower of the standard and reward-low-FP scores (both must hold)."""
    return min(normalised_total(alerts, series, PROFILES[0]), normalised_total(alerts, series, PROFILES[1]))


def alert_count(alerts: dict[str, list[int]], series: list[Series]) -> int:
    """Ties between settings go to the quieter one: alerts raised over these files."""
    return sum(sum(alerts[s.name]) for s in series)


def cross_validate(series: list[Series]) -> None:
    """Leave one category out: tune on the other four, score the one left out; report every fold."""
    settings = [dict(zip(GRID, combo)) for combo in itertools.product(*GRID.values())]
    runs = [{s.name: run_detector(s.epochs, s.values, preset("medium", **setting)) for s in series}
            for setting in settings]
    categories = sorted({s.category for s in series})
    print(f"\nleave-one-category-out ({len(settings)} settings of {', '.join(GRID)}; each fold's setting chosen "
          "by min(standard, low-FP) on the other categories, ties to the fewer alerts)")
    print(f"{'left out':20} {'chosen':38} {'standard':>9} {'low-FP':>7} {'low-FN':>7}")
    folds = []
    for left_out in categories:
        held = [s for s in series if s.category == left_out]
        tuned = [s for s in series if s.category != left_out]
        best = max(range(len(settings)), key=lambda k: (objective(runs[k], tuned), -alert_count(runs[k], tuned)))
        cells = [normalised_total(runs[best], held, p) for p in PROFILES]
        folds.append(cells)
        chosen = ", ".join(f"{k} {v:g}" for k, v in settings[best].items())
        print(f"{left_out:20} {chosen:38}" + "".join(f" {c:{w}.1f}" for c, w in zip(cells, (9, 7, 7))))
    worst = [min(f[i] for f in folds) for i in range(len(PROFILES))]
    print(f"{'worst fold':20} {'':38}" + "".join(f" {c:{w}.1f}" for c, w in zip(worst, (9, 7, 7))))
    worst_of = [min(objective(run, [s for s in series if s.category == c]) for c in categories) for run in runs]
    top = max(worst_of)
    tied = [k for k in range(len(settings)) if worst_of[k] == top]
    by_worst = max(tied, key=lambda k: objective(runs[k], series))
    shipped = {k: getattr(preset("medium"), k) for k in GRID}
    picked = settings[by_worst]
    print(f"setting whose worst category is best (min(standard, low-FP) {top:.1f}; {len(tied)} tie(s), then the "
          f"best on all of dev): {', '.join(f'{k} {v:g}' for k, v in picked.items())}"
          f" ({'the shipped preset' if picked == shipped else 'shipped: ' + str(shipped)})")


def artificial_report(data: Path, params: DetectorParams) -> None:
    """False alarms on the series without anomaly, and the anomalies found in their windows."""
    if not (data / "combined_windows.json").is_file():
        raise SystemExit(f"{data}: missing (the NAB artificial series are expected beside --data)")
    series = load(data)
    quiet = [s for s in series if not s.windows]
    false_alarms = sum(sum(run_detector(s.epochs, s.values, params)) for s in quiet)
    found = [s for s in series if s.windows
             and score_file(run_detector(s.epochs, s.values, params), s.windows, PROFILES[0]).tp]
    print(f"\nartificial: {false_alarms} false alarm(s) on the {len(quiet)} series without anomaly; "
          f"{len(found)} of {len(series) - len(quiet)} single anomalies found in their window")


def measure_throughput(series: list[Series], params: DetectorParams) -> None:
    """Points per second of the detector loop and of the stdlib peer's, over all files (one core, same run)."""
    points = sum(len(s.values) for s in series)
    start = time.process_time()
    for s in series:
        run_detector(s.epochs, s.values, params)
    ours = time.process_time() - start
    start = time.process_time()
    peer = {s.name: stdlib_peer(s.values)[1] for s in series}
    theirs = time.process_time() - start
    print(f"\ndetector loop: {points} points in {ours:.2f} s CPU = {points / ours:,.0f} points/s (one core)")
    print(f"stdlib peer loop: {points / theirs:,.0f} points/s (ours takes {ours / theirs:.1f}x its time); "
          "its NAB dev score: " + " / ".join(f"{normalised_total(peer, series, p):.1f}" for p in PROFILES))


def measure_backtest_wall(csv_path: Path, repeats: int = 7) -> tuple[float, float, float]:
    """Best wall times of the installed `agent backtest FILE -o OUT`, of the stdlib peer script, and of a bare `python -c pass`.

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
        peer = _best_of(repeats, [sys.executable, str(root / "bench" / "stdlib_peer.py"), str(csv_path), str(out)])
    return best, peer, _best_of(repeats, [sys.executable, "-c", "pass"])


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
    params = preset(args.sensitivity)

    series = load(args.data)
    alerts = {s.name: run_detector(s.epochs, s.values, params) for s in series}
    header = f"{'file':52} {'rows':>6} {'win':>3} {'TP':>3} {'FP':>3} {'FN':>3}" + "".join(
        f" {p.name[:18]:>18}" for p in PROFILES)
    print(f"NAB scoring, sensitivity={args.sensitivity}; per file: raw score (normalised)")
    print(header)
    for s in series:
        scores = [score_file(alerts[s.name], s.windows, p) for p in PROFILES]
        cells = [f"{f.raw:8.2f} ({normalised(f.raw, f.null, f.perfect):6.1f})" for f in scores]
        last = scores[-1]
        print(f"{s.name:52} {len(s.values):6d} {len(s.windows):3d} {last.tp:3d} {last.fp:3d} {last.fn:3d}"
              + "".join(f" {c:>18}" for c in cells))
    print()
    for profile in PROFILES:
        print(f"normalised NAB dev score {profile.name:20} {normalised_total(alerts, series, profile):6.1f}")

    cross_validate(series)
    artificial_report(args.data.parent / "nab-artificial", params)
    measure_throughput(series, params)
    with tempfile.TemporaryDirectory() as tmp:
        typical = Path(tmp) / "typical-5000-rows.csv"  # NAB's typical length, cut from a longer dev file
        lines = (args.data / "realTweets/Twitter_volume_KO.csv").read_text().splitlines(keepends=True)
        typical.write_text("".join(lines[:5001]))
        for sample in (args.data / "realKnownCause/ec2_request_latency_system_failure.csv", typical):
            wall, peer, bare = measure_backtest_wall(sample)
            print(f"agent backtest {sample.name} ({len(read_series(sample)[2])} rows): {wall * 1000:.0f} ms wall, "
                  f"stdlib peer script {peer * 1000:.0f} ms, bare `python -c pass` {bare * 1000:.0f} ms (best of 7)")


if __name__ == "__main__":
    main()
