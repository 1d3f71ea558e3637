"""Perfdata formatting: quoting, units, ranges, and time to full only when it is known."""

from __future__ import annotations

from agent.api import CheckResult, Observation, ResourceStatus, Status
from agent.plugin_output import number, quote, status_line

LABELS = {"mount": "/srv/fin'ance", "device": "/dev/sdb1"}
LIMITS = {"disk_used_ratio": ("", "85", "95"), "disk_free_bytes": (" free", "", ""),
          "disk_time_to_full_seconds": (" time to full", "259200:", "43200:")}


def result(*observations: Observation, status: Status = Status.WARNING) -> CheckResult:
    return CheckResult("disk", (ResourceStatus("/srv/fin'ance", status, "91.0% used", LABELS),), observations)


def obs(name: str, value: float, unit: str) -> Observation:
    return Observation(name, value, LABELS, unit, 0.0)


def test_used_free_and_time_to_full_in_plugin_syntax() -> None:
    line = status_line(Status.WARNING, [result(obs("disk_used_ratio", 0.912, "ratio"),
                                               obs("disk_free_bytes", 88e9, "bytes"),
                                               obs("disk_size_bytes", 1e12, "bytes"),
                                               obs("disk_time_to_full_seconds", 200000.4, "seconds"))],
                       lambda check: LIMITS)
    assert line == ("WARNING - /srv/fin'ance 91.0% used | '/srv/fin''ance'=91.2%;85;95;0;100 "
                    "'/srv/fin''ance free'=88000000000B;;;0 '/srv/fin''ance time to full'=200000.4s;259200:;43200:;0")


def test_no_forecast_no_time_to_full_and_ok_counts_resources() -> None:
    line = status_line(Status.OK, [result(obs("disk_used_ratio", 0.1, "ratio"), status=Status.OK)],
                       lambda check: LIMITS)
    assert line == "OK - 1 resource OK | '/srv/fin''ance'=10%;85;95;0;100"


def test_a_check_without_perfdata_prints_only_the_text() -> None:
    assert status_line(Status.OK, [result(status=Status.OK)], lambda check: {}) == "OK - 1 resource OK"


def test_labels_and_numbers() -> None:
    assert quote("a=b 'c'") == "'a_b ''c'''"
    assert number(-0.0001) == "0" and number(1e15) == "1000000000000000" and number(2.5) == "2.5"
