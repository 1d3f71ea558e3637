"""Trend change: a growth rate well above what this series has shown before."""

from __future__ import annotations

from agent.detect.baseline import RobustGauge
from agent.detect.window import RollingWindow


class TrendGauge:
    """Scores the series' recent growth rate against its own history of rates.

    Every `stride` points the growth over that block is recorded; the rate is
    the median block growth over the last `span` points, so a single jump (a
    burst, a level shift) barely moves it while steady growth moves it fully.
    Its robust z against past rates says whether growth is unusual: a sawtooth
    that fills and empties has shown such rates before and stays quiet.
    Working on blocks keeps the gauge off the per-point hot path.
    """

    __slots__ = ("stride", "blocks", "rates", "anchor", "count", "z", "rate")

    def __init__(self, span: int, history: int, stride: int) -> None:
        self.stride = max(1, stride)
        self.blocks = RollingWindow(max(1, span // self.stride))
        self.rates = RobustGauge(max(1, history // self.stride))
        self.anchor: float | None = None
        self.count = 0
        self.z = 0.0
        self.rate = 0.0

    def observe(self, value: float) -> tuple[float, float]:
        """(robust z of the current growth rate against past rates, rate per point); learn it."""
        if self.anchor is None:
            self.anchor = value
        self.count += 1
        if self.count < self.stride:
            return self.z, self.rate
        self.count = 0
        blocks = self.blocks
        blocks.push(value - self.anchor)
        self.anchor = value
        if len(blocks) == blocks.size:
            ordered = blocks.ordered
            self.rate = ordered[len(ordered) >> 1] / self.stride
            self.z = self.rates.observe(self.rate)[0]
        return self.z, self.rate

    def to_state(self) -> dict:
        return {
            "stride": self.stride, "blocks": self.blocks.to_state(), "rates": self.rates.to_state(),
            "anchor": self.anchor, "count": self.count, "z": self.z, "rate": self.rate,
        }

    @classmethod
    def from_state(cls, state: dict) -> TrendGauge:
        gauge = cls.__new__(cls)
        gauge.stride = int(state["stride"])
        gauge.blocks = RollingWindow.from_state(state["blocks"])
        gauge.rates = RobustGauge.from_state(state["rates"])
        gauge.anchor = state["anchor"]
        gauge.count = int(state["count"])
        gauge.z = float(state["z"])
        gauge.rate = float(state["rate"])
        return gauge
