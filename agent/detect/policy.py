"""Incident opening policy: when an anomalous point should open a notice."""

from __future__ import annotations


class AlertPolicy:
    """Turns a stream of anomalous / normal points into rare alerts.

    An alert opens after `persistence` consecutive anomalous points, once the
    warm-up is over and no alert opened in the last `cooldown` points; while
    the same episode lasts (points stay anomalous) nothing re-opens.
    """

    __slots__ = ("warmup", "cooldown", "persistence", "seen", "streak", "since_alert")

    def __init__(self, warmup: int, cooldown: int, persistence: int) -> None:
        self.warmup = warmup
        self.cooldown = cooldown
        self.persistence = max(1, persistence)
        self.seen = 0
        self.streak = 0
        self.since_alert = cooldown

    def step(self, anomalous: bool) -> bool:
        """Feed one point's verdict; True when this point opens a notice."""
        self.seen += 1
        self.since_alert += 1
        if not anomalous:
            self.streak = 0
            return False
        self.streak += 1
        if self.seen <= self.warmup or self.since_alert <= self.cooldown or self.streak != self.persistence:
            return False
        self.since_alert = 0
        return True

    def restart_warmup(self) -> None:
        """Count the warm-up again from here (the detector's baselines start anew)."""
        self.seen = 0

    def to_state(self) -> dict:
        return {"seen": self.seen, "streak": self.streak, "since_alert": self.since_alert}

    def restore(self, state: dict) -> None:
        """Continue from a saved `to_state` (the knobs come from the parameters)."""
        self.seen = int(state["seen"])
        self.streak = int(state["streak"])
        self.since_alert = int(state["since_alert"])
