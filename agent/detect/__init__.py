"""Online anomaly detection: robust baselines, level shifts, trends, spikes.

Pure standard library, so `agent backtest` starts fast and the daemon stays small.
"""

from agent.detect.engine import SeriesDetector, Verdict
from agent.detect.params import SENSITIVITIES, DetectorParams, preset

__all__ = ["SENSITIVITIES", "DetectorParams", "SeriesDetector", "Verdict", "preset"]
