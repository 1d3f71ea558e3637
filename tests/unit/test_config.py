"""Config validation: every problem is one line naming the file and key path."""

import pytest
import yaml

from agent.api import ConfigError
from agent.config import load_config, parse_config
from agent.registry import default_registry

GOOD = {
    "owners": {"finance": {"department": "Finance", "address_as": "Mr. Santino", "language": "en",
                           "timezone": "Europe/Rome", "notify": ["log"]}},
    "resources": [{"name": "Finance drive", "owner": "finance", "match": {"check": "disk", "mount": "/srv"}}],
    "checks": {"disk": {"interval": "60s", "warning": "85%", "critical": "95%"}},
    "notifiers": {"log": {"type": "file", "path": "/tmp/x.jsonl"}},
}


def problems(doc):
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, "cfg.yaml", default_registry())
    return caught.value.problems


def with_change(path, value):
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def test_good_config_loads_with_its_units():
    config = parse_config(GOOD, "cfg.yaml", default_registry())
    assert config.checks["disk"].warning == pytest.approx(0.85)
    assert config.checks["disk"].interval == 60
    assert "it" in config.owners  # the built-in IT owner hears about everything


def test_sensitivity_and_expert_overrides_shape_a_checks_detector():
    from agent.api import DetectorParams

    doc = with_change(("checks", "cache"), {"sensitivity": "high", "detector": {"cooldown": 20, "seasonal": False}})
    cfg = parse_config(doc, "cfg.yaml", default_registry()).checks["cache"]
    params = cfg.detector_params(DetectorParams(threshold=4.0, cooldown=90, window=50))
    assert params.threshold == pytest.approx(2.8)  # high: 0.7x the check's own base
    assert params.window == 50
    assert params.cooldown == 20 and isinstance(params.cooldown, int)  # the expert's word is last
    assert params.seasonal is False


@pytest.mark.parametrize("path, value, expected", [
    (("checks", "disk", "interval"), "60x", "cfg.yaml: checks.disk.interval: not a duration"),
    (("checks", "disk", "warning"), "120%", "cfg.yaml: checks.disk.warning: a percentage must be between"),
    (("checks", "disk", "colour"), "red", "cfg.yaml: checks.disk.colour: unknown key"),
    (("owners", "finance", "language"), "fr", "cfg.yaml: owners.finance.language:"),
    (("owners", "finance", "tone"), "rude", "cfg.yaml: owners.finance.tone:"),
    (("owners", "finance", "timezone"), "Mars/Olympus", "cfg.yaml: owners.finance.timezone: unknown timezone"),
    (("owners", "finance", "quiet_hours"), "22-7", "cfg.yaml: owners.finance.quiet_hours: not a time range"),
    (("owners", "finance", "notify"), ["nowhere"], "cfg.yaml: owners.finance.notify.0: notifier is not defined"),
    (("resources",), [{"name": "x", "owner": "ghost", "match": {"check": "disk"}}], "cfg.yaml: resources.0.owner: owner is not defined"),
    (("notifiers", "log"), {"type": "pigeon"}, "cfg.yaml: notifiers.log.type: unknown or missing notifier type"),
    (("notifiers", "log"), {"type": "file", "path": "/x", "password": "hunter2"}, "cfg.yaml: notifiers.log.password: secrets are only accepted by reference"),
    (("checks", "nosuch"), {}, "cfg.yaml: checks.nosuch: unknown check"),
    (("checks", "disk", "critical"), "50%", "cfg.yaml: checks.disk.critical: must not be below warning"),
    (("agent",), {"listen": "everywhere"}, "cfg.yaml: agent.listen: not an address"),
    (("checks", "cache"), {"sensitivity": "paranoid"}, "cfg.yaml: checks.cache.sensitivity: Input should be 'low'"),
    (("checks", "cache"), {"detector": {"treshold": 6}}, "cfg.yaml: checks.cache.detector: unknown detector parameter 'treshold'"),
    (("checks", "cache"), {"detector": {"cooldown": 2.5}}, "cfg.yaml: checks.cache.detector: detector parameter 'cooldown' must be a whole number"),
    (("checks", "cache"), {"detector": {"threshold": -1}}, "cfg.yaml: checks.cache.detector: detector parameter 'threshold' must not be negative"),
    (("checks", "disk", "sensitivity"), "high", "cfg.yaml: checks.disk.sensitivity: unknown key"),  # disk forecasts; nothing to tune
])
def test_each_broken_config_names_the_key_path(path, value, expected):
    lines = problems(with_change(path, value))
    assert any(line.startswith(expected) for line in lines), lines
    assert all("\n" not in line for line in lines)


def test_all_problems_are_reported_at_once():
    doc = with_change(("checks", "disk", "interval"), "60x")
    doc["owners"]["finance"]["language"] = "fr"
    assert len(problems(doc)) == 2


def test_secret_values_never_appear_in_errors():
    lines = problems(with_change(("notifiers", "log"), {"type": "file", "path": "/x", "password": "hunter2"}))
    assert not any("hunter2" in line for line in lines)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("owners:\n  it: {department: IT\nchecks: [\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert caught.value.problems[0].startswith(f"{path}: line ")


def test_missing_config_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "nope.yaml"))
    assert caught.value.problems == [f"{tmp_path / 'nope.yaml'}: config file not found"]


def test_search_order_prefers_environment_over_cwd(tmp_path, monkeypatch):
    env_file, cwd_file = tmp_path / "env.yaml", tmp_path / "forewarn.yaml"
    env_file.write_text("checks: {disk: {interval: 5s}}\n")
    cwd_file.write_text("checks: {disk: {interval: 7s}}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOREWARN_CONFIG", str(env_file))
    assert load_config().checks["disk"].interval == 5
    monkeypatch.delenv("FOREWARN_CONFIG")
    assert load_config().checks["disk"].interval == 7


def test_no_config_means_local_disks_for_it_on_the_console(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("FOREWARN_CONFIG", raising=False)
    config = load_config()
    if config.source == "<built-in defaults>":  # /etc/forewarn/config.yaml absent, as in CI
        assert list(config.checks) == ["disk"]
        assert config.owners["it"].notify == ("console",)
        assert config.owners["it"].language == "en"


from hypothesis import HealthCheck, given, settings, strategies as st

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
_documents = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["agent", "owners", "resources", "checks", "notifiers", "disk", "it", "type", "interval", "warning",
         "language", "notify", "match", "check", "name", "owner", "timezone", "path", "password"]), inner,
        max_size=4)), max_leaves=12)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["agent", "owners", "resources", "checks", "notifiers", "extra"]),
                       _documents, max_size=5))
def test_any_document_is_either_valid_or_one_line_problems(doc):
    try:
        parse_config(doc, "fuzz.yaml", default_registry())
    except ConfigError as exc:
        assert exc.problems and all(line.startswith("fuzz.yaml: ") and "\n" not in line for line in exc.problems)


def test_the_business_floor_is_not_a_detector_override():
    """The floor comes from the check's own settings (slow_after); the error lists only real knobs."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"checks": {"cache": {"targets": [], "detector": {"floor": 1}}}}, "cfg.yaml", default_registry())
    [line] = caught.value.problems
    assert "unknown detector parameter 'floor'" in line and "floor," not in line and "horizon" in line
