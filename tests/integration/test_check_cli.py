"""`agent check`, `agent config validate` and `agent init`, driven from outside as a new user would.

Every test runs the installed `agent` command as a subprocess, with its own
state directory, and reads what it prints or writes.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.api import format_bytes
from tests.integration.servers import tmpfs

TECHNICAL_WORDS = ("p99", "inode", "errno", "threshold", "statvfs", "ext4", "/dev/")
CJK = re.compile(r"[\u4e00-\u9fff]")


def agent_command() -> list[str]:
    beside = Path(sys.executable).with_name("agent")
    found = str(beside) if beside.exists() else shutil.which("agent")
    assert found, "the `agent` command is not installed (pip install -e .)"
    return [found]


def run_agent(*args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "FOREWARN_CONFIG"}
    return subprocess.run(agent_command() + list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def two_owner_config(tmp_path: Path, notices_file: Path | None = None) -> dict[str, Any]:
    """Finance (English, formal) and radiology (Chinese) both own `/`; 1%/2% make `/` critical anywhere."""
    notify = ["audit"] if notices_file else []
    config: dict[str, Any] = {
        "agent": {"state_dir": str(tmp_path / "state"), "default_owner": "it"},
        "owners": {
            "it": {"department": "IT", "contact": "On-call engineer", "address_as": "Team", "tone": "friendly",
                   "language": "en", "notify": notify + (["screen"] if notices_file else [])},
            "finance": {"department": "Finance", "contact": "Marco Santino", "address_as": "Mr. Santino",
                        "tone": "formal", "language": "en", "timezone": "Europe/Rome",
                        "quiet_hours": "22:00-07:00", "notify": notify},
            "radiology": {"department": "放射科", "contact": "王磊", "address_as": "王主任", "tone": "formal",
                          "language": "zh-CN", "timezone": "Asia/Shanghai", "notify": notify},
        },
        "resources": [
            {"name": "Finance shared drive", "owner": "finance", "impact": "month-end closing reports can't be saved",
             "match": {"check": "disk", "mount": "/"}},
            {"name": "影像归档盘", "owner": "radiology", "impact": "新的影像无法保存",
             "match": {"check": "disk", "mount": "/"}},
        ],
        "checks": {"disk": {"interval": "1s", "for": "0s", "warning": "1%", "critical": "2%"}},
        "notifiers": {},
    }
    if notices_file:
        config["notifiers"] = {"audit": {"type": "file", "path": str(notices_file)},
                               "screen": {"type": "console"}}
    return config


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def check_json(tmp_path: Path, config: dict[str, Any], *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    path = write_yaml(tmp_path / "forewarn.yaml", config)
    done = run_agent("check", "-c", str(path), "--json", *extra, cwd=tmp_path)
    assert "Traceback" not in done.stderr, done.stderr
    try:
        document = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"--json stdout is not one JSON object (exit {done.returncode}):\n{done.stdout[:2000]}\n"
                    f"stderr:\n{done.stderr[-2000:]}")
    return done, document


# ---------------------------------------------------------------- agent check


def test_full_disk_is_critical_and_each_owner_gets_one_notice_in_their_language(tmp_path: Path) -> None:
    done, doc = check_json(tmp_path, two_owner_config(tmp_path))

    assert done.returncode == 2, f"exit {done.returncode}, expected 2 (CRITICAL); stderr: {done.stderr}"
    assert doc["status"] == "CRITICAL"
    assert "/" in [r["resource"] for r in doc["results"]]
    kinds = {(f["kind"], f["severity"], f["resource"]) for f in doc["findings"]}
    assert ("disk_full", "critical", "/") in kinds, kinds

    owners = [n["owner"] for n in doc["notices"]]
    assert sorted(owners) == ["finance", "it", "radiology"], f"notices went to {owners}"
    by_owner = {n["owner"]: n for n in doc["notices"]}

    english = by_owner["finance"]
    assert english["locale"] == "en"
    assert english["body"].startswith("Dear Mr. Santino"), english["body"]
    assert "Finance shared drive" in english["body"], english["body"]

    chinese = by_owner["radiology"]
    assert chinese["locale"] == "zh-CN"
    assert "王主任" in chinese["body"], chinese["body"]
    assert "影像归档盘" in chinese["body"], chinese["body"]
    assert len(CJK.findall(chinese["body"])) > 20, f"the zh-CN notice is not written in Chinese:\n{chinese['body']}"
    assert len(CJK.findall(chinese["subject"])) > 2, chinese["subject"]

    root = next(f for f in doc["findings"] if f["resource"] == "/")
    device, fstype = root["labels"]["device"], root["labels"]["fstype"]
    for notice in doc["notices"]:
        text = notice["subject"] + "\n" + notice["body"]
        leaked = [w for w in TECHNICAL_WORDS + (device, fstype) if w.lower() in text.lower()]
        assert not leaked, f"technical details {leaked} in the notice for {notice['owner']}:\n{text}"
        assert device in notice["appendix"] and fstype in notice["appendix"], notice["appendix"]
        assert "disk_full" in notice["appendix"], notice["appendix"]
        assert notice["html"].lstrip().lower().startswith("<!doctype html"), notice["html"][:200]


def test_json_output_is_only_json_even_with_debug_logs(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "forewarn.yaml", two_owner_config(tmp_path))
    done = run_agent("--debug", "check", "-c", str(path), "--json", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    document = json.loads(done.stdout)  # raises if anything but the one object is on stdout
    assert set(document) >= {"status", "results", "findings", "notices"}, sorted(document)
    assert done.stdout.strip().startswith("{") and done.stdout.strip().endswith("}")


def test_check_without_any_config_watches_the_root_disk(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "FOREWARN_CONFIG"}
    env.update(HOME=str(home), XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(home / ".config"))
    # as root the state goes to /var/lib/forewarn (no config, so no way to move it); otherwise to XDG_STATE_HOME
    done = run_agent("check", "--json", cwd=cwd, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1, 2), f"exit {done.returncode}: {done.stderr}"
    document = json.loads(done.stdout)
    assert "/" in [r["resource"] for r in document["results"]], document["results"]
    assert document["exit_code"] == done.returncode
    if os.geteuid() != 0:
        assert (tmp_path / "state" / "forewarn" / "forewarn.db").exists()


def test_unknown_check_name_is_one_line_and_unknown_for_nagios(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "forewarn.yaml", two_owner_config(tmp_path))
    done = run_agent("check", "nosuch", "-c", str(path), cwd=tmp_path)
    assert done.returncode == 3, f"exit {done.returncode}: bad usage of a plugin is UNKNOWN (3), never CRITICAL (2)"
    assert "Traceback" not in done.stderr
    assert lines(done.stdout) == [lines(done.stdout)[0]] and done.stdout.startswith("UNKNOWN - "), done.stdout
    assert "nosuch" in done.stdout
    assert len(lines(done.stderr)) == 1 and "nosuch" in done.stderr, \
        f"expected one line naming 'nosuch' on stderr, got:\n{done.stderr}"


def test_notify_with_a_file_channel_appends_one_json_line_per_notice(tmp_path: Path) -> None:
    notices_file = tmp_path / "out" / "notices.jsonl"
    done, doc = check_json(tmp_path, two_owner_config(tmp_path, notices_file), "--notify")
    assert done.returncode == 2, done.stderr

    records = [json.loads(line) for line in notices_file.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["owner"] for r in records) == ["finance", "it", "radiology"], records
    for record in records:
        missing = {"owner", "subject", "body", "appendix", "incident_id", "thread_id"} - set(record)
        assert not missing, f"a notice line lacks {missing}: {record}"
        assert record["subject"] and record["body"] and record["appendix"] and record["incident_id"]
    by_owner = {r["owner"]: r for r in records}
    assert by_owner["finance"]["body"].startswith("Dear Mr. Santino")
    assert "王主任" in by_owner["radiology"]["body"]
    for notice in doc["notices"]:  # the file holds what --json says was sent
        assert by_owner[notice["owner"]]["body"] == notice["body"]
        assert by_owner[notice["owner"]]["incident_id"] == notice["incident_id"]
    # the console channel of IT wrote its notice, but not into the JSON on stdout
    assert "Subject:" in done.stderr, done.stderr[-2000:]


def test_corrupt_state_database_is_one_line_naming_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "forewarn.db").write_bytes(os.urandom(8192))
    path = write_yaml(tmp_path / "forewarn.yaml", two_owner_config(tmp_path))
    done = run_agent("check", "-c", str(path), "--json", cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines(done.stderr)) == 1, done.stderr
    assert str(state / "forewarn.db") in done.stderr, done.stderr


# ---------------------------------------------------------------- agent config validate


def valid_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "agent": {"state_dir": str(tmp_path / "state"), "default_owner": "it"},
        "owners": {
            "it": {"department": "IT", "contact": "On-call", "address_as": "Team", "tone": "friendly",
                   "language": "en", "notify": ["audit"]},
            "finance": {"department": "Finance", "contact": "Marco Santino", "address_as": "Mr. Santino",
                        "tone": "formal", "language": "en", "timezone": "Europe/Rome",
                        "quiet_hours": "22:00-07:00", "notify": ["audit"]},
        },
        "resources": [{"name": "Finance shared drive", "owner": "finance", "impact": "reports can't be saved",
                       "match": {"check": "disk", "mount": "/"}}],
        "checks": {"disk": {"interval": "60s", "warning": "85%", "critical": "95%"}},
        "notifiers": {"audit": {"type": "file", "path": str(tmp_path / "notices.jsonl")}},
    }


def _set(data: dict, path: str, value: Any) -> dict:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


# (name, the change, the key path the error must name)
BROKEN = [
    ("unknown key", ("owners.finance.colour", "blue"), "owners.finance.colour"),
    ("wrong type", ("owners.finance.department", ["a", "b"]), "owners.finance.department"),
    ("bad duration", ("checks.disk.interval", "60x"), "checks.disk.interval"),
    ("bad percentage", ("checks.disk.warning", "120%"), "checks.disk.warning"),
    ("undefined resource owner", ("resources.0.owner", "nobody"), "resources.0.owner"),
    ("undefined notifier", ("owners.finance.notify", ["finance-mail"]), "owners.finance.notify"),
    ("unknown language", ("owners.finance.language", "fr"), "owners.finance.language"),
    ("unknown tone", ("owners.finance.tone", "rude"), "owners.finance.tone"),
    ("nonexistent timezone", ("owners.finance.timezone", "Mars/Olympus_Mons"), "owners.finance.timezone"),
    ("plain password", ("notifiers.audit.password", "hunter2"), "notifiers.audit.password"),
    ("unknown check", ("checks.dsik", {"interval": "60s"}), "checks.dsik"),
    ("unknown notifier type", ("notifiers.audit.type", "pager"), "notifiers.audit.type"),
    ("malformed quiet hours", ("owners.finance.quiet_hours", "10pm to 7"), "owners.finance.quiet_hours"),
    ("warning above critical", ("checks.disk.warning", "97%"), "checks.disk"),
]


def validate(tmp_path: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return run_agent("config", "validate", "-c", str(path), cwd=tmp_path)


def test_the_base_config_of_the_broken_ones_is_valid(tmp_path: Path) -> None:
    done = validate(tmp_path, write_yaml(tmp_path / "good.yaml", valid_config(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


@pytest.mark.parametrize("name, change, key_path", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_is_one_line_naming_file_and_key(tmp_path: Path, name: str, change: tuple[str, Any],
                                                       key_path: str) -> None:
    path = write_yaml(tmp_path / "broken.yaml", _set(valid_config(tmp_path), *change))
    done = validate(tmp_path, path)
    assert done.returncode == 2, f"{name}: exit {done.returncode}, stdout {done.stdout!r}, stderr {done.stderr!r}"
    assert "Traceback" not in done.stderr, done.stderr
    problems = lines(done.stderr)
    assert len(problems) == 1, f"{name}: expected one line, got:\n{done.stderr}"
    line = problems[0]
    assert str(path) in line, f"{name}: the line does not name the file: {line}"
    assert re.search(rf"(^|[\s:]){re.escape(key_path)}([\s:.]|$)", line), \
        f"{name}: the line does not name the key path {key_path}: {line}"
    assert "hunter2" not in done.stderr, "the error repeats the secret"


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("agent:\n  state_dir: /tmp/x\nowners:\n  it: {department: IT\nchecks: {}\n", encoding="utf-8")
    done = validate(tmp_path, path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr, done.stderr
    problems = lines(done.stderr)
    assert len(problems) == 1, done.stderr
    assert str(path) in problems[0] and re.search(r"line [45]\b", problems[0]), problems[0]


def test_several_problems_give_one_line_each(tmp_path: Path) -> None:
    data = valid_config(tmp_path)
    for key, value in (("checks.disk.interval", "60x"), ("notifiers.audit.type", "pager"),
                       ("resources.0.owner", "nobody")):
        data = _set(data, key, value)
    path = write_yaml(tmp_path / "broken.yaml", data)
    done = validate(tmp_path, path)
    assert done.returncode == 2
    problems = lines(done.stderr)
    assert len(problems) == 3, done.stderr
    assert all(str(path) in p for p in problems), done.stderr
    for key in ("checks.disk.interval", "notifiers.audit.type", "resources.0.owner"):
        assert any(key in p for p in problems), f"no line names {key}:\n{done.stderr}"


def test_init_writes_a_config_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "new" / "forewarn.yaml"
    target.parent.mkdir()
    done = run_agent("init", str(target), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert target.is_file() and target.stat().st_size > 0
    checked = validate(tmp_path, target)
    assert checked.returncode == 0, checked.stderr
    again = run_agent("init", str(target), cwd=tmp_path)
    assert again.returncode != 0 and "Traceback" not in again.stderr, "init overwrote an existing config"


def test_notify_from_cron_opens_once_honours_for_and_resolves(tmp_path: Path) -> None:
    """Issue 12.6: `agent check --notify` re-sent the opening on every run and ignored `for`. Run as cron
    would, it now shares the daemon's lifecycle through the state database."""
    notices_file = tmp_path / "out" / "notices.jsonl"
    config = two_owner_config(tmp_path, notices_file)
    config["checks"]["disk"].update({"interval": "5m", "for": "4m"})
    path = write_yaml(tmp_path / "forewarn.yaml", config)
    start = 1_794_909_600  # Tuesday 17 November 2026, 10:00 UTC (outside Rome's quiet hours)

    def cron(minutes: int) -> list[dict]:
        env = {k: v for k, v in os.environ.items() if k != "FOREWARN_CONFIG"}
        done = run_agent("check", "-c", str(path), "--notify", cwd=tmp_path,
                         env={**env, "FOREWARN_NOW": str(start + 60 * minutes)})
        assert "Traceback" not in done.stderr, done.stderr
        if not notices_file.exists():
            return []
        return [json.loads(line) for line in notices_file.read_text(encoding="utf-8").splitlines()]

    assert cron(0) == []  # the problem must hold for 4 minutes first
    opened = cron(5)
    assert sorted((r["owner"], r["phase"]) for r in opened) == [("finance", "opening"), ("it", "opening"),
                                                                 ("radiology", "opening")]
    assert cron(10) == opened  # still full, a warning-free critical with no change: nothing new yet
    config["checks"]["disk"].update({"warning": "99%", "critical": "100%"})  # IT freed space (as far as we know)
    write_yaml(path, config)
    cron(15)
    final = cron(26)
    phases = [(r["owner"], r["phase"]) for r in final[len(opened):]]
    assert sorted(phases) == [("finance", "resolution"), ("it", "resolution"), ("radiology", "resolution")], phases
    assert len({r["thread_id"] for r in final if r["owner"] == "finance"}) == 1


def test_an_excluded_root_is_gone_and_every_mount_has_one_size(tmp_path: Path) -> None:
    """Issue 12.12: `exclude: ["/"]` removes `/` (it was measured anyway, with device "-"); the size in the
    status line, the facts and the findings is one number (the usable size df's Use% counts)."""
    with tmpfs("8m") as mount:
        config = {"agent": {"state_dir": str(tmp_path / "state")},
                  "owners": {"it": {"department": "IT"}},
                  "resources": [{"name": "Scratch", "owner": "it", "match": {"check": "disk", "mount": str(mount)}}],
                  "checks": {"disk": {"exclude": ["/"]}}}
        (tmp_path / "forewarn.yaml").write_text(yaml.safe_dump(config))
        done = run_agent("check", "disk", "-c", str(tmp_path / "forewarn.yaml"), "--json", cwd=tmp_path)
        st = os.statvfs(mount)
    document = json.loads(done.stdout)
    statuses = document["results"]
    assert "/" not in [s["resource"] for s in statuses], statuses
    [scratch] = [s for s in statuses if s["resource"] == str(mount)]
    usable = (st.f_blocks - st.f_bfree + st.f_bavail) * st.f_frsize
    assert scratch["summary"].endswith(f"free of {format_bytes(usable)}"), scratch
