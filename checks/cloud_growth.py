"""Is a bucket's bill growing unusually fast, and what will this month cost?

Works on one daily series per bucket: what a day of storage costs, in USD.
Growth is compared week against week (the cost added over the last 7 days
against the cost added over each earlier 7-day window), so a weekly rhythm —
quiet weekends, Monday uploads — is inside every window and raises nothing.
The usual weekly growth is the median of those windows, its spread their MAD:
a bucket growing at its own usual pace, however fast, is normal.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from statistics import median
from typing import Sequence

DAY = 86400.0
WEEK_DAYS = 7
MIN_BASELINE_WEEKS = 5
"""Earlier 7-day windows needed before "unusual" means anything (about 3 weeks of history)."""
MAD_SCALE = 1.4826
SCORE_LIMIT = 4.0
"""How many spreads above the usual weekly growth the last week must be."""
RATIO_LIMIT = 1.5
"""...and how many times the usual growth, so tiny wobbles of a flat bucket stay quiet."""
RELATIVE_FLOOR = 0.002
"""The spread is never taken below 0.2% of the level a week ago: rounding, not growth."""


@dataclass(frozen=True, slots=True)
class Growth:
    """The recent week against the bucket's own history; costs in USD per day."""

    level: float
    level_week_ago: float
    recent_week: float
    usual_week: float | None
    spread: float | None
    baseline_weeks: int
    last_day: float
    """Timestamp (UTC midnight) of the newest day in the series."""

    @property
    def rate_per_day(self) -> float:
        """How much a day's cost grows per day, at the last week's pace."""
        return self.recent_week / WEEK_DAYS

    @property
    def score(self) -> float | None:
        if self.usual_week is None or not self.spread:
            return None
        return (self.recent_week - self.usual_week) / self.spread

    @property
    def monthly_growth_ratio(self) -> float:
        """Growth over a month at the last week's pace, as a share of the level a week ago."""
        if self.level_week_ago <= 0:
            return math.inf if self.recent_week > 0 else 0.0
        return self.recent_week * (30.0 / WEEK_DAYS) / self.level_week_ago

    @property
    def unusual(self) -> bool:
        """Clearly faster than this bucket's own usual weekly growth."""
        score = self.score
        if score is None or self.recent_week <= 0 or self.usual_week is None:
            return False
        return score >= SCORE_LIMIT and self.recent_week >= RATIO_LIMIT * max(self.usual_week, 0.0)


@dataclass(frozen=True, slots=True)
class MonthBill:
    """This calendar month's bill (UTC): spent so far and projected at the current pace, USD."""

    month_to_date: float
    projected: float
    next_month: float
    """The whole next month, if the last week's pace goes on."""
    month_start: float
    month_end: float


def daily(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """One value per UTC day (the last of the day), gaps filled by straight lines between days."""
    by_day: dict[int, float] = {}
    for ts, value in sorted(points):
        by_day[int(ts // DAY)] = value
    if not by_day:
        return []
    days = sorted(by_day)
    filled: list[tuple[float, float]] = []
    for left, right in zip(days, days[1:] + [days[-1] + 1]):
        for day in range(left, right):
            value = by_day[left]
            if day > left:
                value += (by_day[right] - by_day[left]) * (day - left) / (right - left)
            filled.append((day * DAY, value))
    return filled


def analyse(points: Sequence[tuple[float, float]]) -> Growth | None:
    """The growth of a daily cost series; None with fewer than two days."""
    series = daily(points)
    if len(series) < 2:
        return None
    values = [v for _, v in series]
    last = len(values) - 1
    lag = min(WEEK_DAYS, last)
    recent = (values[last] - values[last - lag]) * WEEK_DAYS / lag
    weeks = [values[t] - values[t - WEEK_DAYS] for t in range(WEEK_DAYS, last - WEEK_DAYS + 1)]
    usual = spread = None
    if len(weeks) >= MIN_BASELINE_WEEKS:
        usual = median(weeks)
        mad = MAD_SCALE * median(abs(w - usual) for w in weeks)
        spread = max(mad, 0.1 * abs(usual), RELATIVE_FLOOR * abs(values[last - lag]), 1e-9)
    return Growth(values[last], values[last - lag], recent, usual, spread, len(weeks), series[-1][0])


def month_bill(points: Sequence[tuple[float, float]], growth: Growth, now: float) -> MonthBill:
    """Known days of this month as they were, the rest at the last week's pace (never below zero)."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    start = datetime(moment.year, moment.month, 1, tzinfo=timezone.utc).timestamp()
    length = calendar.monthrange(moment.year, moment.month)[1]
    known = dict(daily(points))
    first_known = min(known) if known else growth.last_day
    spent = projected = 0.0
    for index in range(length):
        day = start + index * DAY
        if day in known:
            cost = known[day]
            if day <= now:
                spent += cost
        elif day < first_known:
            cost = known.get(first_known, growth.level)
        else:
            cost = _ahead(growth, day)
        projected += cost
    end = start + length * DAY
    following = datetime.fromtimestamp(end, timezone.utc)
    next_length = calendar.monthrange(following.year, following.month)[1]
    next_month = sum(_ahead(growth, end + index * DAY) for index in range(next_length))
    return MonthBill(spent, projected, next_month, start, end)


def _ahead(growth: Growth, day: float) -> float:
    """A future day's cost at the last week's pace, never below zero."""
    return max(0.0, growth.level + growth.rate_per_day * (day - growth.last_day) / DAY)
