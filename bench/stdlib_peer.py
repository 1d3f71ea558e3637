"""The peer `bench/nab_score.py` times the detector against: what one writes with the standard library alone.

A rolling mean and standard deviation over the last 1000 points (running sums,
O(1) a point), an alert at z >= 5 after 150 points of warm-up and 100 points
apart. As a script it does the job of `agent backtest` (read a
`timestamp,value` CSV, write `timestamp,value,anomaly_score,alert`), so its wall
time, process start included, is comparable.

Usage: python bench/stdlib_peer.py SERIES.csv OUT.csv
"""

from __future__ import annotations

import csv
import math
import sys
from collections import deque


def detect(values: list[float], window: int = 1000, threshold: float = 5.0, cooldown: int = 100,
           warmup: int = 150) -> tuple[list[float], list[int]]:
    """(score in [0, 1], alert 0/1) for each value, each decided on the past only."""
    recent: deque[float] = deque()
    total = squares = 0.0
    quiet_until = warmup
    scores, alerts = [], []
    for i, value in enumerate(values):
        n = len(recent)
        z = 0.0
        if n:
            mean = total / n
            sd = math.sqrt(max(squares / n - mean * mean, 0.0))
            z = abs(value - mean) / sd if sd > 0.0 else 0.0
        alert = 1 if z >= threshold and i >= quiet_until else 0
        if alert:
            quiet_until = i + cooldown
        scores.append(z / (z + threshold))
        alerts.append(alert)
        recent.append(value)
        total += value
        squares += value * value
        if n >= window:
            old = recent.popleft()
            total -= old
            squares -= old * old
    return scores, alerts


def main(source: str, target: str) -> None:
    with open(source, newline="") as handle:
        rows = list(csv.DictReader(handle))
    scores, alerts = detect([float(row["value"]) for row in rows])
    with open(target, "w", newline="") as out:
        out.write("timestamp,value,anomaly_score,alert\n")
        out.write("".join(f"{row['timestamp']},{row['value']},{score:.4f},{alert}\n"
                          for row, score, alert in zip(rows, scores, alerts)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
