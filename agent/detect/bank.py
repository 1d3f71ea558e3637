"""The detectors of one check, kept between runs and across restarts."""

from __future__ import annotations

import logging
import time
from typing import Callable

from agent.detect.engine import SeriesDetector
from agent.detect.params import DetectorParams

log = logging.getLogger(__name__)

Load = Callable[[str], "dict | None"]
Save = Callable[[str, dict], None]


class DetectorBank:
    """Hands a check the detector of each of its series, by a key of its choosing.

    A detector is restored from `load` on first use (a fresh one if there is no
    saved state, it cannot be read, or the parameters changed: a new
    sensitivity starts a new warm-up rather than mixing two scales), and
    `flush` saves every detector used since the last save, at most once per
    `save_every` seconds unless forced: a crash loses a few minutes of learning,
    not the warm-up, and a 30 s check does not rewrite its state every run.
    Without `load` and `save` the bank lives in memory only (tests, one-off tools).
    """

    def __init__(self, load: Load | None = None, save: Save | None = None, save_every: float = 0.0):
        self.load, self.save, self.save_every = load, save, save_every
        self.live: dict[str, SeriesDetector] = {}
        self.used: set[str] = set()
        self.saved_at: float | None = None

    def get(self, key: str, params: DetectorParams) -> SeriesDetector:
        """The detector of series `key`, with these parameters."""
        detector = self.live.get(key)
        if detector is None or detector.params != params:
            detector = self._restore(key, params) or SeriesDetector(params)
            self.live[key] = detector
        self.used.add(key)
        return detector

    def _restore(self, key: str, params: DetectorParams) -> SeriesDetector | None:
        state = self.load(key) if self.load else None
        if state is None:
            return None
        try:
            detector = SeriesDetector.from_state(state)
        except (KeyError, TypeError, ValueError) as exc:
            log.info("detector %s: saved state not usable (%s); starting a new warm-up", key, exc)
            return None
        if detector.params != params:
            log.info("detector %s: parameters changed; starting a new warm-up", key)
            return None
        return detector

    def flush(self, force: bool = False) -> None:
        """Save the detectors used since the last save (first call, forced, or `save_every` later)."""
        now = time.monotonic()
        if not force and self.saved_at is not None and now - self.saved_at < self.save_every:
            return
        if self.save:
            for key in sorted(self.used):
                self.save(key, self.live[key].to_state())
        self.used.clear()
        self.saved_at = now
