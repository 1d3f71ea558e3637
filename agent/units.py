"""Parsing of the human units used in the config: durations, sizes, percentages.

Kept free of pydantic so the backtest and detection code can use it cheaply.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)\s*$", re.IGNORECASE)
_SIZE_FACTORS = {
    "": 1, "b": 1,
    "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30, "gib": 2**30,
    "ti": 2**40, "tib": 2**40, "pi": 2**50, "pib": 2**50,
}


def parse_duration(value: object) -> float:
    """'30s', '5m', '2h', '1d', '500ms' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("not a duration like 30s, 5m, 2h or 1d")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError("not a duration like 30s, 5m, 2h or 1d")
    return float(match.group(1)) * _DURATION_SECONDS[match.group(2)]


def parse_size(value: object) -> float:
    """'500MB', '2GiB', '1.5T' or a number of bytes -> bytes (SI units are powers of 1000)."""
    if isinstance(value, bool):
        raise ValueError("not a size like 500MB or 2GiB")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return float(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError("not a size like 500MB or 2GiB")
    return float(match.group(1)) * _SIZE_FACTORS[match.group(2).lower()]


def parse_percent(value: object) -> float:
    """'85%' or 85 -> 0.85; anything outside 0-100% is refused."""
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
        number = float(value)
    else:
        raise ValueError("not a percentage like 85%")
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
