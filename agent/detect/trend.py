"""Trend change: a growth rate well above what this series has shown before."""

from __future__ import annotations

from agent.detect.baseline import RobustGauge
from agent.detect.window import RollingWindow


class TrendGauge:
    """Scores the series' recent growth rate against its own history of rates.

    The rate is the median of the last `span` first differences, so a single
    jump (a burst, a level shift) moves it not at all while steady growth moves
    it fully. Its robust z against past rates says whether growth is unusual: a
    sawtooth that fills and empties has shown such rates before and stays quiet.
    """

    __slots__ = ("steps", "rates", "last")

    def __init__(self, span: int, history: int) -> None:
        self.steps = RollingWindow(span)
        self.rates = RobustGauge(history)
        self.last: float | None = None

    def observe(self, value: float) -> tuple[float, float]:
        """(robust z of the current growth rate against past rates, the rate); learn it."""
        last = self.last
        self.last = value
        if last is None:
            return 0.0, 0.0
        steps = self.steps
        steps.push(value - last)
        if len(steps) < steps.size:
            return 0.0, 0.0
        ordered = steps.ordered
        rate = ordered[len(ordered) >> 1]
        z, _ = self.rates.observe(rate)
        return z, rate

    def to_state(self) -> dict:
        return {"steps": self.steps.to_state(), "rates": self.rates.to_state(), "last": self.last}

    @classmethod
    def from_state(cls, state: dict) -> TrendGauge:
        gauge = cls.__new__(cls)
        gauge.steps = RollingWindow.from_state(state["steps"])
        gauge.rates = RobustGauge.from_state(state["rates"])
        gauge.last = state["last"]
        return gauge
