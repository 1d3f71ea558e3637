"""The database check against a real PostgreSQL 15 with pg_stat_statements, on 127.0.0.1.

Finance's month-end report reads a ledger that grows past the point where its
missing index matters: the slowdown is found and told (en and zh-CN) with the
table and its sequential scans in the appendix, `agent suggest index` prints
the index that fixes it, and once it exists the finding is gone. A steady
healthy workload raises nothing; a report unusually slow for itself is found
after the detector's warm-up (on the check's injected clock); the database
down, a role without pg_monitor and pg_stat_statements missing are each told
to IT plainly. The password never appears in any output or stored byte.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from prometheus_client import generate_latest

from agent.api import Context
from agent.config import parse_config
from agent.detect.bank import DetectorBank
from agent.metrics import Metrics
from agent.registry import default_registry
from agent.store import Store
from checks.database.check import DatabaseCheck
from tests.integration.servers import PostgresServer, promtool_check_metrics, wait_until

PASSWORD = "Fw-4411-db-secret"
REPORT = "/* report:month-end */ SELECT count(*), sum(amount) FROM ledger WHERE account_id = %s"
DAILY = "/* report:daily */ SELECT pg_sleep(%s)"


def agent_command() -> list[str]:
    beside = Path(sys.executable).with_name("agent")
    return [str(beside)] if beside.exists() else ["agent"]


@pytest.fixture(scope="module")
def finance(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """A `finance` database with a small ledger, the agent's role (pg_monitor) and one without it."""
    admin = postgres_server.connect()
    for statement in ("DROP DATABASE IF EXISTS finance", "DROP DATABASE IF EXISTS plain",
                      "CREATE DATABASE finance", "CREATE DATABASE plain"):
        admin.execute(statement)
    for role, extra in (("forewarn", " IN ROLE pg_monitor"), ("nomonitor", "")):
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'{extra}")
    admin.close()
    db = postgres_server.connect("finance")
    db.execute("CREATE EXTENSION pg_stat_statements")
    db.execute("CREATE TABLE ledger (id bigserial PRIMARY KEY, account_id int NOT NULL, booked date NOT NULL,"
               " amount numeric(12, 2) NOT NULL)")
    db.execute("INSERT INTO ledger (account_id, booked, amount) SELECT g % 5000, date '2026-01-01' + g % 330,"
               " g % 997 FROM generate_series(1, 20000) g")
    db.execute("GRANT SELECT ON ledger TO forewarn")  # lets the check show the plan (explain: true)
    db.execute("ANALYZE ledger")
    db.close()
    yield postgres_server


def write_config(tmp_path: Path, server: PostgresServer, user: str = "forewarn", database: str = "finance",
                 port: int | None = None, **target: object) -> Path:
    url = f"postgresql://{user}@127.0.0.1:{port or server.port}/{database}"
    resource = {"operation": "report runs", "impact": "the month-end close is delayed",
                "match": {"check": "database", "target": "finance-db", "query": "report:month-end"}}
    config = {
        "agent": {"state_dir": str(tmp_path / "state"), "default_owner": "it"},
        "owners": {
            "it": {"department": "IT", "address_as": "Team", "tone": "friendly", "notify": ["file"]},
            "finance": {"department": "Finance", "address_as": "Mr. Santino", "language": "en",
                        "timezone": "Europe/Rome", "notify": ["file"]},
            "finance_cn": {"department": "财务部", "address_as": "王主任", "language": "zh-CN",
                           "timezone": "Asia/Shanghai", "notify": ["file"]}},
        "notifiers": {"file": {"type": "file", "path": str(tmp_path / "notices.jsonl")}},
        "resources": [{"name": "Month-end reports", "owner": "finance", **resource},
                      {"name": "月末报表", "owner": "finance_cn", **resource, "operation": "每次运行",
                       "impact": "月末结账延误"}],
        # `for: 0s` opens at once; `interval: 1s` lets an incident clear two seconds after its finding is gone
        # (two runs, as the daemon's hysteresis asks), so `agent check --notify` shows the resolution.
        "checks": {"database": {"for": "0s", "interval": "1s", "targets": [
            {"name": "finance-db", "url": url, "password_env": "FINANCE_DB_PASSWORD", "slow_after": "100ms",
             **target}]}},
    }
    path = tmp_path / "forewarn.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*agent_command(), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FINANCE_DB_PASSWORD": PASSWORD})


def check(config: Path, *flags: str) -> tuple[int, dict, str]:
    done = agent("check", "database", "-c", str(config), "--json", *flags)
    return done.returncode, json.loads(done.stdout), done.stderr


def run_reports(server: PostgresServer, times: int, query: str = REPORT, arg: object = 3917) -> None:
    """The report as Finance's application runs it (another role, server-side parameters)."""
    db = server.connect("finance")
    try:
        for _ in range(times):
            db.execute(query, (arg,)).fetchall()
    finally:
        db.close()


def kinds(findings) -> list[str]:
    return sorted(f["kind"] if isinstance(f, dict) else f.kind for f in findings)


def notice_for(document: dict, owner: str) -> dict:
    return next(n for n in document["notices"] if n["owner"] == owner)


# ------------------------------------------------------------------ the month-end scenario


def test_month_end_report_slowed_by_a_missing_index_is_found_told_and_fixed_by_the_suggested_index(
        finance, tmp_path):
    config = write_config(tmp_path, finance, explain=True)
    outputs = []
    # A steady healthy workload: the report on a small ledger, at the same rate between runs.
    for _ in range(4):
        run_reports(finance, 5)
        outputs.append(check(config))
    assert [(code, kinds(doc["findings"])) for code, doc, _ in outputs] == [(0, [])] * 4, outputs[-1]

    # The ledger grows past the point where reading it in full matters.
    db = finance.connect("finance")
    db.execute("INSERT INTO ledger (account_id, booked, amount) SELECT g % 5000, date '2026-01-01' + g % 330,"
               " g % 997 FROM generate_series(1, 3000000) g")
    db.execute("ANALYZE ledger")
    db.close()
    run_reports(finance, 5)
    code, document, stderr = check(config, "--notify")
    outputs.append((code, document, stderr))
    assert (code, kinds(document["findings"])) == (1, ["database_query_slow"]), (document, stderr)
    (finding,) = document["findings"]
    assert finding["facts"]["mean_seconds"] > 0.1 and finding["facts"]["tables"] == ["public.ledger"]
    en, zh, it = (notice_for(document, owner) for owner in ("finance", "finance_cn", "it"))
    assert "Month-end reports" in en["subject"] and "Mr. Santino" in en["body"]
    assert "the month-end close is delayed" in en["body"] and "31 December" in en["body"]
    assert "月末报表" in zh["subject"] and "王主任" in zh["body"] and "12月31日" in zh["body"]
    for notice in (en, zh, it):
        assert "public.ledger" in notice["appendix"] and "sequential scans" in notice["appendix"]
        assert "CREATE INDEX CONCURRENTLY" in notice["appendix"] and "Seq Scan" in notice["appendix"]
        assert "3917" not in notice["appendix"] and "$1" in notice["appendix"]  # normalised: no literal values
    for word in ("p99", "latency", "sequential", "index", "threshold"):
        assert word not in en["body"].lower(), word
    print("\n--- en ---", en["subject"], en["body"], en["appendix"], "--- zh-CN ---", zh["subject"], zh["body"],
          zh["appendix"], sep="\n")

    suggested = agent("suggest", "index", "finance-db", "report:month-end", "-c", str(config))
    assert suggested.returncode == 0, suggested.stderr
    statement = suggested.stdout.strip()
    assert statement == "CREATE INDEX CONCURRENTLY ledger_account_id_idx ON public.ledger (account_id);"
    assert "Estimated size: about" in suggested.stderr and "account_id" in suggested.stderr

    db = finance.connect("finance")
    db.execute(statement)
    db.close()
    run_reports(finance, 5)
    code, document, stderr = check(config, "--notify")
    outputs.append((code, document, stderr))
    assert (code, document["findings"]) == (0, []), document
    delivered = [json.loads(line) for line in (tmp_path / "notices.jsonl").read_text().splitlines()]
    assert sorted((n["owner"], n["phase"]) for n in delivered) == sorted(
        (owner, phase) for owner in ("finance", "finance_cn", "it") for phase in ("opening", "resolution"))
    resolved = next(n for n in delivered if (n["owner"], n["phase"]) == ("finance", "resolution"))
    assert "Month-end reports run at their usual speed again." in resolved["body"]
    print("--- en, resolution ---", resolved["subject"], resolved["body"], sep="\n")
    after = agent("suggest", "index", "finance-db", "report:month-end", "-c", str(config))
    assert after.returncode == 2 and "nothing to suggest" in after.stderr

    texts = [json.dumps(doc, ensure_ascii=False) + err for _, doc, err in outputs]
    assert all(PASSWORD not in text for text in texts)
    assert all(PASSWORD.encode() not in p.read_bytes() for p in (tmp_path / "state").iterdir())


class InProcess:
    """The check as the daemon runs it, on a simulated clock: one run per minute from 2026-12-01 00:00 UTC."""

    def __init__(self, server: PostgresServer, tmp_path: Path, query: str, **settings: object):
        self.config = DatabaseCheck.Config.parse({**settings, "targets": [
            {"name": "finance-db", "url": f"postgresql://forewarn@127.0.0.1:{server.port}/finance",
             "password_env": "FINANCE_DB_PASSWORD", "slow_after": "250ms"}]})
        self.check, self.store, self.bank = DatabaseCheck(self.config), Store(tmp_path), DetectorBank()
        self.wanted = ({"target": "finance-db", "query": query},)
        self.clock = 1_796_083_200.0

    def run(self):
        ctx = Context(now=lambda: self.clock, history=self.store, hostname="test-host",
                      log=logging.getLogger("test.database"), wanted=self.wanted, detectors=self.bank)
        result = self.check.run(ctx)
        self.store.record(result.observations)
        self.clock += 60
        return result

    def close(self) -> None:
        self.check.close()
        self.store.close()


@pytest.fixture
def password() -> Iterator[None]:
    os.environ["FINANCE_DB_PASSWORD"] = PASSWORD
    yield
    del os.environ["FINANCE_DB_PASSWORD"]


def test_report_unusually_slow_for_itself_is_found_after_warm_up_below_slow_after(finance, password, tmp_path):
    """150 ms is under slow_after (250 ms; wide margins, as a loaded machine stretches every sleep) but 75 times
    this report's usual: the detector calls it."""
    agent_ = InProcess(finance, tmp_path, "report:daily", detector={"warmup": 10})
    try:
        quiet = []
        for _ in range(14):
            run_reports(finance, 3, DAILY, 0.002)
            quiet.append(agent_.run())
        slow = []
        for _ in range(4):
            run_reports(finance, 3, DAILY, 0.15)
            slow.append(agent_.run())
    finally:
        agent_.close()
    assert not any(r.findings for r in quiet), [kinds(r.findings) for r in quiet]
    assert "database_query_slow" not in kinds(slow[0].findings)  # one slow period is not yet a slow report
    found = [f for r in slow for f in r.findings if f.kind == "database_query_slow"]
    assert found, [kinds(r.findings) for r in slow]
    facts = found[-1].facts
    assert 0.125 < facts["mean_seconds"] < 0.25 and facts["usual_seconds"] < 0.01
    assert "unusually high" in found[-1].evidence["rule"]
    assert facts["since"] < agent_.clock - 120  # since the first slow period, from the stored means

    # /metrics: what the check measured, with bounded labels (the configured names), clean for promtool.
    config = parse_config({"owners": {"finance": {"department": "Finance"}},
                           "resources": [{"name": "Daily report", "owner": "finance",
                                          "match": {"check": "database", "target": "finance-db",
                                                    "query": "report:daily"}}],
                           "checks": {"database": {"targets": [{"name": "finance-db",
                                                                "url": "postgresql://forewarn@h/finance"}]}}},
                          "test", default_registry())
    metrics = Metrics(config)
    metrics.record(slow[-1], 0.1, True, agent_.clock)
    scrape = generate_latest(metrics.registry).decode()
    checked = promtool_check_metrics(scrape)
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked.stderr
    assert ('forewarn_database_query_mean_seconds{department="Finance",query="report:daily",target="finance-db"}'
            in scrape)
    assert 'forewarn_database_up{department="IT",target="finance-db"} 1.0' in scrape


def test_report_named_by_its_application_name_is_followed_through_the_query_ids_seen_running(
        finance, password, tmp_path):
    """No tag in the text: the check learns the application's query ids from pg_stat_activity while they run."""
    agent_ = InProcess(finance, tmp_path, "closing-app")
    app = finance.connect("finance", application_name="closing-app")
    admin = finance.connect("finance")
    statement = "SELECT pg_sleep(%s), %s::int AS closing"
    try:
        running = threading.Thread(target=lambda: app.execute(statement, (1.0, 1)).fetchall())
        running.start()
        assert wait_until(lambda: admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'closing-app' AND state = 'active'"
            " AND query_id IS NOT NULL").fetchone()[0] == 1, 5)
        first = agent_.run()  # sees it running, remembers its query id
        running.join(timeout=10)
        for _ in range(3):
            app.execute(statement, (0.2, 2)).fetchall()
        second = agent_.run()
    finally:
        app.close()
        admin.close()
        agent_.close()
    assert first.findings == ()
    (finding,) = second.findings
    assert finding.kind == "database_query_slow" and finding.labels == {"target": "finance-db",
                                                                        "query": "closing-app"}
    assert finding.facts["calls"] == 4 and "pg_sleep($1), $2::int" in finding.evidence["query"]


# ------------------------------------------------------------------ told to IT only


def test_database_down_is_unreachable_for_it(finance, start_server, tmp_path):
    down = start_server(PostgresServer())
    port = down.port
    down.stop()
    code, document, _ = check(write_config(tmp_path, finance, port=port))
    assert code == 2 and kinds(document["findings"]) == ["database_unreachable"]
    assert [n["owner"] for n in document["notices"]] == ["it"]
    notice = document["notices"][0]
    assert "not answering" in notice["subject"] and "Connection refused" in notice["appendix"]


def test_role_without_pg_monitor_gets_a_notice_to_it_naming_the_missing_grant(finance, tmp_path):
    code, document, _ = check(write_config(tmp_path, finance, user="nomonitor"))
    assert code == 1 and kinds(document["findings"]) == ["database_permission_missing"], document
    assert [n["owner"] for n in document["notices"]] == ["it"]
    body = document["notices"][0]["body"]
    assert "GRANT pg_monitor TO nomonitor;" in body and "pg_monitor" in document["notices"][0]["subject"] + body


def test_missing_pg_stat_statements_is_said_plainly(finance, tmp_path):
    code, document, _ = check(write_config(tmp_path, finance, database="plain"))
    assert code == 1 and kinds(document["findings"]) == ["database_stats_missing"], document
    (notice,) = document["notices"]
    assert notice["owner"] == "it" and "Query statistics are not available" in notice["subject"]
    assert "pg_stat_statements extension is not installed in database plain" in notice["body"]
    assert "CREATE EXTENSION pg_stat_statements;" in notice["body"]


def test_password_inside_the_url_is_refused_without_echoing_it(finance, tmp_path):
    config = write_config(tmp_path, finance)
    text = config.read_text().replace("forewarn@", f"forewarn:{PASSWORD}@")
    config.write_text(text)
    done = agent("config", "validate", "-c", str(config))
    assert done.returncode == 2 and PASSWORD not in done.stdout + done.stderr
    assert "checks.database.targets.0.url: a password in the URL is not accepted" in done.stdout + done.stderr
