import pytest
from hypothesis import given, strategies as st

from agent.units import format_bytes, format_duration, parse_duration, parse_percent, parse_size


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("500ms", 0.5), (90, 90)])
def test_durations_read_as_people_write_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["60x", "", "5 minutes", "-5s", True, "1.2.3s"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_sizes_and_percentages():
    assert parse_size("500MB") == 500e6
    assert parse_size("2GiB") == 2 * 2**30
    assert parse_percent("85%") == pytest.approx(0.85)
    assert parse_percent(85) == pytest.approx(0.85)
    for bad in ("120%", "85", "abc%", -1):
        with pytest.raises(ValueError):
            parse_percent(bad)


@given(st.integers(min_value=0, max_value=3650), st.sampled_from(["s", "m", "h", "d"]))
def test_any_whole_duration_parses_to_its_seconds(count, unit):
    assert parse_duration(f"{count}{unit}") == count * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), 10**400, "3651d", "99999999999999999999h"])
def test_durations_no_setting_means_are_refused(odd):
    with pytest.raises(ValueError):
        parse_duration(odd)


@pytest.mark.parametrize("odd", [0.85, float("nan"), float("inf"), 10**400, "nan%", "1e999%"])
def test_percentages_that_mean_nothing_or_the_wrong_thing_are_refused(odd):
    with pytest.raises(ValueError):
        parse_percent(odd)


def test_a_bare_fraction_is_refused_with_both_readings():
    with pytest.raises(ValueError, match="write 85% or 0.85%"):
        parse_percent(0.85)
    assert parse_percent(0) == 0 and parse_percent(1) == pytest.approx(0.01)


def test_technical_formats():
    assert format_duration(90) == "1m30s"
    assert format_duration(62 * 3600) == "2d14h"
    assert format_bytes(912e9) == "912.0 GB"
    assert format_bytes(12) == "12 B"
