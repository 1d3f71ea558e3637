"""Hostile and odd configs through `agent config validate` (and the commands that read them), as a user runs them.

Every case is one line naming the file and what is wrong, and exit 2 — never a
hang, a traceback or "internal error"; odd values that would switch monitoring
off are refused, and what is valid but probably not meant is said in one line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_check_cli import _set, lines, run_agent, valid_config, validate, write_yaml

BOMB = """\
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def one_line_exit_2(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 2, f"exit {done.returncode}, stderr: {done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr[-2000:]
    problems = lines(done.stderr)
    assert len(problems) == 1, done.stderr[-2000:]
    for word in words:
        assert word in problems[0], problems[0]
    return problems[0]


def validate_text(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    return run_agent("config", "validate", "-c", str(path), cwd=tmp_path, timeout=20)


# ---------------------------------------------------------------- limits of reading


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    assert len(BOMB) < 400
    one_line_exit_2(validate_text(tmp_path, BOMB), "odd.yaml", "aliases")


def test_an_endless_device_is_not_read(tmp_path: Path) -> None:
    done = run_agent("config", "validate", "-c", "/dev/zero", cwd=tmp_path, timeout=20)
    one_line_exit_2(done, "/dev/zero", "not a regular file")


def test_a_fifo_does_not_hang_validation(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    done = run_agent("config", "validate", "-c", str(fifo), cwd=tmp_path, timeout=20)
    one_line_exit_2(done, str(fifo), "not a regular file")


def test_a_file_over_a_mebibyte_is_refused(tmp_path: Path) -> None:
    one_line_exit_2(validate_text(tmp_path, "# padding\n" * 120_000), "larger than 1 MiB")


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    one_line_exit_2(validate_text(tmp_path, "agent: " + "[" * 600 + "]" * 600 + "\n"), "nested deeper")


@pytest.mark.parametrize("change, key", [
    (("checks.disk.mount_timeout", int("9" * 400)), "checks.disk.mount_timeout"),
    (("checks.disk.interval", 10**400), "checks.disk.interval"),
    (("checks.cache", {"probes": float("inf")}), "checks.cache.probes"),
    (("checks.cache", {"probes": 10**400}), "checks.cache.probes"),
    (("checks.cache", {"detector": {"cooldown": float("inf")}}), "checks.cache.detector.cooldown"),
    (("agent.state_dir", "/var/lib/fore\0warn"), "agent.state_dir"),
])
def test_numbers_and_bytes_no_setting_means_are_one_line(tmp_path: Path, change: tuple[str, Any], key: str) -> None:
    path = write_yaml(tmp_path / "odd.yaml", _set(valid_config(tmp_path), *change))
    one_line_exit_2(validate(tmp_path, path), str(path), f"{key}:")


# ---------------------------------------------------------------- values that switch monitoring off


@pytest.mark.parametrize("key, value", [
    ("interval", float("nan")), ("interval", float("inf")), ("interval", "0s"), ("interval", "200ms"),
    ("for", float("nan")), ("timeout", float("nan")), ("timeout", "0s"), ("warning", 0.85),
])
def test_odd_values_that_would_switch_monitoring_off_are_refused(tmp_path: Path, key: str, value: Any) -> None:
    path = write_yaml(tmp_path / "odd.yaml", _set(valid_config(tmp_path), f"checks.disk.{key}", value))
    one_line_exit_2(validate(tmp_path, path), f"checks.disk.{key}:")


def test_the_shortest_documented_settings_are_still_accepted(tmp_path: Path) -> None:
    data = _set(_set(valid_config(tmp_path), "checks.disk.interval", "1s"), "checks.disk.for", "0s")
    done = validate(tmp_path, write_yaml(tmp_path / "short.yaml", data))
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_an_empty_config_file_is_refused(tmp_path: Path) -> None:
    one_line_exit_2(validate_text(tmp_path, "# nothing yet\n"), "odd.yaml", "empty")


def test_a_misspelled_match_label_is_refused(tmp_path: Path) -> None:
    data = _set(valid_config(tmp_path), "resources.0.match", {"check": "disk", "mnt": "/"})
    one_line_exit_2(validate(tmp_path, write_yaml(tmp_path / "odd.yaml", data)), "resources.0.match.mnt:", "mount")


def test_a_match_naming_no_check_is_refused(tmp_path: Path) -> None:
    data = _set(valid_config(tmp_path), "resources.0.match", {"check": "dsik", "mount": "/"})
    one_line_exit_2(validate(tmp_path, write_yaml(tmp_path / "odd.yaml", data)), "resources.0.match.check:")


@pytest.mark.parametrize("change, words", [
    (("owners.finance.notify", []), ("owners.finance.notify", "go nowhere")),
    (("checks", {"cache": {"targets": []}}), ("checks:", "disks are not watched")),
])
def test_valid_but_surprising_configs_get_one_warning_line(tmp_path: Path, change: tuple[str, Any],
                                                           words: tuple[str, ...]) -> None:
    done = validate(tmp_path, write_yaml(tmp_path / "odd.yaml", _set(valid_config(tmp_path), *change)))
    assert done.returncode == 0, done.stderr
    warnings = lines(done.stderr)
    assert len(warnings) == 1 and all(word in warnings[0] for word in words), done.stderr


def test_disk_switched_off_on_purpose_gets_no_warning(tmp_path: Path) -> None:
    data = _set(valid_config(tmp_path), "checks.disk", {"enabled": False})
    done = validate(tmp_path, write_yaml(tmp_path / "off.yaml", data))
    assert done.returncode == 0 and done.stderr == "", done.stderr


# ---------------------------------------------------------------- user errors, not internal ones


def test_a_silence_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", valid_config(tmp_path))
    done = run_agent("silence", "add", "mnt=/srv", "-c", str(path), cwd=tmp_path)
    one_line_exit_2(done, "'mnt'", "mount")
    done = run_agent("silence", "add", "mount=/srv", "-c", str(path), cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("silence "), done.stderr


def test_run_with_a_nonsense_listen_address_is_one_line(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", valid_config(tmp_path))
    one_line_exit_2(run_agent("run", "-c", str(path), "--listen", "nonsense", cwd=tmp_path, timeout=20),
                    "--listen", "nonsense")


def test_init_into_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    one_line_exit_2(run_agent("init", str(tmp_path / "missing" / "forewarn.yaml"), cwd=tmp_path),
                    "missing/forewarn.yaml")


def test_suggest_lifecycle_without_credentials_is_one_line(tmp_path: Path) -> None:
    data = valid_config(tmp_path)
    data["checks"]["cloud_storage"] = {"source": "listing", "endpoint_url": "http://127.0.0.1:9"}
    path = write_yaml(tmp_path / "c.yaml", data)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    done = run_agent("suggest", "lifecycle", "reports", "-c", str(path), cwd=tmp_path, env=env)
    one_line_exit_2(done, "reports", "no credentials")
