"""How fast a bucket's bill grows, whether that is news, and what this month will cost.

Works on one daily series per bucket (or cost scope): what a day of storage
costs, in USD. Whether the growth is unusual is the detection engine's call:
one `SeriesDetector` per series, fed each complete UTC day once (the first
run's weeks of history are its warm-up), which compares the growth rate with
the series' own past rates and the daily cost with its own recent days, so a
bucket growing at its usual pace, however fast, a weekly fill-and-empty rhythm
or a one-day burst raise nothing. `analyse` only describes the growth for the
notice (the last week against the usual week) and `month_bill` projects the bill.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from statistics import median
from typing import Sequence

from agent.api import DetectorParams, SeriesDetector, Verdict

DAY = 86400.0
WEEK_DAYS = 7
MIN_BASELINE_WEEKS = 5
"""Earlier 7-day windows needed before a "usual week" is worth naming (about 3 weeks of history)."""
BASE = DetectorParams(window=60, warmup=21, threshold=5.0, smooth=3, cooldown=14, seasonal=False, trend_span=7,
                      trend_threshold=4.0, trend_persistence=2)
"""`medium` for one point a day. Two months of days as the baseline: growth must also move the
cost beyond the window's spread, and over a longer window of a growing bucket that spread hides
a pace five times the usual. Three weeks of warm-up (a first run's backlog covers it), the growth
rate as the median rise of the last 7 days (4 days of a new pace move it, a burst does not),
2 days at that rate, and two weeks between notices. No hour-of-week profile for daily points."""
STEP_UP = frozenset({"shift_up", "spike"})


@dataclass(frozen=True, slots=True)
class Growth:
    """The recent week against the bucket's own earlier weeks; costs in USD per day. Describes, never decides."""

    level: float
    level_week_ago: float
    recent_week: float
    usual_week: float | None
    """Median cost added per earlier 7-day window (None with too little history)."""
    baseline_weeks: int
    last_day: float
    """Timestamp (UTC midnight) of the newest day in the series."""

    @property
    def rate_per_day(self) -> float:
        """How much a day's cost grows per day, at the last week's pace."""
        return self.recent_week / WEEK_DAYS

    @property
    def monthly_growth_ratio(self) -> float:
        """Growth over a month at the last week's pace, as a share of the level a week ago."""
        if self.level_week_ago <= 0:
            return math.inf if self.recent_week > 0 else 0.0
        return self.recent_week * (30.0 / WEEK_DAYS) / self.level_week_ago


@dataclass(frozen=True, slots=True)
class Pace:
    """What the detection engine makes of a daily cost series once the new complete days are learnt."""

    episode: str
    """Kind of the open episode: trend, shift_up or spike (growth), shift_down or dip; '' when none."""
    days: int
    """Days the open episode has lasted, its first day included (0 without one)."""
    since: float | None
    """The day the open episode began (UTC midnight)."""
    usual: float | None
    """The detector's usual daily cost, USD (median of its window)."""
    fed: int
    """Complete days learnt in this run."""
    newest: Verdict | None
    """The verdict on the newest day learnt in this run."""
    params: DetectorParams

    @property
    def growing(self) -> bool:
        """A change of pace, or a step up in the daily cost that outlived its first day.

        A one-day burst opens a spike episode that ends the next day, when the
        cost is back; a step up that stays, or a rise that goes on, keeps it open.
        """
        return self.episode == "trend" or (self.episode in STEP_UP and self.days >= 2)


def follow(detector: SeriesDetector, points: Sequence[tuple[float, float]], today: float) -> Pace:
    """Feed the detector the complete days it has not learnt yet, oldest first.

    Never today (its cost can still change) and never a day twice: only days
    after `detector.last_ts`. On a first run that is the whole stored history.
    """
    fed, newest = 0, None
    for day, usd in daily(points):
        if day >= today:
            break
        if detector.last_ts is None or day > detector.last_ts:
            newest = detector.update(day, usd)
            fed += 1
    days = detector.episode_length()
    since = detector.last_ts - (days - 1) * DAY if days and detector.last_ts is not None else None
    return Pace(detector.episode, days, since, detector.usual(), fed, newest, detector.params)


def unusual(pace: Pace, growth: Growth | None) -> bool:
    """News: the engine sees growth beyond the bill's own past, and the last 7 days added more than a usual week.

    The second half is the business floor: a step up stops being news once it is a week old.
    """
    if not pace.growing or growth is None:
        return False
    return growth.recent_week > max(growth.usual_week or 0.0, 0.0)


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
    """The growth of a daily cost series, for the notice; None with fewer than two days."""
    series = daily(points)
    if len(series) < 2:
        return None
    values = [v for _, v in series]
    last = len(values) - 1
    lag = min(WEEK_DAYS, last)
    recent = (values[last] - values[last - lag]) * WEEK_DAYS / lag
    weeks = [values[t] - values[t - WEEK_DAYS] for t in range(WEEK_DAYS, last - WEEK_DAYS + 1)]
    usual = median(weeks) if len(weeks) >= MIN_BASELINE_WEEKS else None
    return Growth(values[last], values[last - lag], recent, usual, len(weeks), series[-1][0])


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
