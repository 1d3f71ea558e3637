"""A bounded rolling window kept sorted, so medians and quantiles are one index away."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque


class RollingWindow:
    """The last `size` values, in arrival order and sorted.

    Insertion and eviction are a bisect plus a memmove, which in CPython beats
    any pure-Python heap or skip list for windows of a few thousand values.
    """

    __slots__ = ("size", "fifo", "ordered")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a window holds at least one value")
        self.size = size
        self.fifo: deque[float] = deque()
        self.ordered: list[float] = []

    def __len__(self) -> int:
        return len(self.fifo)

    def push(self, value: float) -> None:
        """Add a value, evicting the oldest one once the window is full."""
        self.fifo.append(value)
        insort(self.ordered, value)
        if len(self.fifo) > self.size:
            ordered = self.ordered
            del ordered[bisect_left(ordered, self.fifo.popleft())]

    def to_state(self) -> dict:
        """JSON-serialisable state: the values in arrival order."""
        return {"size": self.size, "values": list(self.fifo)}

    @classmethod
    def from_state(cls, state: dict) -> RollingWindow:
        """Rebuild a window saved by `to_state`."""
        window = cls(int(state["size"]))
        for value in state["values"][-window.size:]:
            window.push(float(value))
        return window
