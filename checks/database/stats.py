"""Plain arithmetic over pg_stat_statements: which statements are a report, and what one period of it cost.

pg_stat_statements counts from its last reset, so a period is the difference of
two readings (calls, total time, and the sum of squared times that its mean and
spread give back): a report that was fast for a year and slow since Monday shows
as slow since Monday, not as a slightly worse yearly mean. Query texts are
normalised by the server ($1 for every constant); what leaves this module for a
notice is shortened and stripped of any literal that slipped through.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

_PARAM_OR_NUMBER = re.compile(r"(\$?)\b(\d+(?:\.\d+)?)\b")
_TABLE = re.compile(r'\b(?:from|join|update|into)\s+((?:"[^"]+"|[a-z_][\w$]*)(?:\.(?:"[^"]+"|[a-z_][\w$]*))?)',
                    re.IGNORECASE)
_FILTER = re.compile(r'(?:\b|")([a-z_][\w$]*)"?\s*(?:=|<=|>=|<|>|\bbetween\b|\bin\b|\blike\b)\s*(?:\(\s*)?\$\d+',
                     re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Statement:
    """One normalised statement as pg_stat_statements counts it (times in seconds)."""

    queryid: int
    text: str
    calls: int
    seconds: float
    stddev: float
    rows: int


@dataclass(frozen=True, slots=True)
class Totals:
    """Cumulative counters of one report (the statements its `query` matches), as read at `at`."""

    at: float
    calls: int
    seconds: float
    squares: float
    """Sum of squared run times, so that the spread of one period can be computed from two readings."""
    rows: int


@dataclass(frozen=True, slots=True)
class Period:
    """The report's runs between two readings."""

    seconds: float
    """How long the period lasted (wall clock)."""
    calls: int
    mean: float
    spread: float
    rows: int

    def slow_share(self, slow_after: float) -> float:
        """Estimated share of runs longer than `slow_after` (normal approximation from mean and spread)."""
        if self.spread <= 0:
            return 1.0 if self.mean > slow_after else 0.0
        return 0.5 * math.erfc((slow_after - self.mean) / (self.spread * math.sqrt(2)))


def tag_pattern(query: str) -> str:
    """A POSIX regex (PostgreSQL's `~`) for the tag in a query comment: /* report:month-end */."""
    return r"/\*\s*" + re.escape(query) + r"\s*\*/"


def has_tag(text: str, query: str) -> bool:
    return re.search(tag_pattern(query), text) is not None


def select(statements: Iterable[Statement], query: str, by_application: Iterable[int]) -> list[Statement]:
    """The statements a resource's `query` names: a comment tag, else an application_name, else a query id."""
    statements = list(statements)
    tagged = [s for s in statements if has_tag(s.text, query)]
    if tagged:
        return tagged
    ids = set(by_application)
    if ids:
        return [s for s in statements if s.queryid in ids]
    return [s for s in statements if str(s.queryid) == query]


def totals(statements: Sequence[Statement], at: float) -> Totals:
    """One reading of a report: sums over its statements; squares from each one's mean and spread."""
    squares = sum(s.calls * (s.stddev ** 2 + (s.seconds / s.calls) ** 2) for s in statements if s.calls)
    return Totals(at, sum(s.calls for s in statements), sum(s.seconds for s in statements), squares,
                  sum(s.rows for s in statements))


def period(before: Totals | None, after: Totals) -> Period | None:
    """What happened between two readings; None without an earlier one, runs, or after a reset."""
    if before is None or after.calls <= before.calls or after.seconds < before.seconds:
        return None
    calls = after.calls - before.calls
    mean = (after.seconds - before.seconds) / calls
    variance = max(0.0, (after.squares - before.squares) / calls - mean ** 2)
    return Period(after.at - before.at, calls, mean, math.sqrt(variance), max(0, after.rows - before.rows))


def since(means: Sequence[tuple[float, float]], floor: float, now: float) -> float:
    """When the report's stored per-period means last rose to `floor` and stayed there (now when just now)."""
    start = now
    for ts, value in reversed(means):
        if value < floor:
            break
        start = ts
    return start


def month_end(now: float) -> float:
    """Noon UTC on the last day of `now`'s month: the month-end close a report serves (today on that day)."""
    day = datetime.fromtimestamp(now, timezone.utc)
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=last, hour=12, minute=0, second=0, microsecond=0).timestamp()


def shorten(text: str, limit: int = 160) -> str:
    """The normalised text on one line, any literal replaced by ?, cut at `limit` characters."""
    text = re.sub(r"'(?:[^']|'')*'", "?", text)
    text = _PARAM_OR_NUMBER.sub(lambda m: m.group(0) if m.group(1) else "?", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tables(text: str) -> list[str]:
    """Table names a statement reads or writes, as written (schema.table or table), unquoted and in order."""
    names = [m.group(1) for m in _TABLE.finditer(text)]
    return list(dict.fromkeys(n.replace('"', "") if '"' in n else n.lower() for n in names))


def filter_columns(text: str) -> list[str]:
    """Columns compared with a parameter (col = $1, col < $2, col IN ($3, ...)): an index's candidates."""
    return list(dict.fromkeys(m.group(1).lower() for m in _FILTER.finditer(text)))
