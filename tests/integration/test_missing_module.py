"""A check whose client library is missing is a config error naming the package, not an internal error.

The library is hidden from the interpreter (sys.modules[name] = None makes it
unimportable), as on an install made without it; the disk check alone still runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_check_cli import lines, write_yaml

AGENT_WITHOUT = "import sys; sys.modules[{module!r}] = None; sys.argv[0] = 'agent'; from agent.__main__ import main; main()"


def agent_without(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", AGENT_WITHOUT.format(module=module), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


CHECKS = {
    "redis": {"cache": {"targets": [{"name": "sessions", "url": "redis://127.0.0.1:1"}]}},
    "boto3": {"cloud_storage": {"buckets": ["acme-reports"]}},
    "psycopg": {"database": {"targets": [{"name": "erp", "url": "postgresql://monitor@127.0.0.1:1/erp"}]}},
}


@pytest.mark.parametrize("module", sorted(CHECKS))
def test_validate_check_and_run_name_the_package_to_install(tmp_path: Path, module: str) -> None:
    config = write_yaml(tmp_path / "forewarn.yaml", {"agent": {"state_dir": str(tmp_path / "state")},
                                                      "checks": {"disk": {}, **CHECKS[module]}})
    for command, code in (("config validate", 2), ("check", 3), ("run", 2)):
        done = agent_without(module, *command.split(), "-c", str(config), cwd=tmp_path)
        assert done.returncode == code, f"{command}: exit {done.returncode}: {done.stderr}"
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(lines(done.stderr)) == 1, done.stderr
        assert f"'{module}'" in done.stderr and f"pip install {module}" in done.stderr, done.stderr


def test_disk_only_config_runs_without_the_cache_and_cloud_libraries(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "forewarn.yaml", {"agent": {"state_dir": str(tmp_path / "state")},
                                                      "checks": {"disk": {"warning": "99%", "critical": "100%"}}})
    done = agent_without("redis", "check", "-c", str(config), cwd=tmp_path)
    assert done.returncode in (0, 1, 2) and done.stdout.startswith(("OK - ", "WARNING - ", "CRITICAL - ")), done
