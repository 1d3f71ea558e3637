"""Growth of a bucket's bill, judged by the detection engine against the bucket's own past.

Synthetic daily cost series (USD per day) go through a real `DetectorBank` and
the check's own judging path (`CloudStorageCheck.assess`), one run a day as the
daemon does: a change of pace or a step up that stays is news; a usual pace
(even fast), a weekly fill-and-empty rhythm, a one-day burst and a shrinking
bucket are not.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from agent.api import Context
from agent.detect.bank import DetectorBank
from checks.cloud_storage.growth import BASE, DAY, analyse, daily, month_bill
from checks.cloud_storage.check import Assessment, CloudStorageCheck, CloudStorageConfig, Subject

START = datetime(2026, 7, 6, tzinfo=timezone.utc).timestamp()  # a Monday
SUBJECT = Subject("lab-results", {"bucket": "lab-results"}, ("lab-results",))
SEEDS = range(12)


class NoHistory:
    """`assess` is handed the series; the store is never read."""

    def series(self, name, labels, since):
        return []


def days(values, start=START):
    return [(start + i * DAY, v) for i, v in enumerate(values)]


def check(**settings) -> CloudStorageCheck:
    """Only the engine decides here: the absolute growth_warning rule is off unless a test sets it."""
    return CloudStorageCheck(CloudStorageConfig(buckets=[SUBJECT.name], **{"growth_warning": None, **settings}))


def judge(values, bank: DetectorBank, cloud: CloudStorageCheck, at: float | None = None) -> Assessment:
    """One run, an hour after the last day of `values` ended (that day is complete)."""
    now = at if at is not None else START + len(values) * DAY + 3600
    ctx = Context(now=lambda: now, history=NoHistory(), hostname="fw-test", detectors=bank)
    return cloud.assess(ctx, SUBJECT, days(values), now)


def daily_runs(values, first: int = 30, **settings) -> dict[int, Assessment]:
    """The daemon's way: a first run with `first` days of backlog, then one run per new day, one bank throughout."""
    bank, cloud = DetectorBank(), check(**settings)
    return {n: judge(values[:n], bank, cloud) for n in range(first, len(values) + 1)}


def raised(runs: dict[int, Assessment]) -> list[int]:
    """Days (series lengths) whose run raised storage_cost_growth."""
    return [n for n, judged in runs.items() if judged.growth_rules]


def pace(count, per_day, seed, level=1000.0, noise=0.5):
    """A bucket whose cost grows by `per_day` on average, each day's rise varying by +-`noise`."""
    rng, values = random.Random(seed), []
    for _ in range(count):
        level += per_day * max(0.0, 1.0 + noise * rng.gauss(0.0, 1.0))
        values.append(level)
    return values


def weekdays(count, per_day, seed, level=1000.0):
    """Uploads on weekdays, barely anything at weekends."""
    rng, values = random.Random(seed), []
    for i in range(count):
        level += per_day * (0.15 if i % 7 in (5, 6) else 1.0) * (1.0 + 0.3 * rng.gauss(0.0, 1.0))
        values.append(level)
    return values


def change_of_pace(before, after, times, seed):
    """`before` days at the usual pace, then `after` days at `times` that pace."""
    values = pace(before + after, 1.0, seed)
    return [v + (times - 1) * max(0, i - before + 1) for i, v in enumerate(values)]


# ---------------------------------------------------------------- quiet


@pytest.mark.parametrize("seed", SEEDS)
def test_bucket_growing_at_its_usual_pace_raises_nothing_even_when_fast(seed):
    assert raised(daily_runs(pace(150, 20.0, seed))) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_quiet_weekends_do_not_look_like_a_change_of_pace(seed):
    assert raised(daily_runs(weekdays(120, 10.0, seed))) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_weekly_sawtooth_of_temporary_data_raises_nothing(seed):
    """200 USD a day of temporary data, uploaded every Monday and deleted every Sunday."""
    values = [v + (0.0 if i % 7 == 6 else 200.0) for i, v in enumerate(pace(120, 2.0, seed))]
    assert raised(daily_runs(values)) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_one_day_burst_raises_nothing_though_the_engine_sees_it(seed):
    values = pace(90, 2.0, seed)
    values[70] += 500.0  # a big upload, deleted the next day
    runs = daily_runs(values)
    assert runs[71].pace.episode == "spike"  # the engine noticed the burst...
    assert raised(runs) == []  # ...but a day that does not last is no change of pace
    assert runs[72].pace.episode == ""


@pytest.mark.parametrize("seed", SEEDS)
def test_shrinking_bucket_raises_nothing(seed):
    values = [3000.0 - v for v in pace(120, 5.0, seed, level=0.0)]
    assert raised(daily_runs(values)) == []


# ---------------------------------------------------------------- news


@pytest.mark.parametrize("seed", SEEDS)
def test_growth_five_times_the_usual_for_a_week_raises_storage_cost_growth(seed):
    values = change_of_pace(60, 7, 5, seed)
    runs = daily_runs(values)
    assert [n for n in raised(runs) if n <= 60] == []  # quiet while the pace is the usual one
    last = runs[len(values)]
    assert last.pace.episode == "trend" and last.growth_rules
    assert "growth rate" in last.growth_rules[0] and "detection engine, sensitivity medium" in last.growth_rules[0]


def test_change_of_pace_is_found_after_months_of_history_too():
    """The detector's window is bounded, so a long-lived bucket is judged against its recent months."""
    runs = daily_runs(change_of_pace(200, 7, 5, seed=3), first=150)
    assert raised(runs) and min(raised(runs)) > 200


def test_step_up_that_stays_raises_storage_cost_growth_until_it_is_a_week_old():
    values = pace(60, 2.0, seed=5) + [v + 300.0 for v in pace(14, 2.0, seed=6, level=1120.0)]
    runs = daily_runs(values)
    assert raised(runs) == [62, 63, 64, 65, 66, 67]  # from its second day, while it is in the last 7 days
    assert "(spike), and stayed up 2 days" in runs[62].growth_rules[0]


def test_absolute_growth_warning_still_applies_before_the_engine_has_learnt_anything():
    runs = daily_runs([100.0, 150.0, 400.0, 900.0], first=4, growth_warning="50%")
    assert runs[4].pace.episode == "" and runs[4].growth_rules == ("growth at the last week's pace >= 50% per month",)


# ---------------------------------------------------------------- state


def test_detector_state_carries_over_and_each_day_is_learnt_once():
    values = pace(61, 3.0, seed=1)
    bank, cloud = DetectorBank(), check()
    first = judge(values[:60], bank, cloud)
    assert first.pace.fed == 60  # the first run's backlog is the warm-up
    again = judge(values[:60], bank, cloud, at=START + 60 * DAY + 5 * 3600)
    assert again.pace.fed == 0 and again.pace.newest is None  # same day, nothing new
    today = judge(values, bank, cloud, at=START + 60 * DAY + 9 * 3600)
    assert today.pace.fed == 0  # today's value can still change: not learnt yet
    nextday = judge(values, bank, cloud)
    assert nextday.pace.fed == 1
    detector = bank.live[f"{SUBJECT.name}/cloudwatch"]  # the detector the check used
    assert detector.last_ts == START + 60 * DAY


def test_a_new_sensitivity_starts_a_new_warm_up_from_the_stored_history():
    values = pace(60, 3.0, seed=2)
    bank = DetectorBank()
    judge(values, bank, check())
    assert judge(values, bank, check(sensitivity="high")).pace.fed == 60


# ---------------------------------------------------------------- description


def test_last_week_is_described_against_the_usual_week():
    growth = analyse(days([100 + i for i in range(24)] + [124 + 20 * i for i in range(1, 7)]))
    assert growth.usual_week == pytest.approx(7)
    assert growth.recent_week > 10 * growth.usual_week


def test_short_history_names_no_usual_week():
    growth = analyse(days([100, 150, 400, 900]))
    assert growth.usual_week is None
    assert growth.monthly_growth_ratio > 1


def test_one_day_of_history_is_not_enough():
    assert analyse(days([100])) is None


def test_missing_days_are_filled_in_a_straight_line():
    filled = daily([(START, 10.0), (START + 3 * DAY, 40.0)])
    assert [v for _, v in filled] == [10.0, 20.0, 30.0, 40.0]


def test_month_bill_adds_known_days_and_projects_the_rest_at_the_last_week_pace():
    november = datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()
    points = days([1.0] * 10, start=november)  # 1 USD a day, flat, 1-10 November
    growth = analyse(points)
    bill = month_bill(points, growth, november + 9.5 * DAY)
    assert bill.month_to_date == pytest.approx(10.0)
    assert bill.projected == pytest.approx(30.0)
    assert bill.next_month == pytest.approx(31.0)


def test_month_bill_never_projects_below_zero():
    points = days([10.0 - i for i in range(10)], start=datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp())
    growth = analyse(points)
    bill = month_bill(points, growth, points[-1][0])
    assert bill.projected == pytest.approx(sum(10.0 - i for i in range(10)))
    assert bill.next_month == 0.0
