"""Long-horizon records: is a value beyond every value of the last `span` points?"""

from __future__ import annotations

from collections import deque


class RecordSpan:
    """The highest and lowest values learnt over the last `span` points, O(1) amortised per point.

    Two monotonic queues of (point number, value): a value that can never again
    be the span's extreme is dropped as it is overtaken, so each queue holds
    only the candidates. Every point is counted (`step`), whether it is learnt
    or not, so the span is a stretch of time, not a number of learnt values.
    """

    __slots__ = ("span", "count", "high", "low")

    def __init__(self, span: int) -> None:
        self.span = span
        self.count = 0
        self.high: deque[tuple[int, float]] = deque()
        self.low: deque[tuple[int, float]] = deque()

    def step(self, value: float, up: bool, learn: bool) -> bool:
        """Whether `value` is above (`up`) or below every value learnt in the span, then learn it if asked."""
        count = self.count = self.count + 1
        high, low = self.high, self.low
        oldest = count - self.span
        while high and high[0][0] <= oldest:
            high.popleft()
        while low and low[0][0] <= oldest:
            low.popleft()
        beyond = (not high or value > high[0][1]) if up else (not low or value < low[0][1])
        if learn:
            while high and high[-1][1] <= value:
                high.pop()
            high.append((count, value))
            while low and low[-1][1] >= value:
                low.pop()
            low.append((count, value))
        return beyond

    def to_state(self) -> dict:
        """JSON-serialisable state."""
        return {"span": self.span, "count": self.count, "high": [list(p) for p in self.high],
                "low": [list(p) for p in self.low]}

    @classmethod
    def from_state(cls, state: dict) -> RecordSpan:
        """Rebuild a record span saved by `to_state`."""
        record = cls(int(state["span"]))
        record.count = int(state["count"])
        record.high.extend((int(i), float(v)) for i, v in state["high"])
        record.low.extend((int(i), float(v)) for i, v in state["low"])
        return record
