"""Incident state and the outbox change together, or not at all (issue 14.3)."""

from __future__ import annotations

import pytest

from agent.api import CheckResult, Finding, Notice, Severity
from agent.config import parse_config
from agent.lifecycle import Lifecycle
from agent.registry import default_registry
from agent.store import Store

CONFIG = {"owners": {"it": {"department": "IT", "notify": ["screen"]}}, "notifiers": {"screen": {"type": "console"}},
          "checks": {"disk": {"interval": "60s", "for": "0s"}}}


def full(resource: str = "/srv") -> CheckResult:
    finding = Finding("disk", "disk_full", Severity.CRITICAL, resource, {"mount": resource}, f"{resource} is full",
                      {"mount": resource, "used_ratio": 0.99, "used_bytes": 99e9, "free_bytes": 1e9,
                       "size_bytes": 100e9}, incident="disk_space")
    return CheckResult("disk", findings=(finding,))


class Sink:
    def __init__(self, fail: bool = False):
        self.fail, self.queued = fail, []

    def enqueue(self, notice: Notice, not_before: float | None = None) -> int:
        if self.fail:
            raise RuntimeError("the process died here")
        self.queued.append(notice)
        return 1


@pytest.fixture
def config():
    return parse_config(CONFIG, "test.yaml", default_registry())


def test_a_crash_before_the_notice_is_queued_leaves_the_incident_as_it_was(config, tmp_path):
    store = Store(tmp_path)
    with pytest.raises(RuntimeError):
        Lifecycle(config, store, Sink(fail=True)).handle(full(), 1000.0)
    assert store.query("SELECT COUNT(*) FROM incidents") == [(0,)]  # not 'open' with its opening lost
    sink = Sink()
    Lifecycle(config, store, sink).handle(full(), 1060.0)
    assert [n.phase for n in sink.queued] == ["opening"]  # told as an opening, not as an update


def test_a_crash_before_the_resolution_is_queued_keeps_the_incident_open(config, tmp_path):
    store = Store(tmp_path)
    sink = Sink()
    Lifecycle(config, store, sink).handle(full(), 1000.0)
    with pytest.raises(RuntimeError):
        Lifecycle(config, store, Sink(fail=True)).handle(CheckResult("disk"), 2000.0)
    assert store.query("SELECT state FROM incidents") == [("open",)]
    Lifecycle(config, store, sink).handle(CheckResult("disk"), 2060.0)
    assert [n.phase for n in sink.queued] == ["opening", "resolution"]
