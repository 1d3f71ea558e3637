"""The detectors of one check, kept between runs and across restarts."""

from __future__ import annotations

import logging
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
    `flush` saves every detector used since the last flush. Without `load` and
    `save` the bank lives in memory only (tests, one-off tools).
    """

    def __init__(self, load: Load | None = None, save: Save | None = None):
        self.load, self.save = load, save
        self.live: dict[str, SeriesDetector] = {}
        self.used: set[str] = set()

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

    def flush(self) -> None:
        """Save the detectors used since the last flush."""
        if self.save:
            for key in sorted(self.used):
                self.save(key, self.live[key].to_state())
        self.used.clear()
