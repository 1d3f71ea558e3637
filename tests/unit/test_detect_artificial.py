"""The detector on NAB's artificial series: quiet where nothing happens, on time where one thing does.

The data is `../shared/datasets/nab-artificial/` beside the repository (CI puts
a read-only copy of `shared/` there); FOREWARN_DATASETS names another place.
A missing copy is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.backtest import read_series, replay

DATASETS = Path(os.environ.get("FOREWARN_DATASETS") or Path(__file__).resolve().parents[3] / "shared" / "datasets")
ARTIFICIAL = DATASETS / "nab-artificial"


def labels() -> dict[str, list[list[str]]]:
    path = ARTIFICIAL / "combined_windows.json"
    assert path.is_file(), f"{path} is missing: the NAB artificial series must sit beside the repository"
    return json.loads(path.read_text())


QUIET = ["art_daily_no_noise", "art_daily_perfect_square_wave", "art_daily_small_noise", "art_flatline", "art_noisy"]
ANOMALOUS = ["art_daily_flatmiddle", "art_daily_jumpsdown", "art_daily_jumpsup", "art_daily_nojump",
             "art_increase_spike_density", "art_load_balancer_spikes"]


def alerts_of(name: str) -> tuple[list[str], list[bool]]:
    stamps, epochs, values = read_series(ARTIFICIAL / name)
    return stamps, replay(epochs, values, "medium")[1]


@pytest.mark.parametrize("stem", QUIET)
def test_a_series_without_anomaly_raises_no_alert(stem):
    name = f"artificialNoAnomaly/{stem}.csv"
    assert labels()[name] == []
    stamps, alerts = alerts_of(name)
    assert [s for s, alert in zip(stamps, alerts) if alert] == []


@pytest.mark.parametrize("stem", ANOMALOUS)
def test_the_one_anomaly_is_found_within_its_window(stem):
    name = f"artificialWithAnomaly/{stem}.csv"
    (start, end), = labels()[name]
    stamps, alerts = alerts_of(name)
    first, last = stamps.index(start[:19]), stamps.index(end[:19])
    assert any(alerts[first:last + 1]), f"no alert between {start} and {end}"
