"""Incident opening policy: warm-up, persistence, cooldown, one notice per episode."""

from __future__ import annotations

from agent.detect.policy import AlertPolicy


def opened(policy: AlertPolicy, flags: list[bool]) -> list[int]:
    return [i for i, flag in enumerate(flags) if policy.step(flag)]


def test_nothing_opens_during_warmup():
    assert opened(AlertPolicy(warmup=10, cooldown=0, persistence=1), [True] * 10) == []


def test_a_long_episode_opens_one_notice():
    flags = [False] * 5 + [True] * 50
    assert opened(AlertPolicy(warmup=0, cooldown=0, persistence=1), flags) == [5]


def test_persistence_waits_for_consecutive_anomalous_points():
    flags = [True, False, True, True, False, True, True, True, True]
    assert opened(AlertPolicy(warmup=0, cooldown=0, persistence=3), flags) == [7]


def test_cooldown_silences_a_second_episode_that_comes_too_soon():
    flags = [True, False, True, False] + [False] * 10 + [True]
    assert opened(AlertPolicy(warmup=0, cooldown=5, persistence=1), flags) == [0, 14]


def test_policy_state_round_trip():
    flags = [True, False, True] * 20
    a = AlertPolicy(warmup=3, cooldown=4, persistence=1)
    head = opened(a, flags[:31])
    b = AlertPolicy(warmup=3, cooldown=4, persistence=1)
    b.restore(a.to_state())
    assert opened(a, flags[31:]) == opened(b, flags[31:])
    assert head
