"""Parsing of the human units used in the config: durations, sizes, percentages.

Kept free of heavy imports so the backtest and detection code can use it cheaply.
Every parser refuses what YAML can say but no setting means: `.nan`, `.inf`,
400-digit numbers (they used to switch checks off, or crash later).
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = 10 * 365 * 86400.0
"""Ten years: longer is a typo, and beyond what timers and dates handle."""
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)\s*$", re.IGNORECASE)
_SIZE_FACTORS = {
    "": 1, "b": 1,
    "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30, "gib": 2**30,
    "ti": 2**40, "tib": 2**40, "pi": 2**50, "pib": 2**50,
}


def _number(value: int | float) -> float:
    """A YAML number as a finite float, or ValueError."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def parse_duration(value: object) -> float:
    """'30s', '5m', '2h', '1d', '500ms' or a number of seconds -> seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("not a duration like 30s, 5m, 2h or 1d")
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError("not a duration like 30s, 5m, 2h or 1d")
        seconds = float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
    else:
        seconds = _number(value)
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION:
        raise ValueError("a duration longer than 10 years is not a setting")
    return seconds


def parse_size(value: object) -> float:
    """'500MB', '2GiB', '1.5T' or a number of bytes -> bytes (SI units are powers of 1000)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("not a size like 500MB or 2GiB")
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError("not a size like 500MB or 2GiB")
        size = float(match.group(1)) * _SIZE_FACTORS[match.group(2).lower()]
    else:
        size = _number(value)
    if size < 0:
        raise ValueError("a size cannot be negative")
    if not math.isfinite(size):
        raise ValueError("not a finite number")
    return size


def parse_percent(value: object) -> float:
    """'85%' or 85 -> 0.85; anything outside 0-100% is refused.

    A bare number between 0 and 1 is refused too: `warning: 0.85` meant 85%
    far more often than 0.85%, and a disk warned at 0.85% warns forever.
    """
    if isinstance(value, bool):
        raise ValueError("not a percentage like 85%")
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError("not a percentage like 85%")
        try:
            number = float(text[:-1])
        except ValueError:
            raise ValueError("not a percentage like 85%") from None
    elif isinstance(value, (int, float)):
        number = _number(value)
        if 0 < number < 1:
            raise ValueError(f"ambiguous: write {number:.0%} or {number:g}%")
    else:
        raise ValueError("not a percentage like 85%")
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    if not 0 <= number <= 100:
        raise ValueError("a percentage must be between 0% and 100%")
    return number / 100


def format_duration(seconds: float) -> str:
    """Compact technical form for appendices and logs: 90 -> '1m30s'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2])


def format_bytes(value: float) -> str:
    """Technical SI form for appendices: 912000000000 -> '912.0 GB'."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    index = 0
    while abs(value) >= 1000 and index < len(units) - 1:
        value /= 1000
        index += 1
    return f"{value:.0f} B" if index == 0 else f"{value:.1f} {units[index]}"
