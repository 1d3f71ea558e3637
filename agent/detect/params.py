"""Detector parameters: a sensitivity name for everyone, the raw knobs for experts."""

from __future__ import annotations

from typing import NamedTuple

SENSITIVITIES = ("low", "medium", "high")


class DetectorParams(NamedTuple):
    """Every knob of `SeriesDetector`; counts are in points of the series.

    The defaults are the `medium` preset, the one configuration scored on NAB.
    A NamedTuple rather than a dataclass: `dataclasses` (and the `inspect` it
    pulls in) would be a tenth of `agent backtest`'s start-up.
    """

    window: int = 1000
    """History the baseline compares against (bounded memory per series)."""
    warmup: int = 150
    """Points seen before any alert may open: the baseline needs history first."""
    threshold: float = 5.0
    """Robust z-score an input must reach to count as anomalous."""
    smooth: int = 6
    """Length of the short moving mean, the input that sees level shifts."""
    cooldown: int = 100
    """Points after an alert during which no new alert opens (one episode, one notice)."""
    seasonal: bool = True
    """Remove a weekly/daily rhythm from the value when the series has one."""
    trend_span: int = 48
    """First differences whose median is the current growth rate."""
    trend_threshold: float = 5.0
    """Robust z-score of the growth rate, against past rates, that counts as a trend change."""
    trend_persistence: int = 48
    """Consecutive points the growth rate must stay that high (bursts are not trends); 0 judges no trend."""
    persistence: int = 1
    """Consecutive anomalous points needed before an alert opens."""
    horizon: int = 5000
    """Points over which a spike or shift must also beat every ordinary value (0: the window only)."""
    floor: float | None = None
    """Business floor: an upward anomaly (spike, shift_up, trend) below this value opens no episode."""


def preset(sensitivity: str = "medium", base: DetectorParams | None = None, **overrides: object) -> DetectorParams:
    """The parameters behind `low|medium|high`, optionally with expert overrides.

    `base` is a check's own `medium` (its counts fit its cadence: a daily cost
    series is not a 5-minute NAB series); `low` asks 1.4x the robust z and
    waits a third longer between notices, `high` the reverse. With no base these
    are the values scored on NAB (threshold 7 / 5 / 3.5, cooldown 133 / 100 / 67).
    """
    params = base or DetectorParams()
    if sensitivity == "low":
        params = params._replace(threshold=params.threshold * 1.4, cooldown=round(params.cooldown * 4 / 3))
    elif sensitivity == "high":
        params = params._replace(threshold=params.threshold * 0.7, cooldown=round(params.cooldown * 2 / 3))
    elif sensitivity != "medium":
        raise ValueError(f"sensitivity must be one of {', '.join(SENSITIVITIES)}, not {sensitivity!r}")
    return params._replace(**overrides) if overrides else params
