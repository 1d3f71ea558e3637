"""A new user installs Forewarn with pip into a clean virtualenv and runs it.

The source tree is copied first (pip's build would leave build/ and
*.egg-info in it); the install is a regular, non-editable one, so this sees
exactly what the wheel ships: the `agent` command, the plugins found through
entry points, and the notice templates.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                 ".venv", "venv", ".ci", "bench", "tests")


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FOREWARN_CONFIG", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_USER")}
    env.update(HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               XDG_STATE_HOME=str(home / ".local" / "state"))
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """(venv, a scratch directory, the environment): forewarn pip-installed from a copy of this tree."""
    base = tmp_path_factory.mktemp("install")
    source, venv, home = base / "src", base / "venv", base / "home"
    assert (REPO / "pyproject.toml").is_file(), f"{REPO} is not the repository root"
    shutil.copytree(REPO, source, ignore=IGNORED)
    home.mkdir()
    env = clean_env(home)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=120,
                          env=env, cwd=base)
    assert made.returncode == 0, made.stderr
    config = (venv / "pyvenv.cfg").read_text()
    assert re.search(r"include-system-site-packages\s*=\s*false", config), config
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", str(source)],
                         capture_output=True, text=True, timeout=600, env=env, cwd=base)
    assert pip.returncode == 0, f"pip install failed:\n{pip.stdout[-3000:]}\n{pip.stderr[-3000:]}"
    yield venv, base, env


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
    assert agent.is_file(), "pip install did not create the `agent` command"
    config = config_forcing_findings(base)
    done = subprocess.run([str(agent), "check", "--json", "-c", str(config)], cwd=base / "home", env=env,
                          capture_output=True, text=True, timeout=120)
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
    done = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=base / "home", env=env,
                          capture_output=True, text=True, timeout=60)
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
    target = base / "init" / "forewarn.yaml"
    target.parent.mkdir(exist_ok=True)
    agent = str(venv / "bin" / "agent")
    done = subprocess.run([agent, "init", str(target)], cwd=base, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    checked = subprocess.run([agent, "config", "validate", "-c", str(target)], cwd=base, env=env,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
