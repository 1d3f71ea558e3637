"""Online anomaly detection: robust baselines, level shifts, trends, spikes, and
time-to-threshold forecasts (`agent.detect.forecast`, used by the disk check).

Pure standard library, so `agent backtest` starts fast and the daemon stays small;
the forecast is not imported here, as the backtest does not need it.
"""

from agent.detect.engine import SeriesDetector, Verdict
from agent.detect.params import SENSITIVITIES, DetectorParams, preset

__all__ = ["SENSITIVITIES", "DetectorParams", "SeriesDetector", "Verdict", "preset"]
