"""Alertmanager delivery against a real Alertmanager routing by department: fleet de-duplication and resolution."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from agent.api import Finding, Notice, Severity
from agent.composer import Composer, address
from agent.config import parse_config
from agent.outbox import Outbox, RetryPolicy
from agent.registry import default_registry
from agent.store import Store
from tests.integration.servers import Alertmanager, free_port

ROUTED = """
route:
  receiver: everyone-else
  group_by: [alertname, department]
  routes:
    - matchers: ['department="Finance"']
      receiver: finance-desk
receivers:
  - name: everyone-else
  - name: finance-desk
"""
FAST = RetryPolicy(initial=0.2, max_delay=1.0)


@pytest.fixture
def alertmanager(start_server) -> Alertmanager:
    return start_server(Alertmanager(ROUTED))


def agent_config(tmp_path, name: str, urls: list[str]):
    return parse_config({
        "agent": {"state_dir": str(tmp_path / name), "hostname": "fin-fs01"},
        "owners": {"it": {"department": "IT", "notify": ["fleet"]},
                   "finance": {"department": "Finance", "address_as": "Mr. Santino", "notify": ["fleet"]}},
        "resources": [{"name": "Finance shared drive", "owner": "finance",
                       "impact": "month-end closing reports can't be saved",
                       "match": {"check": "disk", "mount": "/srv/finance"}}],
        "notifiers": {"fleet": {"type": "alertmanager", "urls": urls, "instance": "fin-fs01", "timeout": "3s"}},
    }, "test.yaml", default_registry())


def finance_notice(config, phase: str = "opening", sequence: int = 0, now: float | None = None) -> Notice:
    finding = Finding("disk", "disk_nearly_full", Severity.WARNING, "/srv/finance", {"mount": "/srv/finance"},
                      "/srv/finance is 91% full", facts={"mount": "/srv/finance", "used_ratio": 0.91,
                                                         "free_bytes": 9e10}, incident="disk_space")
    opened = datetime.now(timezone.utc).timestamp() - 60
    return Composer(config).compose("finance", address([finding], config)["finance"], now or opened, phase=phase,
                                    sequence=sequence)


def finance_alerts(alertmanager: Alertmanager) -> list[dict]:
    return [a for a in alertmanager.alerts() if a["labels"].get("owner") == "finance"]


def test_two_agents_posting_one_incident_make_one_alert_routed_by_department(alertmanager, tmp_path):
    agents = []
    for name in ("agent-a", "agent-b"):
        config = agent_config(tmp_path, name, [alertmanager.url, f"http://127.0.0.1:{free_port()}"])  # one member down
        store = Store(tmp_path / name)
        agents.append((Outbox(store, config, policy=FAST), config, store))
    try:
        for outbox, config, _ in agents:
            opening = finance_notice(config)
            assert [a.result for a in outbox.send_now([opening])] == ["sent"]
        [alert] = finance_alerts(alertmanager)
        assert alert["labels"] == {"alertname": "ForewarnDiskNearlyFull", "department": "Finance", "owner": "finance",
                                   "severity": "warning", "check": "disk", "resource": "/srv/finance",
                                   "instance": "fin-fs01"}
        assert alert["annotations"]["summary"] == opening.subject and "Finance shared drive" in opening.subject
        assert "Dear Mr. Santino" in alert["annotations"]["description"]
        assert "Technical details" in alert["annotations"]["appendix"]
        assert [r["name"] for r in alert["receivers"]] == ["finance-desk"]
        assert alert["status"]["state"] == "active"

        outbox, config, _ = agents[0]
        resolved = finance_notice(config, phase="resolution", sequence=1, now=datetime.now(timezone.utc).timestamp())
        assert [a.result for a in outbox.send_now([resolved])] == ["sent"]
        still = [a for a in finance_alerts(alertmanager) if a["status"]["state"] == "active"
                 and datetime.fromisoformat(a["endsAt"].replace("Z", "+00:00")) > datetime.now(timezone.utc)]
        assert still == []
    finally:
        for _, _, store in agents:
            store.close()


def test_an_alertmanager_nobody_can_reach_is_a_temporary_failure(tmp_path):
    config = agent_config(tmp_path, "agent-c", [f"http://127.0.0.1:{free_port()}"])
    store = Store(tmp_path / "agent-c")
    try:
        outbox = Outbox(store, config, policy=FAST)
        [attempt] = outbox.send_now([finance_notice(config)])
        assert attempt.result == "failed" and "could not be reached" in attempt.error
        assert outbox.pending() == 1 and outbox.dead() == []
    finally:
        store.close()


def lifecycle_to(alertmanager, tmp_path):
    """The daemon's path from findings to Alertmanager: incidents, dispatcher, outbox on one state file."""
    from agent.dispatch import Dispatcher
    from agent.incidents import Incidents

    config = agent_config(tmp_path, "agent", [alertmanager.url])
    store = Store(tmp_path / "agent")
    outbox = Outbox(store, config, policy=FAST)
    incidents = Incidents(store)
    return config, store, outbox, incidents, Dispatcher(config, store, incidents, outbox)


def test_the_daemon_keeps_an_open_incident_alive_and_stops_once_it_is_resolved(alertmanager, tmp_path):
    import time

    from agent.daemon import Daemon
    from agent.incidents import Policy

    config, store, outbox, incidents, dispatcher = lifecycle_to(alertmanager, tmp_path)
    finding = Finding("disk", "disk_nearly_full", Severity.WARNING, "/srv/finance", {"mount": "/srv/finance"},
                      "/srv/finance is 91% full", facts={"mount": "/srv/finance", "used_ratio": 0.91,
                                                         "free_bytes": 9e10}, incident="disk_space")
    now = time.time()
    dispatcher.dispatch(incidents.evaluate("disk", [finding], now, Policy(0, 0, 3600)), now)
    outbox.deliver_due()
    [first] = finance_alerts(alertmanager)

    daemon = Daemon(None)
    daemon.config = config
    time.sleep(1.1)
    daemon._refresh(outbox, {}, time.time())
    [refreshed] = finance_alerts(alertmanager)
    assert refreshed["endsAt"] > first["endsAt"]  # re-posted: Alertmanager keeps it active

    dispatcher.dispatch(incidents.evaluate("disk", [], now + 1, Policy(0, 0, 3600)), now + 1)
    outbox.deliver_due()
    assert finance_alerts(alertmanager) == []  # resolved: no longer listed as active
    time.sleep(1.1)
    daemon._refresh(outbox, {}, time.time())
    assert finance_alerts(alertmanager) == []  # a resolved incident is not brought back
    store.close()


def test_a_warning_that_turns_critical_leaves_only_the_critical_alert_firing(alertmanager, tmp_path):
    """Issue 12.11: the warning alert used to stay active next to the critical one until it expired."""
    import time

    from agent.incidents import Policy

    _, store, outbox, incidents, dispatcher = lifecycle_to(alertmanager, tmp_path)
    facts = {"mount": "/srv/finance", "used_ratio": 0.91, "free_bytes": 9e10}
    warning = Finding("disk", "disk_nearly_full", Severity.WARNING, "/srv/finance", {"mount": "/srv/finance"},
                      "/srv/finance is 91% full", facts=facts, incident="disk_space")
    critical = Finding("disk", "disk_full", Severity.CRITICAL, "/srv/finance", {"mount": "/srv/finance"},
                       "/srv/finance is 97% full", facts={**facts, "used_ratio": 0.97, "free_bytes": 3e10},
                       incident="disk_space")
    now = time.time()
    try:
        dispatcher.dispatch(incidents.evaluate("disk", [warning], now, Policy(0, 0, 3600)), now)
        outbox.deliver_due()
        assert [a["labels"]["severity"] for a in finance_alerts(alertmanager)] == ["warning"]
        dispatcher.dispatch(incidents.evaluate("disk", [critical], now + 1, Policy(0, 0, 3600)), now + 1)
        outbox.deliver_due(now + 1)
        assert [a["labels"]["severity"] for a in finance_alerts(alertmanager)] == ["critical"]
    finally:
        store.close()
