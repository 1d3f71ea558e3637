"""The outbox: written before sending, once per channel, in order, retried with backoff, dead-lettered loudly."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.api import Delivery, Finding, Forecast, Notice, NotifierConfig, NotifyError, Severity
from agent.config import parse_config
from agent.outbox import Outbox, RetryPolicy, notice_from_dict, notice_to_dict, process_identity
from agent.registry import Registry, default_registry
from agent.store import Store

POLICY = RetryPolicy(initial=10.0, factor=2.0, max_delay=60.0, jitter=0.2, dead_letter_after=3600.0)


class Channel:
    """A notifier whose outcomes a test scripts: None sends, a NotifyError fails."""

    def __init__(self) -> None:
        self.script: list[NotifyError | None] = []
        self.sent: list[tuple[str, Notice]] = []

    def notifier_class(self) -> type:
        channel = self

        class ScriptedConfig(NotifierConfig):
            pass

        class Scripted:
            type: ClassVar[str] = "scripted"
            Config: ClassVar[type] = ScriptedConfig

            def __init__(self, name: str, config: NotifierConfig):
                self.name = name

            def send(self, notice: Notice) -> Delivery:
                outcome = channel.script.pop(0) if channel.script else None
                if outcome is not None:
                    raise outcome
                channel.sent.append((self.name, notice))
                return Delivery(self.name)

        return Scripted


@dataclass(frozen=True)
class ScriptedRegistry(Registry):
    plugins: dict[str, type] = field(default_factory=dict)

    def notifier(self, type_name: str) -> type:
        return self.plugins.get(type_name) or super().notifier(type_name)


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def channel() -> Channel:
    return Channel()


@pytest.fixture
def config(channel: Channel):
    base = default_registry()
    registry = ScriptedRegistry(base.checks, base.notifiers + ("scripted",), {"scripted": channel.notifier_class()})
    return parse_config({
        "owners": {"it": {"department": "IT", "notify": ["it-chat", "it-backup"]},
                   "finance": {"department": "Finance", "notify": ["fin-mail", "fin-chat"]}},
        "notifiers": {name: {"type": "scripted"} for name in ("it-chat", "it-backup", "fin-mail", "fin-chat")},
    }, "test.yaml", registry)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path, config, clock):
    store = Store(tmp_path)
    results: list[tuple[str, str]] = []
    box = Outbox(store, config, clock=clock, on_result=lambda c, r: results.append((c, r)), policy=POLICY,
                 rng=random.Random(7))
    box.results = results  # type: ignore[attr-defined]
    yield box
    store.close()


def notice(owner: str = "finance", incident: str = "inc1", sequence: int = 0, phase: str = "opening",
           subject: str = "Finance shared drive will be full by Thursday") -> Notice:
    finding = Finding("disk", "disk_filling", Severity.WARNING, "/srv/finance", {"mount": "/srv/finance"},
                      "filling", facts={"used_ratio": 0.91, "free_bytes": 9e10}, evidence={"growth": "+13 GB/day"},
                      forecast=Forecast(1.7e9 + 86400, 1.7e9 + 80000, 1.7e9 + 90000, "theil-sen"), incident="disk_space")
    return Notice(owner, "en", subject, "Dear Mr. Santino, ...", "Technical details", "<p>x</p>", Severity.WARNING,
                  incident, incident, phase, sequence, "Finance", (finding,), 1.7e9)


def test_each_channel_of_the_owner_gets_one_row_and_nothing_is_sent_on_enqueue(outbox, channel):
    assert outbox.enqueue(notice()) == 2
    assert outbox.pending() == 2
    assert channel.sent == []


def test_enqueueing_the_same_notice_twice_adds_nothing(outbox, channel):
    outbox.enqueue(notice())
    assert outbox.enqueue(notice()) == 0
    outbox.deliver_due()
    assert sorted(name for name, _ in channel.sent) == ["fin-chat", "fin-mail"]


def test_a_notice_for_an_owner_no_longer_configured_goes_to_the_default_owner(outbox, channel):
    assert outbox.enqueue(notice(owner="gone")) == 2
    outbox.deliver_due()
    assert sorted(name for name, _ in channel.sent) == ["it-backup", "it-chat"]


def test_a_delivered_notice_is_not_sent_again(outbox, channel, clock):
    outbox.enqueue(notice())
    outbox.deliver_due()
    clock.now += 10_000
    assert outbox.deliver_due() == []
    assert len(channel.sent) == 2 and outbox.pending() == 0
    assert ("fin-mail", "sent") in outbox.results


def test_temporary_failure_waits_for_the_backoff_then_delivers_once(outbox, channel, clock):
    channel.script = [NotifyError("SMTP 127.0.0.1:25 could not be reached (Connection refused)")]
    outbox.enqueue(notice(owner="it"))
    first = outbox.deliver_due()
    assert [a.result for a in first] == ["failed", "sent"]
    assert "Connection refused" in first[0].error
    clock.now += POLICY.initial * (1 - POLICY.jitter) - 0.1
    assert outbox.deliver_due() == []  # too early
    clock.now += POLICY.initial * 2 * POLICY.jitter + 0.2
    assert [a.result for a in outbox.deliver_due()] == ["sent"]
    assert sorted(name for name, _ in channel.sent) == ["it-backup", "it-chat"]
    assert outbox.results.count(("it-chat", "failed")) == 1


def test_backoff_grows_and_stops_at_the_cap(outbox, channel, clock):
    channel.script = [NotifyError("down")] * 16  # two channels fail 8 times each
    outbox.enqueue(replace(notice(owner="it"), findings=()))
    waits = []
    for _ in range(8):
        outbox.deliver_due()
        due = outbox.store.execute("SELECT next_attempt FROM outbox WHERE channel = 'it-chat'").fetchone()[0]
        waits.append(due - clock.now)
        clock.now = due
    assert waits[0] == pytest.approx(10, rel=0.21)
    assert waits[1] == pytest.approx(20, rel=0.21)
    assert all(w <= 60 * 1.2 + 1e-6 for w in waits)
    assert waits[-1] >= 60 * 0.8


@given(st.integers(min_value=1, max_value=60), st.floats(min_value=0, max_value=0.999999))
def test_retry_delay_stays_within_the_jitter_band_of_the_capped_exponential(failures, draw):
    policy = RetryPolicy()
    base = min(5.0 * 2 ** (failures - 1), 600.0)
    assert base * 0.8 <= policy.delay(failures, draw) <= base * 1.2


def test_a_later_notice_to_the_same_owner_and_channel_waits_for_the_earlier_one(outbox, channel, clock):
    channel.script = [NotifyError("busy")]
    outbox.enqueue(notice(owner="it", sequence=0, phase="opening", subject="opening"))
    outbox.enqueue(notice(owner="it", sequence=1, phase="update", subject="update"))
    outbox.deliver_due()  # it-chat: opening failed, so its update must wait; it-backup gets both in order
    assert [(n, x.subject) for n, x in channel.sent] == [("it-backup", "opening"), ("it-backup", "update")]
    clock.now += 60
    outbox.deliver_due()
    assert [x.subject for n, x in channel.sent if n == "it-chat"] == ["opening", "update"]


def test_permanent_failure_is_dead_lettered_at_once_and_the_default_owner_hears_through_another_channel(
        outbox, channel, clock):
    channel.script = [NotifyError("SMTP 127.0.0.1:25 answered 550 mailbox unavailable", permanent=True)]
    outbox.enqueue(notice())
    attempts = outbox.deliver_due()
    assert attempts[0].result == "dead" and attempts[1].result == "sent"
    assert ("fin-mail", "dead") in outbox.results
    outbox.deliver_due()
    operator = [(n, x) for n, x in channel.sent if x.phase == "operator"]
    assert [n for n, _ in operator] == ["it-chat", "it-backup"]
    assert "550 mailbox unavailable" in operator[0][1].body
    assert "Finance shared drive will be full by Thursday" in operator[0][1].subject
    clock.now += 10_000
    assert outbox.deliver_due() == []  # nothing retried
    [dead] = outbox.dead()
    assert dead["channel"] == "fin-mail" and dead["owner"] == "finance" and "550" in dead["error"]


def test_the_operator_is_not_told_through_the_channel_that_failed(outbox, channel):
    channel.script = [NotifyError("bad token", permanent=True)]
    outbox.enqueue(notice(owner="it"))  # it-chat fails first
    outbox.deliver_due()
    outbox.deliver_due()
    assert [n for n, x in channel.sent if x.phase == "operator"] == ["it-backup"]


def test_an_undeliverable_operator_notice_does_not_beget_another(outbox, channel):
    channel.script = [NotifyError("no", permanent=True)] * 4
    outbox.enqueue(notice(owner="it"))
    for _ in range(4):
        outbox.deliver_due()
    assert outbox.pending() == 0
    assert len(outbox.dead()) == 4  # two notices, two operator notices; then silence


def test_a_notice_undelivered_after_dead_letter_after_is_dead_lettered(outbox, channel, clock):
    channel.script = [NotifyError("down")] * 1000
    outbox.enqueue(notice(owner="it"))
    for _ in range(200):
        outbox.deliver_due()
        clock.now += 60
        if len(outbox.dead()) == 2:
            break
    dead = outbox.dead()
    assert {d["channel"] for d in dead} == {"it-chat", "it-backup"}
    assert all("not delivered within 1 h" in d["error"] and "down" in d["error"] for d in dead)
    assert clock.now - 1_700_000_000.0 <= 3600 + 3 * 60


def test_a_channel_removed_from_the_config_dead_letters_its_rows(outbox, channel, config, tmp_path, clock):
    outbox.enqueue(notice())
    smaller = parse_config({"owners": {"it": {"department": "IT", "notify": ["it-chat"]}},
                            "notifiers": {"it-chat": {"type": "scripted"}}}, "test.yaml", config.registry)
    reloaded = Outbox(outbox.store, smaller, clock=clock, policy=POLICY)
    assert {a.result for a in reloaded.deliver_due()} == {"dead"}
    assert "no longer configured" in reloaded.dead()[0]["error"]


def test_a_row_being_sent_by_another_process_is_left_alone(outbox, channel, clock):
    outbox.enqueue(notice(owner="it"))
    outbox.store.execute("UPDATE outbox SET next_attempt = ?", (clock.now + POLICY.lease,))  # leased elsewhere
    assert outbox.deliver_due() == []


def test_max_items_bounds_one_pass(outbox, channel):
    for i in range(5):
        outbox.enqueue(notice(owner="it", incident=f"inc{i}"))
    assert len(outbox.deliver_due(max_items=3)) == 3
    assert outbox.pending() == 7


def test_send_now_reports_one_line_per_notice_and_channel(outbox, channel):
    channel.script = [None, NotifyError("HTTP 500")]
    attempts = outbox.send_now([notice()])
    assert [(a.channel, a.result) for a in attempts] == [("fin-mail", "sent"), ("fin-chat", "failed")]
    again = outbox.send_now([notice()])
    assert [(a.channel, a.result) for a in again] == [("fin-mail", "sent"), ("fin-chat", "queued")]


def test_a_notice_survives_the_trip_through_json_unchanged():
    original = notice(phase="update", sequence=3)
    text = json.dumps(notice_to_dict(original), ensure_ascii=False)
    assert notice_from_dict(json.loads(text)) == original


def test_unexpected_errors_in_a_notifier_are_retried_without_their_text(outbox, channel):
    channel.script = [RuntimeError("https://hooks.example/T0/B0/SECRET-in-a-bug")]  # type: ignore[list-item]
    outbox.enqueue(notice(owner="it"))
    [failed, _] = outbox.deliver_due()
    assert failed.result == "failed" and "SECRET" not in failed.error and "RuntimeError" in failed.error


def test_a_notice_held_for_quiet_hours_waits_until_then(outbox, channel, clock):
    assert outbox.enqueue(notice(), not_before=clock.now + 8 * 3600) == 2
    assert outbox.deliver_due() == []
    clock.now += 8 * 3600
    assert [a.result for a in outbox.deliver_due()] == ["sent", "sent"]


# ----------------------------------------------- quiet hours, lanes, hung channels

ROME_NIGHT = 1_764_633_600.0  # 2025-12-02 01:00 in Rome (00:00 UTC): inside quiet hours 22:00-07:00


@pytest.fixture
def night_config(config):
    return parse_config({
        "owners": {"it": {"department": "IT", "notify": ["it-chat"]},
                   "finance": {"department": "Finance", "notify": ["fin-mail"], "timezone": "Europe/Rome",
                               "quiet_hours": "22:00-07:00"}},
        "notifiers": {name: {"type": "scripted"} for name in ("it-chat", "fin-mail")},
    }, "test.yaml", config.registry)


def told(box: Outbox, night_config, item: Notice) -> None:
    """As dispatch does: non-critical notices wait for the end of the owner's quiet hours."""
    from agent.dispatch import quiet_until

    box.enqueue(item, not_before=quiet_until(night_config.owners[item.owner], item.severity, box.clock()))


def test_a_warning_held_for_quiet_hours_does_not_delay_a_critical_notice_of_another_incident(
        tmp_path, night_config, channel):
    clock = Clock(ROME_NIGHT)
    box = Outbox(Store(tmp_path), night_config, clock=clock, policy=POLICY)
    told(box, night_config, notice(incident="scratch", subject="warning: scratch filling"))
    clock.now += 600
    told(box, night_config, replace(notice(incident="ledger", subject="critical: ledger disk full"),
                                    severity=Severity.CRITICAL))
    box.deliver_due()
    assert [x.subject for _, x in channel.sent] == ["critical: ledger disk full"]
    clock.now = ROME_NIGHT + 6 * 3600  # 07:00 in Rome
    box.deliver_due()
    assert [x.subject for _, x in channel.sent] == ["critical: ledger disk full", "warning: scratch filling"]


def test_a_critical_update_releases_its_own_held_opening_first(tmp_path, night_config, channel):
    clock = Clock(ROME_NIGHT)
    box = Outbox(Store(tmp_path), night_config, clock=clock, policy=POLICY)
    told(box, night_config, notice(sequence=0, phase="opening", subject="opening (warning)"))
    clock.now += 600
    told(box, night_config, replace(notice(sequence=1, phase="update", subject="update (critical)"),
                                    severity=Severity.CRITICAL))
    box.deliver_due()
    assert [x.subject for _, x in channel.sent] == ["opening (warning)", "update (critical)"]


def test_a_warning_alone_still_waits_for_the_end_of_quiet_hours(tmp_path, night_config, channel):
    clock = Clock(ROME_NIGHT)
    box = Outbox(Store(tmp_path), night_config, clock=clock, policy=POLICY)
    told(box, night_config, notice(subject="warning"))
    clock.now += 3600
    assert box.deliver_due() == [] and channel.sent == []


def test_a_hung_channel_delays_only_itself_and_threads_stay_flat(tmp_path, config, channel, clock):
    import threading

    release = threading.Event()
    original = channel.notifier_class()

    class Hung(original):  # it-chat never answers until released
        def send(self, item):
            if self.name == "it-chat":
                release.wait(30)
            return super().send(item)

    hung_config = parse_config({"owners": {"it": {"department": "IT", "notify": ["it-chat", "it-backup"]}},
                                "notifiers": {n: {"type": "scripted"} for n in ("it-chat", "it-backup")}},
                               "test.yaml", ScriptedRegistry(config.registry.checks, config.registry.notifiers,
                                                             {"scripted": Hung}))
    box = Outbox(Store(tmp_path), hung_config, clock=clock, policy=POLICY, patience=0.05)
    try:
        threads = []
        for i in range(100):
            box.enqueue(notice(owner="it", incident=f"inc{i}", subject=f"n{i}"))
            assert [a.channel for a in box.deliver_due()] == ["it-backup"]
            threads.append(threading.active_count())
        assert [x.subject for n, x in channel.sent if n == "it-backup"] == [f"n{i}" for i in range(100)]
        assert max(threads) - min(threads) <= 2
    finally:
        release.set()
    box.patience = None
    for _ in range(3):
        box.deliver_due()
    assert [x.subject for n, x in channel.sent if n == "it-chat"] == [f"n{i}" for i in range(100)]


def test_a_claim_of_a_process_that_is_gone_is_taken_back_at_once(outbox, channel, clock):
    outbox.enqueue(notice(owner="it"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{outbox.me.split(':')[0]}:{gone.stdout.strip()}:1"
    outbox.store.execute("UPDATE outbox SET next_attempt = ?, claimed_by = ? WHERE channel = 'it-chat'",
                         (clock.now + POLICY.lease, dead))
    outbox.store.execute("UPDATE outbox SET next_attempt = ?, claimed_by = ? WHERE channel = 'it-backup'",
                         (clock.now + POLICY.lease, process_identity(os.getppid())))
    assert [a.channel for a in outbox.deliver_due()] == ["it-chat"]  # the living claimant's row is left alone
