"""The agent's wall clock. Time is an input: a rehearsal, a test or an operator replaying a
day can start the clock at another moment with `FOREWARN_NOW` (unix seconds or ISO-8601
with a zone); it then runs at the normal pace from there. Without it, the system clock."""

from __future__ import annotations

import math
import os
import time
from datetime import datetime
from typing import Callable

from agent.errors import ConfigError

Clock = Callable[[], float]
ENV = "FOREWARN_NOW"


def wall_clock() -> Clock:
    """The clock every command and the daemon read; shifted when `FOREWARN_NOW` is set."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return time.time
    offset = parse_moment(text) - time.time()
    return lambda: time.time() + offset


def parse_moment(text: str) -> float:
    """Unix seconds, or ISO-8601 with a zone ('2026-11-17T09:00:00+01:00', '...Z')."""
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ConfigError([f"{ENV}: not a moment like 2026-11-17T09:00:00Z or unix seconds (got {text!r})"]) \
                from None
        if moment.tzinfo is None:
            raise ConfigError([f"{ENV}: give the time zone, e.g. 2026-11-17T09:00:00Z (got {text!r})"])
        return moment.timestamp()
    if not math.isfinite(value) or value < 0:
        raise ConfigError([f"{ENV}: not a moment (got {text!r})"])
    return value
