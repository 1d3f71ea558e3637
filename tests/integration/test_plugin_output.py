"""`agent check` read as Nagios/Icinga read a plugin: the first stdout line, its perfdata, the exit code.

The grammar is the monitoring-plugins guidelines' (Plugin Output, Performance
data): `STATUS - text | 'label'=value[UOM];[warn];[crit];[min];[max] ...`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.test_check_cli import lines, run_agent, write_yaml

STATUS_WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
RANGE = r"@?(-?[0-9.]+|~)?:?(-?[0-9.]+)?"
PERF = re.compile(rf"'((?:[^'=]|'')+)'=(-?[0-9.]+)(%|s|ms|us|B|KB|MB|TB|c)?"
                  rf"(?:;({RANGE})?(?:;({RANGE})?(?:;(-?[0-9.]+)?(?:;(-?[0-9.]+)?)?)?)?)?")


def parse(first: str) -> tuple[str, str, dict[str, tuple[float, str, str, str]]]:
    """(status word, text, {label: (value, uom, warn, crit)}); fails on anything off-grammar."""
    match = re.fullmatch(r"(OK|WARNING|CRITICAL|UNKNOWN) - ([^|]+?)(?: \| (.*))?", first)
    assert match, f"not `STATUS - text | perfdata`: {first!r}"
    word, text, perf = match.groups()
    values, rest = {}, perf or ""
    while rest:
        found = PERF.match(rest)
        assert found and rest[found.end():found.end() + 1] in ("", " "), f"perfdata off the plugin grammar: {rest!r}"
        rest = rest[found.end() + 1:]
        label = found.group(1).replace("''", "'")
        values[label] = (float(found.group(2)), found.group(3) or "", found.group(4) or "", found.group(7) or "")
    return word, text, values


def disk_config(tmp_path: Path, warning: str, critical: str) -> Path:
    return write_yaml(tmp_path / "forewarn.yaml", {
        "agent": {"state_dir": str(tmp_path / "state")},
        "checks": {"disk": {"warning": warning, "critical": critical, "mounts": ["/dev/shm"]}}})


@pytest.mark.parametrize("warning, critical", [("1%", "99%"), ("99%", "100%")], ids=["warning", "normal"])
def test_first_line_is_status_summary_and_perfdata_for_every_mount(tmp_path: Path, warning: str,
                                                                   critical: str) -> None:
    config = disk_config(tmp_path, warning, critical)
    done = run_agent("check", "-c", str(config), cwd=tmp_path)
    assert "Traceback" not in done.stderr, done.stderr
    word, text, perf = parse(lines(done.stdout)[0])
    assert word == STATUS_WORDS[done.returncode], f"{word} but exit {done.returncode}"
    assert lines(done.stdout)[1].split() == ["CHECK", "RESOURCE", "STATUS", "SUMMARY"], "the table follows"
    document = json.loads(run_agent("check", "-c", str(config), "--json", cwd=tmp_path).stdout)
    mounts = {r["resource"]: r["status"] for r in document["results"] if r["status"] != "UNKNOWN"}
    assert "/" in mounts and "/dev/shm" in mounts, mounts
    for mount in mounts:
        used, uom, warn, crit = perf[mount]
        assert uom == "%" and 0 <= used <= 100 and (warn, crit) == (warning[:-1], critical[:-1]), perf[mount]
        free, uom, _, _ = perf[f"{mount} free"]
        assert uom == "B" and free >= 0 and free == int(free)
    if word == "WARNING":
        assert "/ " in text and "% used" in text, text  # names the mount and its use
    else:
        assert word == "OK" and re.fullmatch(r"\d+ resources? OK", text), text


def test_config_error_is_unknown_with_a_status_line(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "forewarn.yaml", {"checks": {"disk": {"warning": "120%"}}})
    done = run_agent("check", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    word, text, perf = parse(lines(done.stdout)[0])
    assert word == "UNKNOWN" and "checks.disk.warning" in text and not perf
    validate = run_agent("config", "validate", "-c", str(config), cwd=tmp_path)
    assert validate.returncode == 2 and validate.stdout == "", "config validate keeps exit 2"


def test_usage_error_is_unknown(tmp_path: Path) -> None:
    done = run_agent("check", "--no-such-option", cwd=tmp_path)
    assert done.returncode == 3 and parse(lines(done.stdout)[0])[0] == "UNKNOWN"
