"""`agent run` from outside: scraped by a real Prometheus, signals, the incident lifecycle, plugin isolation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.servers import Prometheus, free_port, promtool_check_metrics, wait_until

PLUGIN = '''
import time
from agent.api import CheckConfig, CheckResult, Metric

class Hang:
    name = "hang"
    Config = CheckConfig
    metrics = ()
    def __init__(self, config): pass
    def run(self, ctx):
        time.sleep(3600)

class Boom:
    name = "boom"
    Config = CheckConfig
    metrics = ()
    def __init__(self, config): pass
    def run(self, ctx):
        raise RuntimeError("the probe exploded")
'''


class Agent:
    """One `agent run` process with its config, log and notices file."""

    def __init__(self, tmp_path: Path, config: str, env: dict | None = None):
        self.dir = tmp_path
        self.port = free_port()
        self.config_path = tmp_path / "forewarn.yaml"
        self.write_config(config)
        self.notices_path = tmp_path / "notices.jsonl"
        self.log_path = tmp_path / "agent.log"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def write_config(self, text: str) -> None:
        self.config_path.write_text(text.replace("STATE", str(self.dir / "state"))
                                    .replace("NOTICES", str(self.dir / "notices.jsonl")))

    def start(self) -> None:
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "-c", str(self.config_path), "--listen",
             f"127.0.0.1:{self.port}"], stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        assert wait_until(self.healthy, timeout=20), self.log_path.read_text()

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as answer:
            return answer.read().decode()

    def notices(self) -> list[dict]:
        if not self.notices_path.exists():
            return []
        return [json.loads(line) for line in self.notices_path.read_text().splitlines()]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=5)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.log.close()


@pytest.fixture
def agents(tmp_path):
    started: list[Agent] = []

    def make(config: str, env: dict | None = None, name: str = "a") -> Agent:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        agent = Agent(folder, config, env)
        started.append(agent)
        return agent

    yield make
    for agent in started:
        if agent.process and agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait()


def disk_runs(agent: Agent) -> float:
    for line in agent.scrape().splitlines():
        if line.startswith('forewarn_check_duration_seconds_count{check="disk"}'):
            return float(line.split()[-1])
    return 0.0


FORCED = """
agent: {state_dir: STATE, update_interval: 1h}
owners:
  it: {department: IT, notify: [log]}
  finance: {department: Finance, address_as: Mr. Santino, tone: formal, notify: [log]}
resources:
  - {name: Finance shared drive, owner: finance, impact: reports can't be saved, match: {check: disk, mount: /}}
checks:
  disk: {interval: 1s, for: 2s, warning: WARNING, critical: 99.9%}
notifiers:
  log: {type: file, path: NOTICES}
"""


def test_prometheus_scrapes_disk_metrics_with_the_department(agents):
    agent = agents(FORCED.replace("WARNING", "99%"))
    agent.start()
    config = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: forewarn
    static_configs: [{{targets: ["127.0.0.1:{agent.port}"]}}]
"""
    with Prometheus(config) as prometheus:
        result = prometheus.wait_for_query('forewarn_disk_used_ratio{mount="/"}', timeout=30)
    assert result and result[0]["metric"]["department"] == "Finance"
    assert 0 < float(result[0]["value"][1]) < 1
    assert agent.stop() == 0


def test_metrics_exposition_is_clean_for_promtool(agents):
    agent = agents(FORCED.replace("WARNING", "1%"))
    agent.start()
    assert wait_until(lambda: "forewarn_incidents_open{severity=\"warning\"} 1.0" in agent.scrape(), timeout=20)
    text = agent.scrape()
    for name in ("forewarn_disk_free_bytes", "forewarn_check_duration_seconds_bucket", "forewarn_build_info",
                 "forewarn_check_last_success_timestamp_seconds", "forewarn_notices_total"):
        assert name in text, name
    checked = promtool_check_metrics(text)
    assert checked.returncode == 0 and checked.stdout.strip() == "" and checked.stderr.strip() == "", checked
    agent.stop()


def test_one_opening_no_duplicate_after_restart_and_one_resolution_after_reload(agents):
    agent = agents(FORCED.replace("WARNING", "1%"))
    agent.start()
    assert wait_until(lambda: len(agent.notices()) >= 2, timeout=20), agent.log_path.read_text()
    time.sleep(3)  # several more cycles: nothing new to say
    openings = agent.notices()
    assert sorted(n["owner"] for n in openings) == ["finance", "it"]
    assert all(n["phase"] == "opening" for n in openings)
    assert agent.stop() == 0

    agent.start()  # the incident is still open: a restart must not repeat the opening
    time.sleep(4)
    assert agent.notices() == openings

    agent.write_config(FORCED.replace("WARNING", "99%"))  # the condition clears
    agent.process.send_signal(signal.SIGHUP)
    assert wait_until(lambda: len(agent.notices()) >= 4, timeout=20), agent.log_path.read_text()
    time.sleep(3)
    notices = agent.notices()
    resolutions = [n for n in notices if n["phase"] == "resolution"]
    assert sorted(n["owner"] for n in resolutions) == ["finance", "it"]
    assert len(notices) == 4
    for resolution in resolutions:
        [opening] = [n for n in openings if n["owner"] == resolution["owner"]]
        assert resolution["thread_id"] == opening["thread_id"]
        assert resolution["subject"].startswith("Resolved:")
    assert agent.stop() == 0


@pytest.mark.parametrize("broken, named", [("checks: {disk: {interval: 60x}}\n", "checks.disk.interval"),
                                           ("# emptied by mistake\n", "the config file is empty")])
def test_a_broken_config_on_reload_keeps_the_old_one_running(agents, broken, named):
    agent = agents(FORCED.replace("WARNING", "99%"))
    agent.start()
    assert wait_until(lambda: disk_runs(agent) >= 1, timeout=10)
    agent.config_path.write_text(broken)
    agent.process.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "reload refused" in agent.log_path.read_text(), timeout=10)
    assert named in agent.log_path.read_text()
    before = disk_runs(agent)
    assert wait_until(lambda: disk_runs(agent) >= before + 2, timeout=10)  # still running, every second
    assert agent.healthy()
    assert "Traceback" not in agent.log_path.read_text()
    assert agent.stop() == 0


def test_sigterm_stops_within_five_seconds_with_exit_0(agents):
    agent = agents(FORCED.replace("WARNING", "99%"))
    agent.start()
    started = time.monotonic()
    assert agent.stop() == 0
    assert time.monotonic() - started < 5


def test_a_hanging_and_a_raising_check_do_not_stop_the_others(agents, tmp_path):
    plugins = tmp_path / "plugins"
    (plugins / "forewarn_testplugins-0.1.dist-info").mkdir(parents=True)
    (plugins / "forewarn_testplugins-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: forewarn-testplugins\nVersion: 0.1\n")
    (plugins / "forewarn_testplugins-0.1.dist-info" / "entry_points.txt").write_text(
        "[forewarn.checks]\nhang = badchecks:Hang\nboom = badchecks:Boom\n")
    (plugins / "badchecks.py").write_text(PLUGIN)
    config = FORCED.replace("WARNING", "99%").replace(
        "checks:\n", "checks:\n  hang: {interval: 1s, timeout: 1s}\n  boom: {interval: 1s}\n")
    agent = agents(config, env={"PYTHONPATH": str(plugins)})
    agent.start()

    assert wait_until(lambda: disk_runs(agent) >= 3, timeout=20)
    first = disk_runs(agent)
    time.sleep(4)
    text = agent.scrape()
    assert disk_runs(agent) >= first + 2  # the disk check kept running
    assert 'forewarn_check_errors_total{check="boom"}' in text
    assert 'forewarn_check_errors_total{check="hang"}' in text
    log = agent.log_path.read_text()
    assert "check boom failed: RuntimeError: the probe exploded" in log
    assert "check hang did not finish within 1s" in log
    assert wait_until(lambda: any(n["subject"].startswith("Forewarn cannot run the boom check")
                                  for n in agent.notices()), timeout=15)
    assert {n["owner"] for n in agent.notices()} == {"it"}  # never a business owner
    assert agent.stop() == 0


def test_metrics_over_tls_with_basic_auth_from_a_web_config_file(agents, tmp_path):
    import base64
    import ssl

    import bcrypt

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True)
    hashed = bcrypt.hashpw(b"s3cret-scrape", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config: {{cert_file: cert.pem, key_file: key.pem}}\n"
                   f"basic_auth_users: {{prometheus: '{hashed}'}}\n")
    agent = agents(FORCED.replace("WARNING", "99%").replace("update_interval: 1h",
                                                             f"update_interval: 1h, web_config_file: {web}"))
    context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))

    def get(password: str | None) -> int:
        request = urllib.request.Request(f"https://127.0.0.1:{agent.port}/metrics")
        if password is not None:
            token = base64.b64encode(f"prometheus:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as answer:
                assert b"forewarn_build_info" in answer.read()
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    agent.healthy = lambda: wait_until(lambda: _tls_answers(agent.port, context), timeout=0.5)
    agent.start()
    assert get(None) == 401
    assert get("wrong") == 401
    assert get("s3cret-scrape") == 200
    assert get("s3cret-scrape") == 200  # the second time from the cache of verified pairs
    assert "s3cret-scrape" not in agent.log_path.read_text()
    assert agent.stop() == 0


def _tls_answers(port: int, context) -> bool:
    try:
        urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=1, context=context)
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False
    return True


def run_cli(agent: Agent, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "agent.cli", *args, "-c", str(agent.config_path)],
                          capture_output=True, text=True, timeout=60, env=agent.env)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done


def test_ack_note_resolve_and_the_fix_remembered_reach_a_running_daemon(agents):
    """Issue 12: IT steers a running daemon from another shell. The ack holds (the daemon used to write
    its own copy back over it), the note goes out as an update within a cycle, `resolve --fix` closes the
    incident, and as the disk is still full the next incident tells the owner what fixed it last time."""
    agent = agents(FORCED.replace("WARNING", "1%"))
    agent.start()
    try:
        assert wait_until(lambda: len(agent.notices()) >= 2, timeout=20), agent.log_path.read_text()
        [incident] = json.loads(run_cli(agent, "incidents", "--json").stdout)["incidents"]
        run_cli(agent, "ack", incident["id"], "--by", "luca")
        run_cli(agent, "note", incident["id"], "Luca is moving the 2024 archives to the NAS tonight.", "--by", "Luca")
        assert wait_until(lambda: any(n["phase"] == "update" for n in agent.notices()), timeout=20)
        time.sleep(2)  # a few more cycles
        [still] = json.loads(run_cli(agent, "incidents", "--json").stdout)["incidents"]
        assert still["acked_by"] == "luca" and still["notes"][0]["author"] == "Luca"
        [update] = [n for n in agent.notices() if n["phase"] == "update" and n["owner"] == "finance"]
        assert "moving the 2024 archives to the NAS" in update["body"]

        run_cli(agent, "resolve", incident["id"], "--fix", "moved the 2024 archives to the NAS")
        assert wait_until(lambda: sum(n["phase"] == "resolution" for n in agent.notices()) == 2, timeout=20)
        assert wait_until(lambda: sum(n["phase"] == "opening" for n in agent.notices()) == 4, timeout=20)
        reopened = [n for n in agent.notices() if n["phase"] == "opening" and n["owner"] == "finance"][-1]
        assert "moved the 2024 archives to the NAS" in reopened["body"]
        history = json.loads(run_cli(agent, "incidents", "--history", "--json").stdout)["incidents"]
        assert [h["fix"] for h in history] == ["moved the 2024 archives to the NAS"]
    finally:
        assert agent.stop() == 0
