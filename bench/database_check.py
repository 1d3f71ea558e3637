"""The database check's own cost per run, next to what a generic exporter reads from the same server.

Starts its own PostgreSQL (tests/integration/servers.py) with 200 tables and
1,000 normalised statements in pg_stat_statements (5 shapes per table, of which
10 carry a report tag that resources name), then runs two sides, each in its
own child process so that its peak RSS is its own:

- check: `DatabaseCheck.run` as the daemon calls it, `--runs` times with the
  tagged reports run between runs (so each run judges a period), one of them
  slow so the cause evidence and the index proposal are read too;
- peer: what a generic exporter scrapes each time: every row of
  pg_stat_statements (with texts) and of pg_stat_user_tables.

Printed per side: median and worst wall time per run, queries issued per run,
peak RSS of the process (ru_maxrss) and of a bare interpreter with psycopg.

Usage: python bench/database_check.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.servers import PostgresServer  # noqa: E402

TABLES, SHAPES, REPORTS = 200, 5, 10
PASSWORD = "bench-secret"


def seed(server: PostgresServer) -> None:
    """200 tables, 1,000 statements: five shapes per table, each run once; ten tables get a tagged report."""
    db = server.connect()
    db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    db.execute(f"CREATE ROLE forewarn LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")
    for i in range(TABLES):
        db.execute(f"CREATE TABLE t{i:03d} (id int PRIMARY KEY, a int, b int, c text)")
        db.execute(f"INSERT INTO t{i:03d} SELECT g, g % 10, g % 7, 'x' FROM generate_series(1, 200) g")
    db.execute("CREATE TABLE big (id int, a int)")
    db.execute("INSERT INTO big SELECT g, g % 1000 FROM generate_series(1, 300000) g")
    db.execute("ANALYZE")
    db.execute("SELECT pg_stat_statements_reset()")
    for i in range(TABLES):
        for shape in shapes(i):
            db.execute(shape, (1,)).fetchall() if "SELECT" in shape else db.execute(shape, (1,))
    db.close()


def shapes(i: int) -> list[str]:
    table = f"t{i:03d}"
    first = (f"/* report:r{i} */ SELECT count(*) FROM {table} WHERE a = %s" if i < REPORTS
             else f"SELECT count(*) FROM {table} WHERE a = %s")
    return [first, f"SELECT a, b FROM {table} WHERE id < %s", f"SELECT max(b) FROM {table} WHERE b > %s",
            f"UPDATE {table} SET c = 'y' WHERE id = %s", f"SELECT c FROM {table} WHERE id = %s AND b >= 0"]


def run_reports(port: int) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=PostgresServer().password,
                         dbname="postgres", autocommit=True) as db:
        for i in range(REPORTS):
            for _ in range(3):
                db.execute(shapes(i)[0], (1,)).fetchall()
        for _ in range(3):  # one slow report: reads a large table in full
            db.execute("/* report:r0 */ SELECT count(*) FROM big WHERE a = %s", (1,)).fetchall()


def side_check(port: int, runs: int) -> dict:
    from agent.api import Context
    from agent.detect.bank import DetectorBank
    from checks.database.check import DatabaseCheck

    os.environ["BENCH_DB_PASSWORD"] = PASSWORD
    config = DatabaseCheck.Config.parse({"targets": [
        {"name": "bench", "url": f"postgresql://forewarn@127.0.0.1:{port}/postgres",
         "password_env": "BENCH_DB_PASSWORD", "slow_after": "1ms"}]})
    check, bank, history = DatabaseCheck(config), DetectorBank(), _NoHistory()
    wanted = tuple({"target": "bench", "query": f"report:r{i}"} for i in range(REPORTS))
    session = check.states["bench"].session
    times, queries, findings = [], [], 0
    for n in range(runs):
        run_reports(port)
        ctx = Context(now=lambda: 1_796_083_200.0 + 60 * n, history=history, hostname="bench",
                      log=logging.getLogger("bench"), wanted=wanted, detectors=bank)
        before, start = session.queries, time.perf_counter()
        result = check.run(ctx)
        times.append(time.perf_counter() - start)
        queries.append(session.queries - before)
        findings += len(result.findings)
    check.close()
    return {"times": times[1:], "queries": queries[1:], "findings": findings}  # the first run has no period


def side_peer(port: int, runs: int) -> dict:
    import psycopg

    times, rows = [], 0
    with psycopg.connect(host="127.0.0.1", port=port, user="forewarn", password=PASSWORD, dbname="postgres",
                         autocommit=True) as db:
        for _ in range(runs):
            run_reports(port)
            start = time.perf_counter()
            rows = len(db.execute("SELECT * FROM pg_stat_statements").fetchall())
            rows += len(db.execute("SELECT * FROM pg_stat_user_tables").fetchall())
            times.append(time.perf_counter() - start)
    return {"times": times[1:], "queries": [2] * (runs - 1), "rows": rows}


def side_bare(port: int, runs: int) -> dict:
    import psycopg  # noqa: F401 - what the interpreter costs with the driver loaded, for scale

    return {"times": [], "queries": []}


class _NoHistory:
    def series(self, name: str, labels: object, since: float) -> list[tuple[float, float]]:
        return []


def child(side: str, port: int, runs: int) -> tuple[dict, float]:
    """Runs one side in a child; its result and its peak RSS in MB."""
    proc = subprocess.Popen([sys.executable, __file__, "--side", side, "--port", str(port), "--runs", str(runs)],
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"side {side} failed ({proc.returncode})")
    return json.loads(out), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--side", choices=("check", "peer", "bare"))
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.side:
        print(json.dumps({"check": side_check, "peer": side_peer, "bare": side_bare}[args.side](args.port, args.runs)))
        return
    with PostgresServer() as server:
        seed(server)
        count = server.connect().execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0]
        print(f"PostgreSQL 15 on 127.0.0.1: {TABLES + 1} tables, {count} normalised statements in "
              f"pg_stat_statements, {REPORTS} tagged reports watched; {args.runs} runs per side "
              "(the first, without a period, not counted)\n")
        rows = []
        for side, label in (("check", "database check run"), ("peer", "peer: full pg_stat_statements + "
                                                                      "pg_stat_user_tables read"),
                            ("bare", "bare python + psycopg (no work)")):
            result, rss = child(side, server.port, args.runs)
            times = result["times"]
            rows.append((label, f"{statistics.median(times) * 1000:.1f}" if times else "-",
                         f"{max(times) * 1000:.1f}" if times else "-",
                         f"{statistics.median(result['queries']):.0f}" if result["queries"] else "-", f"{rss:.1f}"))
            if side == "check":
                note = f"(the check raised {result['findings']} findings over its runs: the slow report's evidence " \
                       "and index proposal are part of the cost)"
        print(f"{'side':<58} {'median ms':>10} {'max ms':>8} {'queries/run':>12} {'peak RSS MB':>12}")
        for row in rows:
            print(f"{row[0]:<58} {row[1]:>10} {row[2]:>8} {row[3]:>12} {row[4]:>12}")
        print(note)


if __name__ == "__main__":
    main()
