"""Online anomaly detection: robust baselines, level shifts, trends, spikes, and
time-to-threshold forecasts (`forecast.growth_trend`, used by the disk check).

Pure standard library, so `agent backtest` starts fast and the daemon stays small.
"""

from agent.detect.engine import SeriesDetector, Verdict
from agent.detect.forecast import Trend, growth_trend
from agent.detect.params import SENSITIVITIES, DetectorParams, preset

__all__ = ["SENSITIVITIES", "DetectorParams", "SeriesDetector", "Trend", "Verdict", "growth_trend", "preset"]
