"""FOREWARN_NOW starts the agent's clock at another moment; a bad value is one line naming the variable."""

import time

import pytest

from agent.clock import parse_moment, wall_clock
from agent.errors import ConfigError


def test_without_the_variable_the_clock_is_the_system_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOREWARN_NOW", raising=False)
    assert wall_clock() is time.time


@pytest.mark.parametrize("text", ["1794909600", "2026-11-17T10:00:00Z", "2026-11-17T11:00:00+01:00"])
def test_the_clock_starts_at_the_given_moment_and_runs_on(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("FOREWARN_NOW", text)
    clock = wall_clock()
    first = clock()
    assert 1794909600 <= first < 1794909600 + 5
    assert clock() >= first


@pytest.mark.parametrize("text, why", [("next tuesday", "not a moment"), ("2026-11-17T10:00:00", "give the time zone"),
                                       ("nan", "not a moment"), ("-5", "not a moment")])
def test_a_bad_moment_is_one_line_naming_the_variable(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_moment(text)
    [line] = caught.value.problems
    assert line.startswith("FOREWARN_NOW: ") and why in line and repr(text) in line
