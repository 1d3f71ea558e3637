"""A new user installs Forewarn with the README's first command and runs it.

The command is read from the README's quick start and run by bash in a clean
environment: an empty HOME, a PATH of system directories (plus ~/.local/bin,
which Debian's ~/.profile adds at login), no virtualenv, and — when the suite
runs as root — as the unprivileged user `nobody`, which takes install.sh's
non-root path (~/.local/share/forewarn). It installs from a copy of this tree,
non-editable, so this sees exactly what the wheel ships: the `agent` command,
the plugins found through entry points, the notice templates and every check's
client library.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import boto3
import pytest
import yaml

from tests.integration.servers import Memcached, MotoServer, RedisServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                 ".venv", "venv", ".hypothesis")
NOBODY = 65534
Installed = tuple[Path, Path, dict[str, str]]


def readme_first_command() -> str:
    """The first line of the README's first sh block, comment dropped."""
    block = re.search(r"```sh\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    assert block, "the README has no sh block"
    return block.group(1).splitlines()[0].split("#")[0].strip()


def clean_env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "USER": "nobody" if os.geteuid() == 0 else os.environ.get("USER", "user"),
            "PATH": f"{home}/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1",
            **{k: v for k, v in os.environ.items() if k.startswith(("PIP_INDEX", "PIP_EXTRA", "PIP_FIND", "http"))}}


def as_user(argv: list[str]) -> list[str]:
    """Run as nobody when we are root: install.sh's user path, and no write access anywhere else."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv]


def run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(as_user(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    """(venv, a scratch directory, the environment), after the README's first command ran in a copy of this tree."""
    base = Path(tempfile.mkdtemp(prefix="forewarn-install-"))
    try:
        base.chmod(0o755)
        source, home = base / "src", base / "home"
        shutil.copytree(REPO, source, ignore=IGNORED)
        home.mkdir()
        if os.geteuid() == 0:
            for path in (home, base):
                os.chown(path, NOBODY, NOBODY)
        env = clean_env(home)
        command = readme_first_command()
        assert command.startswith("bash install.sh && agent check"), command
        done = run(["bash", "-c", command], env, source, timeout=900)
        assert done.returncode in (0, 1, 2), f"`{command}` failed ({done.returncode}):\n{done.stdout[-3000:]}\n" \
                                             f"{done.stderr[-3000:]}"
        assert re.match(r"(OK|WARNING|CRITICAL) - ", done.stdout), done.stdout
        venv = home / ".local" / "share" / "forewarn"
        yield venv, base, env
    finally:
        shutil.rmtree(base, ignore_errors=True)


def config_forcing_findings(base: Path) -> Path:
    config = {
        "agent": {"state_dir": str(base / "state")},
        "owners": {
            "finance": {"department": "Finance", "contact": "Marco Santino", "address_as": "Mr. Santino",
                        "tone": "formal", "language": "en"},
            "radiology": {"department": "放射科", "contact": "王磊", "address_as": "王主任", "tone": "formal",
                          "language": "zh-CN", "timezone": "Asia/Shanghai"},
        },
        "resources": [
            {"name": "Finance shared drive", "owner": "finance", "match": {"check": "disk", "mount": "/"}},
            {"name": "影像归档盘", "owner": "radiology", "match": {"check": "disk", "mount": "/"}},
        ],
        "checks": {"disk": {"warning": "1%", "critical": "2%"}},
    }
    path = base / "forewarn.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_pip_installed_agent_checks_the_root_disk_and_writes_notices_in_both_languages(
        installed: tuple[Path, Path, dict[str, str]]) -> None:
    venv, base, env = installed
    agent = venv / "bin" / "agent"
    assert agent.is_file(), "install.sh did not create the `agent` command"
    config = config_forcing_findings(base)
    done = run([str(agent), "check", "--json", "-c", str(config)], env, base / "home")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, f"exit {done.returncode}: {done.stderr}"
    document = json.loads(done.stdout)
    assert "/" in [r["resource"] for r in document["results"]], document["results"]
    by_owner = {n["owner"]: n for n in document["notices"]}
    assert {"finance", "radiology"} <= set(by_owner), sorted(by_owner)
    assert by_owner["finance"]["locale"] == "en" and by_owner["finance"]["body"].startswith("Dear Mr. Santino")
    assert by_owner["radiology"]["locale"] == "zh-CN" and "王主任" in by_owner["radiology"]["body"]
    assert re.search(r"[\u4e00-\u9fff]{4}", by_owner["radiology"]["body"]), by_owner["radiology"]["body"]
    assert (base / "state" / "forewarn.db").is_file(), "the check stored nothing in agent.state_dir"


def test_installed_package_ships_the_templates_for_both_languages(
        installed: tuple[Path, Path, dict[str, str]]) -> None:
    venv, base, env = installed
    probe = ("import json, agent, templates; from importlib.resources import files; "
             "root = files('templates'); "
             "print(json.dumps({'agent': agent.__file__, 'templates': str(root), "
             "'en': sorted(p.name for p in root.joinpath('en').iterdir()), "
             "'zh-CN': sorted(p.name for p in root.joinpath('zh-CN').iterdir())}))")
    done = run([str(venv / "bin" / "python"), "-c", probe], env, base / "home")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    for key in ("agent", "templates"):
        assert str(venv) in found[key], f"{key} is imported from {found[key]}, not from the installed wheel"
        assert str(REPO) not in found[key]
    for locale in ("en", "zh-CN"):
        assert {"notice.txt.j2", "appendix.txt.j2", "disk_full.txt.j2", "disk_filling.txt.j2"} <= set(found[locale]), \
            f"templates/{locale} in the wheel holds only {found[locale]}"


def test_installed_agent_init_writes_a_config_that_validates(installed: tuple[Path, Path, dict[str, str]]) -> None:
    venv, base, env = installed
    target = base / "home" / "init.yaml"
    agent = str(venv / "bin" / "agent")
    done = run([agent, "init", str(target)], env, base)
    assert done.returncode == 0, done.stderr
    checked = run([agent, "config", "validate", "-c", str(target)], env, base)
    assert checked.returncode == 0, checked.stderr


def test_the_command_is_linked_on_the_user_path_and_a_second_install_keeps_working(installed: Installed) -> None:
    venv, base, env = installed
    link = base / "home" / ".local" / "bin" / "agent"
    assert link.is_symlink() and link.resolve() == (venv / "bin" / "agent").resolve(), link
    again = run(["bash", "install.sh"], env, base / "src", timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing the virtualenv" in again.stderr, again.stderr
    done = run(["bash", "-c", "agent check"], env, base / "home")
    assert done.returncode in (0, 1, 2) and re.match(r"(OK|WARNING|CRITICAL) - ", done.stdout), done


def test_the_plain_install_checks_redis_memcached_and_an_s3_listing(
        installed: Installed, redis_server: RedisServer, memcached_server: Memcached, moto_server: MotoServer) -> None:
    """No extras: the default install carries every check's client library."""
    venv, base, env = installed
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="install-listing")
    s3.put_object(Bucket="install-listing", Key="reports/2026-11.csv", Body=b"x" * 4096)
    config = base / "home" / "three-checks.yaml"
    config.write_text(yaml.safe_dump({
        "agent": {"state_dir": str(base / "home" / "three-state")},
        "checks": {
            "cache": {"probes": 5, "targets": [
                {"name": "pacs", "url": f"redis://127.0.0.1:{redis_server.port}/0"},
                {"name": "sessions", "url": f"memcached://127.0.0.1:{memcached_server.port}"}]},
            "cloud_storage": {"source": "listing", "endpoint_url": moto_server.endpoint_url,
                              "buckets": ["install-listing"]},
        }}), encoding="utf-8")
    done = run([str(venv / "bin" / "agent"), "check", "--json", "-c", str(config)],
               {**env, **moto_server.env()}, base / "home")
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    statuses = {(r["check"], r["resource"]): r for r in json.loads(done.stdout)["results"]}
    assert {k[0] for k in statuses} == {"cache", "cloud_storage"}, statuses
    for key, row in statuses.items():
        assert row["status"] != "UNKNOWN", f"{key}: {row['summary']}"
    listing = [r for (check, _), r in statuses.items() if check == "cloud_storage"]
    assert listing and all("install-listing" in r["resource"] for r in listing), listing
