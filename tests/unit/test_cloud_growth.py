"""Growth of a bucket's bill against its own history: jumps are found, usual paces and shrinking are not."""

from datetime import datetime, timezone

import pytest

from checks.cloud_growth import DAY, analyse, daily, month_bill

START = datetime(2026, 10, 5, tzinfo=timezone.utc).timestamp()  # a Monday


def days(values, start=START):
    return [(start + i * DAY, v) for i, v in enumerate(values)]


def weekday_pace(count, weekday=1.0, weekend=0.1, base=100.0):
    values, level = [], base
    for i in range(count):
        level += weekend if (i % 7) in (5, 6) else weekday
        values.append(level)
    return values


def test_bucket_growing_at_its_usual_pace_is_not_unusual():
    growth = analyse(days([100 + 2 * i for i in range(30)]))
    assert growth is not None and not growth.unusual
    assert growth.recent_week == pytest.approx(14)


def test_quiet_weekends_do_not_look_like_a_change_of_pace():
    for offset in range(7):  # whatever weekday the history ends on
        growth = analyse(days(weekday_pace(30 + offset)))
        assert not growth.unusual, offset


def test_last_week_jump_is_unusual_and_scored_against_the_usual_week():
    values = [100 + i for i in range(24)] + [124 + 20 * i for i in range(1, 7)]
    growth = analyse(days(values))
    assert growth.unusual
    assert growth.usual_week == pytest.approx(7)
    assert growth.score > 10


def test_shrinking_bucket_is_never_unusual():
    growth = analyse(days([300 - 3 * i for i in range(30)]))
    assert not growth.unusual and growth.recent_week < 0


def test_short_history_gives_no_verdict_on_pace():
    growth = analyse(days([100, 150, 400, 900]))
    assert growth.usual_week is None and growth.score is None and not growth.unusual
    assert growth.monthly_growth_ratio > 1  # the growth_warning rule still applies


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
