"""Cache target config: clear one-line errors, and passwords only by reference, never echoed."""

import pytest

from agent.api import CheckError, ConfigError
from agent.config import parse_config
from agent.registry import default_registry
from checks.cache.config import CacheConfig, Target, endpoints


def problems(targets, **settings):
    with pytest.raises(ConfigError) as caught:
        parse_config({"checks": {"cache": {"targets": targets, **settings}}}, "cfg.yaml", default_registry())
    return caught.value.problems


def test_a_password_in_the_url_is_refused_without_echoing_it():
    lines = problems([{"name": "pacs", "url": "redis://:hunter2@10.1.2.3:6379/0"}])
    assert any("cfg.yaml: checks.cache.targets.0.url: a password in the URL is not accepted" in line for line in lines)
    assert all("hunter2" not in line for line in lines)


def test_an_inline_password_key_is_refused():
    lines = problems([{"name": "pacs", "url": "redis://10.1.2.3", "password": "hunter2"}])
    assert any("secrets are only accepted by reference" in line for line in lines)
    assert all("hunter2" not in line for line in lines)


@pytest.mark.parametrize("url, expected", [
    ("http://10.1.2.3", "unsupported scheme"),
    ("tcp://10.1.2.3", "tcp:// URLs need a port"),
    ("redis://10.1.2.3:99999", "the port must be"),
    ("sentinel://10.0.0.1:26379", "a sentinel URL names the service"),
])
def test_bad_urls_name_the_problem(url, expected):
    lines = problems([{"name": "x", "url": url}])
    assert any(expected in line for line in lines), lines


def test_duplicate_names_and_a_window_that_cannot_fit_are_reported():
    assert any("target names must be unique" in line
               for line in problems([{"name": "a", "url": "tcp://h:1"}, {"name": "a", "url": "tcp://h:2"}]))
    assert any("timeout must leave room" in line
               for line in problems([{"name": "a", "url": "tcp://h:1"}], window="20s", timeout="25s"))


def test_targets_read_their_parts():
    target = Target(name="pacs", url="sentinel://10.0.0.1:26379,10.0.0.2/mymaster/2")
    assert target.kind == "redis" and target.service() == "mymaster" and target.db() == 2
    assert endpoints(target.url)[1].port == 26379
    assert Target(name="s", url="memcached://[::1]").kind == "memcached"
    assert endpoints("memcached://[::1]")[0].port == 11211


def test_password_is_read_from_the_environment_at_the_last_moment(monkeypatch, tmp_path):
    target = Target(name="pacs", url="redis://h", password_env="PACS_PW")
    monkeypatch.setenv("PACS_PW", "s3cret")
    assert target.password() == "s3cret" and "s3cret" not in repr(target)
    monkeypatch.delenv("PACS_PW")
    with pytest.raises(CheckError, match="PACS_PW is not set"):
        target.password()
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert Target(name="p", url="redis://h", password_file=secret).password() == "from-file"


def test_first_run_is_short_and_later_runs_spread_over_the_interval():
    config = CacheConfig(targets=[], interval="30s", timeout="30s")
    assert config.cycle_seconds(first=True) == 3.0
    assert config.cycle_seconds(first=False) == 15.0
    assert CacheConfig(interval="600s", timeout="30s").cycle_seconds(first=False) == 15.0
