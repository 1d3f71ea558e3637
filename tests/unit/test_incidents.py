"""The incident lifecycle: open only when it holds, update when it matters, resolve once."""

import time

import pytest

from agent.api import Finding, Forecast, Severity
from agent.config import Owner
from agent.dispatch import quiet_until
from agent.incidents import Incidents, Policy
from agent.store import Store

POLICY = Policy(for_=180, clear_after=120, update_interval=1200)


def finding(severity=Severity.WARNING, eta=None, kind="disk_nearly_full", mount="/"):
    forecast = Forecast(eta, eta - 10, eta + 10, "test") if eta else None
    return Finding("disk", kind, severity, mount, {"mount": mount}, "summary", {}, {}, forecast, incident="disk_space")


@pytest.fixture
def incidents(tmp_path):
    return Incidents(Store(tmp_path))


def phases(events):
    return [e.phase for e in events]


def test_a_condition_opens_an_incident_only_after_it_held_for_its_duration(incidents):
    assert incidents.evaluate("disk", [finding()], 0, POLICY) == []
    assert incidents.evaluate("disk", [finding()], 100, POLICY) == []
    assert phases(incidents.evaluate("disk", [finding()], 180, POLICY)) == ["opening"]


def test_a_brief_condition_never_opens_anything(incidents):
    incidents.evaluate("disk", [finding()], 0, POLICY)
    assert incidents.evaluate("disk", [], 60, POLICY) == []
    assert incidents.evaluate("disk", [finding()], 120, POLICY) == []  # starts counting again
    assert incidents.evaluate("disk", [finding()], 240, POLICY) == []


def test_a_value_hovering_at_the_limit_does_not_flap(incidents):
    opened = []
    for t in range(0, 2000, 60):  # present, absent, present...: never absent for clear_after
        present = t < 240 or (t // 60) % 2
        events = incidents.evaluate("disk", [finding()] if present else [], t, POLICY)
        for e in events:
            incidents.notified(e.incident, t)
        opened += events
    assert phases(opened) == ["opening"]


def test_resolution_comes_once_after_the_condition_stayed_away(incidents):
    incidents.evaluate("disk", [finding()], 0, POLICY)
    incidents.evaluate("disk", [finding()], 180, POLICY)
    assert incidents.evaluate("disk", [], 240, POLICY) == []
    assert phases(incidents.evaluate("disk", [], 300, POLICY)) == ["resolution"]
    assert incidents.evaluate("disk", [], 360, POLICY) == []


def test_critical_incidents_get_regular_updates_warnings_do_not(incidents):
    for severity, expected in ((Severity.CRITICAL, ["opening", "update", "update"]), (Severity.WARNING, ["opening"])):
        store_events = []
        for t in range(0, 3000, 60):
            events = incidents.evaluate("disk", [finding(severity, mount=f"/{severity}")], t, POLICY)
            for e in events:
                incidents.notified(e.incident, t)
            store_events += events
        assert phases(store_events) == expected, severity


def test_warning_is_updated_when_the_forecast_moves_materially(incidents):
    day = 86400
    events = incidents.evaluate("disk", [finding(eta=3 * day)], 0, Policy(0, 60, 1200))
    incidents.notified(events[0].incident, 0)
    assert incidents.evaluate("disk", [finding(eta=3 * day + 3600)], 60, Policy(0, 60, 1200)) == []
    assert phases(incidents.evaluate("disk", [finding(eta=1 * day)], 120, Policy(0, 60, 1200))) == ["update"]


def test_severity_change_is_an_update_in_the_same_incident(incidents):
    [opening] = incidents.evaluate("disk", [finding()], 0, Policy(0, 60, 1200))
    incidents.notified(opening.incident, 0)
    [update] = incidents.evaluate("disk", [finding(Severity.CRITICAL, kind="disk_full")], 60, Policy(0, 60, 1200))
    assert update.phase == "update" and update.incident.id == opening.incident.id


def test_a_restart_remembers_open_incidents_and_what_was_said(tmp_path):
    first = Incidents(Store(tmp_path))
    [opening] = first.evaluate("disk", [finding(eta=86400)], 0, Policy(0, 60, 1200))
    first.notified(opening.incident, 0)
    first.save([opening.incident])
    again = Incidents(Store(tmp_path))
    assert again.evaluate("disk", [finding(eta=86400)], 60, Policy(0, 60, 1200)) == []
    assert phases(again.evaluate("disk", [], 200, Policy(0, 60, 1200))) == ["resolution"]
    assert again.evaluate("disk", [], 300, Policy(0, 60, 1200)) == []


def test_quiet_hours_hold_non_critical_notices_until_they_end():
    owner = Owner(department="Finance", timezone="Europe/Rome", quiet_hours="22:00-07:00")
    night = 1_795_000_000 - (1_795_000_000 % 86400) + 23 * 3600  # 23:00 UTC = 00:00 in Rome (winter)
    until = quiet_until(owner, Severity.WARNING, night)
    assert until is not None and time.gmtime(until).tm_hour == 6  # 07:00 in Rome
    assert quiet_until(owner, Severity.CRITICAL, night) is None
    assert quiet_until(owner, Severity.WARNING, night - 12 * 3600) is None  # midday
