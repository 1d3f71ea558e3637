"""Incident timelines as the owner lives through them: rehearsed on a simulated clock through the
production path (disk check judging scripted numbers → incidents → dispatch → composer → outbox).

Each scenario is checked against the invariants in tests/unit/timeline.py, plus what it is about.
"""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from agent.rehearse import Transcript, load_scenario, parse_scenario, rehearse
from tests.unit.timeline import violations

ROOT = Path(__file__).resolve().parents[2]
TB = 10**12
GB = 10**9

CONFIG = {
    "agent": {"hostname": "fin-fs01", "update_interval": "20m"},
    "owners": {
        "it": {"department": "IT", "address_as": "Team", "tone": "friendly", "notify": ["it-mail"],
               "escalate_to": "cio", "escalate_after": "30m"},
        "cio": {"department": "IT management", "address_as": "Ms. Rossi", "notify": ["cio-mail"]},
        "finance": {"department": "Finance", "contact": "Marco Santino", "address_as": "Mr. Santino",
                    "tone": "formal", "timezone": "Europe/Rome", "quiet_hours": "22:00-07:00",
                    "notify": ["finance-mail"]},
    },
    "resources": [{"name": "Finance shared drive", "owner": "finance",
                   "impact": "month-end closing reports can't be saved",
                   "match": {"check": "disk", "mount": "/srv/finance"}}],
    "checks": {"disk": {"interval": "10m", "for": "20m", "forecast_warning": "72h", "forecast_critical": "12h"}},
    "notifiers": {"it-mail": {"type": "console"}, "cio-mail": {"type": "console"}, "finance-mail": {"type": "console"}},
}


def scenario(used, *, start="2026-11-23T08:00:00+01:00", duration="3d", events=(), config=None, size="1TB"):
    return parse_scenario({"start": start, "duration": duration, "config": copy.deepcopy(config or CONFIG),
                           "measure": {"disk": {"/srv/finance": {"size": size, "used": used}}},
                           "events": list(events)}, "test-scenario")


def phases(transcript: Transcript, owner: str) -> list[str]:
    return [d.notice.phase for d in transcript.for_owner(owner)]


def local(ts: float, zone: str = "Europe/Rome") -> datetime:
    return datetime.fromtimestamp(ts, ZoneInfo(zone))


# A drive that fills from 80% to full in a day and a half, then IT frees 400 GB.
FILLS_UP = [["0h", "800GB"], ["36h", "1000GB"], ["40h", "1000GB"], ["2405m", "600GB"], ["72h", "610GB"]]


@pytest.fixture(scope="module")
def fills_up() -> Transcript:
    return rehearse(scenario(FILLS_UP))


def test_a_drive_that_fills_up_keeps_every_sentence_true_over_its_whole_life(fills_up):
    assert violations(fills_up) == []
    assert phases(fills_up, "finance")[0] == "opening" and phases(fills_up, "finance")[-1] == "resolution"


def test_a_forecast_that_gives_way_to_a_full_disk_is_an_update_not_an_all_clear(fills_up):
    """Issue 12.13: the forecast incident ended when the disk became full, and its resolution said
    'enough free space again' while the disk was at 97%."""
    finance = fills_up.for_owner("finance")
    resolutions = [d for d in finance if d.notice.phase == "resolution"]
    assert len(resolutions) == 1 and resolutions[0].notice.created > fills_up.scenario.start + 40 * 3600
    assert len({d.notice.thread_id for d in finance}) == 1  # one thread from first warning to all-clear
    assert any(d.notice.severity == "critical" and d.notice.phase == "update" for d in finance)


def test_a_resolution_tells_the_numbers_of_its_own_moment(fills_up):
    """Issue 12.2: a resolution repeated the numbers of the last finding (5.2 MB free when 52 MB were)."""
    [resolution] = [d.notice for d in fills_up.for_owner("finance") if d.notice.phase == "resolution"]
    [finding] = resolution.findings
    assert 380 * GB < finding.facts["free_bytes"] < 420 * GB


def test_every_notice_of_a_thread_keeps_the_opening_subject(fills_up):
    """Issue 12.3: the resolution's subject was recomputed from a stale forecast and split the thread."""
    finance = [d.notice for d in fills_up.for_owner("finance")]
    opening = finance[0].subject
    assert all(n.subject in (opening, f"Update: {opening}", f"Resolved: {opening}") for n in finance)


def test_it_hears_the_business_name_and_impact_in_the_daemon_path_too(fills_up):
    """Issue 12.7: `agent run` told IT 'the storage area /srv/finance on server …' where `agent check`
    named the Finance shared drive."""
    it = [d.notice for d in fills_up.for_owner("it")]
    assert it and all("Finance shared drive" in n.subject for n in it)
    assert "month-end closing reports can't be saved" in it[0].body


def test_an_unacknowledged_critical_incident_is_escalated_once_as_an_escalation(fills_up):
    """Issue 12.14: escalations arrived as routine updates."""
    [escalation] = [d.notice for d in fills_up.for_owner("cio")]
    assert escalation.phase == "escalation" and escalation.severity == "critical"
    assert "Nobody has acknowledged this within 30 minutes" in escalation.body


def test_an_acknowledged_incident_is_not_escalated():
    """Issue 12.5: an ack was overwritten by the daemon's next run and the incident escalated anyway."""
    transcript = rehearse(scenario(FILLS_UP, events=[{"at": "1450m", "ack": True, "by": "luca"}]))
    assert transcript.for_owner("cio") == []
    assert violations(transcript) == []


def test_a_silenced_incident_is_not_escalated():
    """Issue 12.5: escalation never looked at silences."""
    transcript = rehearse(scenario(FILLS_UP, events=[{"at": "20h", "silence": {"resource": "/srv/finance"},
                                                       "for": "1d"}]))
    start = transcript.scenario.start
    assert transcript.for_owner("cio") == []
    assert not [d for d in transcript.delivered if start + 20 * 3600 <= d.notice.created < start + 44 * 3600]


def test_a_note_from_it_goes_out_as_an_update_within_a_cycle():
    transcript = rehearse(scenario(FILLS_UP, events=[
        {"at": "25h", "note": "Luca is moving the 2024 archives to the NAS tonight.", "by": "Luca"}]))
    noted_at = transcript.scenario.start + 25 * 3600
    updates = [d for d in transcript.for_owner("finance") if d.notice.created >= noted_at]
    assert updates and updates[0].notice.phase == "update" and updates[0].notice.created - noted_at <= 600
    assert violations(transcript) == []


def test_a_restart_repeats_no_opening_and_forgets_no_resolution():
    calm = rehearse(scenario(FILLS_UP))
    restarted = rehearse(scenario(FILLS_UP, events=[{"at": f"{h}h", "restart": True} for h in (20, 37, 41)]))
    assert phases(restarted, "finance") == phases(calm, "finance")
    assert violations(restarted) == []


def test_it_closes_an_incident_by_hand_and_the_next_one_remembers_the_fix():
    used = [["0h", "800GB"], ["30h", "980GB"], ["40h", "985GB"], ["60h", "990GB"]]
    transcript = rehearse(scenario(used, duration="70h", events=[
        {"at": "32h", "resolve": True, "fix": "moved the 2024 archives to the NAS"}]))
    start = transcript.scenario.start
    finance = [d.notice for d in transcript.for_owner("finance")]
    [closed] = [n for n in finance if n.phase == "resolution"]
    assert closed.created == start + 32 * 3600  # the owners hear it is over when IT says so
    reopened = [n for n in finance if n.phase == "opening" and n.created > closed.created]
    assert reopened and reopened[0].thread_id != closed.thread_id  # still full: a new incident, after `for`
    assert reopened[0].created - closed.created >= 20 * 60


def test_a_burst_that_is_deleted_raises_nothing():
    used = [["0h", "500GB"], ["30h", "503GB"], ["31h", "700GB"], ["33h", "505GB"], ["72h", "510GB"]]
    transcript = rehearse(scenario(used))
    assert transcript.delivered == []


def test_a_sawtooth_raises_nothing_once_it_has_given_space_back():
    """The first climb looks like any growth (and is told); once the disk has emptied, the same climb
    is a rhythm, not a trend."""
    used = []
    for day in range(4):
        used += [[f"{day * 24}h", "500GB"], [f"{day * 24 + 20}h", "640GB"], [f"{day * 24 + 21}h", "500GB"]]
    transcript = rehearse(scenario(used[:-1] + [["95h", "500GB"]], duration="4d"))
    assert not [d for d in transcript.delivered if d.notice.phase == "opening"
                and d.notice.created > transcript.scenario.start + 21 * 3600]
    assert violations(transcript) == []


def test_quiet_hours_hold_a_warning_until_seven_in_the_owners_morning_across_a_dst_change():
    """25 October 2026: Rome goes from UTC+2 to UTC+1 at 03:00. A warning found at night reaches the
    owner at 07:00 local time, IT at once."""
    transcript = rehearse(scenario("870GB", start="2026-10-24T23:00:00+02:00", duration="12h"))
    [first] = [d for d in transcript.for_owner("finance") if d.notice.phase == "opening"]
    created = local(first.notice.created)
    assert (created.hour >= 22 or created.hour < 7) and (local(first.at).hour, local(first.at).minute) == (7, 0)
    assert local(first.at).utcoffset().total_seconds() == 3600
    [it_first] = [d for d in transcript.for_owner("it") if d.notice.phase == "opening"]
    assert it_first.at - it_first.notice.created <= 60
    assert violations(transcript) == []


def test_a_month_boundary_changes_nothing_in_the_wording():
    transcript = rehearse(scenario(FILLS_UP, start="2026-11-30T08:00:00+01:00"))
    assert violations(transcript) == []
    assert phases(transcript, "finance") == phases(rehearse(scenario(FILLS_UP)), "finance")


def test_the_shipped_example_scenarios_rehearse_cleanly():
    for path in sorted((ROOT / "contrib" / "rehearsals").glob("*.yaml")):
        transcript = rehearse(load_scenario(str(path)))
        assert transcript.delivered, path
        assert violations(transcript) == [], path


# --------------------------------------------------------------------- generated timelines

POINT = st.tuples(st.integers(min_value=1, max_value=12), st.integers(min_value=300, max_value=1000))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points=st.lists(POINT, min_size=2, max_size=8),
       events=st.lists(st.tuples(st.integers(min_value=1, max_value=39),
                                 st.sampled_from(["ack", "restart", "note"])), max_size=3))
def test_generated_timelines_keep_every_invariant(points, events):
    used, at = [["0h", "600GB"]], 0
    for hours, gigabytes in points:
        at += hours
        used.append([f"{at}h", f"{gigabytes}GB"])
    steps = [{"at": f"{h}h", kind: "generated note" if kind == "note" else True} for h, kind in events]
    transcript = rehearse(scenario(used, duration="40h", events=steps))
    assert violations(transcript) == []
