"""The files in contrib/ as an operator would use them, checked by the real tools.

promtool validates and unit-tests the alerting rules, amtool validates the
Alertmanager example and shows where its routes send each department's alerts,
and the systemd unit's promise not to restart a broken setup is checked
against the exit codes of the agent itself (no systemd needed).
"""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.config import load_config
from agent.metrics import PREFIX, Metrics
from tests.integration.servers import require_binary

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib"
RULES = CONTRIB / "prometheus" / "rules.yml"
RULES_TEST = CONTRIB / "prometheus" / "rules_test.yml"
ALERTMANAGER = CONTRIB / "alertmanager" / "alertmanager.yml"
UNIT = CONTRIB / "systemd" / "forewarn.service"
TOOL_TIMEOUT_S = 60


def tool(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"$ {shlex.join(result.args)}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def amtool() -> str:
    return require_binary("amtool")


# Prometheus rules ----------------------------------------------------------


def test_promtool_accepts_the_alerting_rules(promtool: str) -> None:
    result = tool(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, explain(result)
    assert "SUCCESS: 8 rules found" in result.stdout, explain(result)


def test_alerting_rules_pass_their_promtool_unit_tests(promtool: str) -> None:
    """Each alert fires on its trouble (agent down, forecast under 12 h, a check failing) and not on the normal case."""
    result = tool(promtool, "test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert result.returncode == 0, explain(result)
    assert "SUCCESS" in result.stdout, explain(result)


def test_rule_tests_cover_both_sides_of_the_main_alerts() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    firing, quiet = set(), set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    for alert in ("ForewarnAgentDown", "ForewarnDiskPredictedFull", "ForewarnCheckFailing", "ForewarnDatabaseDown",
                  "ForewarnDatabaseReportSlow"):
        assert alert in firing, f"no case where {alert} fires"
        assert alert in quiet, f"no case where {alert} stays quiet"


def test_every_alert_carries_severity_and_keeps_the_department() -> None:
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]
        assert not re.search(r"\b(sum|avg|max|min|count)\b|\bwithout\b", rule["expr"]), \
            f"{rule['alert']} aggregates and would drop the department label"


def test_rules_only_use_metrics_the_agent_exports(tmp_path: Path) -> None:
    """A renamed metric would silently disable an alert: the names must match what /metrics serves."""
    config = load_config(None)
    exported = set()
    for family in Metrics(config).registry.collect():
        exported |= {family.name + "_total"} if family.type == "counter" else {family.name}
    for check in config.registry.checks:  # every installed check, configured by default or not
        exported |= {PREFIX + metric.name for metric in config.registry.check(check).metrics}
    used = set(re.findall(r"\bforewarn_[a-z0-9_]+", RULES.read_text()))
    assert used, "the rules use no forewarn_ metric at all"
    assert used <= exported, f"not exported by the agent: {sorted(used - exported)}"


# Alertmanager --------------------------------------------------------------


def test_amtool_accepts_the_alertmanager_example(amtool: str) -> None:
    result = tool(amtool, "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, explain(result)
    assert "SUCCESS" in result.stdout, explain(result)


@pytest.mark.parametrize(("labels", "receiver"), [
    ({"alertname": "ForewarnDiskAlmostFull", "department": "Finance", "severity": "critical"}, "finance-critical"),
    ({"alertname": "ForewarnDiskPredictedFull", "department": "放射科", "severity": "critical"}, "radiology"),
    ({"alertname": "ForewarnAgentDown", "department": "放射科", "severity": "warning"}, "it-oncall"),
    ({"alertname": "ForewarnDiskAlmostFull", "department": "Sales", "severity": "critical"}, "it-oncall"),
])
def test_alertmanager_example_routes_by_department(amtool: str, labels: dict[str, str], receiver: str) -> None:
    result = tool(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}",
                  *(f"{key}={value}" for key, value in labels.items()))
    assert result.returncode == 0, explain(result)
    assert result.stdout.split() == [receiver], explain(result)


# systemd -------------------------------------------------------------------


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


@pytest.mark.parametrize("problem", ["bad config", "unusable state directory"])
def test_systemd_does_not_restart_what_a_restart_cannot_fix(tmp_path: Path, problem: str) -> None:
    """The unit's ExecStart, run on a broken setup, exits with the status its RestartPreventExitStatus names."""
    service = unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "agent" and argv[1] == "run", service["ExecStart"]
    config = tmp_path / "config.yaml"
    if problem == "bad config":
        config.write_text("agent: {listen: nowhere}\n")
    else:
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        config.write_text(f"agent: {{state_dir: {blocker / 'state'}, listen: '127.0.0.1:0'}}\n")
    args = [str(config) if arg == "/etc/forewarn/config.yaml" else arg for arg in argv[1:]]
    assert str(config) in args, "ExecStart no longer names /etc/forewarn/config.yaml"
    result = subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True,
                            timeout=TOOL_TIMEOUT_S)
    assert service["Restart"] == "on-failure"
    assert str(result.returncode) in service["RestartPreventExitStatus"].split(), explain(result)
    assert "Traceback" not in result.stderr, explain(result)


def test_systemd_unit_waits_for_readiness_and_watches_the_agent() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) >= 2  # the agent pings every WatchdogSec/2, at most 5 times a second
    assert service["DynamicUser"] == "yes" or service.get("User", "root") != "root"
    assert service["StateDirectory"] == "forewarn"
    assert "$MAINPID" in service["ExecReload"] and "-HUP" in service["ExecReload"]
