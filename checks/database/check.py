"""Reports that got slow in PostgreSQL, told to their owner early, with the evidence of why for IT.

Each run reads pg_stat_statements for the statements the configured resources
name (a comment tag, an application_name, or a query id), and judges one period
of each report: the difference of two readings, never the totals since the
statistics were reset. A report whose runs take longer than `slow_after` is
slow; the detection engine (one detector per report, fed the period's mean)
also calls it slow from half of `slow_after` when that is far above its usual.
The evidence comes from the statistics views that `pg_monitor` may read; the
plan is an extra when the role may EXPLAIN (`explain: true`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

from agent.api import (CheckError, CheckResult, Context, DetectorParams, Finding, Metric, Observation,
                       ResourceStatus, Severity, Status, format_bytes, format_duration)
from checks.database.causes import (IndexSuggestion, Scans, ServerState, TableStats, costly_node, describe_server,
                                    describe_table, full_reads, scans, suggest_index)
from checks.database.client import Session, StatsMissing, Unreachable
from checks.database.config import DatabaseConfig, Target
from checks.database.stats import (Period, Statement, Totals, filter_columns, month_end, period, select, shorten,
                                   since, tables, totals)

UP = Metric("database_up", "", "1 when the database answered the last run's statistics queries, 0 when not.")
CALLS = Metric("database_query_calls_total", "", "Runs of the report's statements (pg_stat_statements).", "counter")
SECONDS = Metric("database_query_exec_seconds_total", "seconds", "Time spent running the report's statements.",
                 "counter")
SQUARES = Metric("database_query_exec_seconds_squared_total", "",
                 "Sum of the squared run times of the report's statements (the spread of a period's runs).",
                 "counter")
ROWS = Metric("database_query_rows_total", "", "Rows the report's statements returned or changed.", "counter")
MEAN = Metric("database_query_mean_seconds", "seconds", "Mean run time of the report since the previous run.")
SLOW_RATIO = Metric("database_query_slow_ratio", "ratio",
                    "Estimated share of the report's runs since the previous run longer than slow_after.")
SEQ_SCANS = Metric("database_table_seq_scans_total", "", "Sequential scans of a table a watched report reads.",
                   "counter")
SEQ_ROWS = Metric("database_table_seq_rows_read_total", "", "Rows read by sequential scans of that table.",
                  "counter")
INDEX_SCANS = Metric("database_table_index_scans_total", "", "Index scans of that table.", "counter")
TABLE_ROWS = Metric("database_table_rows", "", "Live rows of a table a watched report reads (the server's estimate).")
CONNECTIONS = Metric("database_connections_used_ratio", "ratio", "Client connections as a share of max_connections.")
LOCK_WAITS = Metric("database_lock_waits", "", "Lock requests waiting when the check ran.")
OLDEST_TRANSACTION = Metric("database_oldest_transaction_seconds", "seconds",
                            "How long the oldest open transaction had been open when the check ran.")
REPLICATION_LAG = Metric("database_replication_lag_seconds", "seconds", "How far replication is behind.")

SERVICE_INCIDENT = "database_service"
UP_KINDS = ("spike", "shift_up")

BASE = DetectorParams(window=1440, warmup=120, smooth=4, cooldown=120, persistence=3, trend_persistence=0)
"""The `medium` detector of a report's mean run time, one point per run (60 s) with enough runs in it: the last
day is the usual, the first two hours only learn. Three unusual periods in a row are needed; trends are not judged
(a report that slowly gets slower is found by slow_after)."""


@dataclass
class _TargetState:
    """What the check keeps of one target between runs."""

    session: Session
    totals: dict[str, Totals] = field(default_factory=dict)
    tables: dict[str, TableStats] = field(default_factory=dict)
    by_application: dict[str, set[int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Report:
    """One watched report in one run."""

    query: str
    statements: list[Statement]
    period: Period | None
    usual: float | None
    unusual: bool


class DatabaseCheck:
    name: ClassVar[str] = "database"
    Config: ClassVar[type[DatabaseConfig]] = DatabaseConfig
    requires: ClassVar[dict[str, str]] = {"psycopg": "psycopg[binary]"}  # imported when the check runs
    metrics: ClassVar[tuple[Metric, ...]] = (UP, CALLS, SECONDS, SQUARES, ROWS, MEAN, SLOW_RATIO, SEQ_SCANS, SEQ_ROWS,
                                             INDEX_SCANS, TABLE_ROWS, CONNECTIONS, LOCK_WAITS, OLDEST_TRANSACTION,
                                             REPLICATION_LAG)

    def __init__(self, config: DatabaseConfig):
        self.config = config
        self.params = config.detector_params(BASE)
        self.states = {t.name: _TargetState(Session(t, config.connect_timeout, config.statement_timeout))
                       for t in config.targets}

    def close(self) -> None:
        for state in self.states.values():
            state.session.close()

    def run(self, ctx: Context) -> CheckResult:
        statuses, observations, findings = [], [], []
        for target in self.config.targets:
            try:
                seen, found, summary = self._target(target, ctx)
            except CheckError as exc:  # e.g. the password's environment variable is missing
                statuses.append(ResourceStatus(target.name, Status.UNKNOWN, f"not checked: {exc}",
                                               {"target": target.name}))
                continue
            observations += seen
            findings += found
            worst = max((f.severity.status for f in found), default=Status.OK)
            statuses.append(ResourceStatus(target.name, worst, summary, {"target": target.name}))
        return CheckResult(self.name, tuple(statuses), tuple(observations), tuple(findings))

    # ------------------------------------------------------------------ one target

    def _target(self, target: Target, ctx: Context) -> tuple[list[Observation], list[Finding], str]:
        now, labels, state = ctx.now(), {"target": target.name}, self.states[target.name]
        queries = list(dict.fromkeys(w["query"] for w in ctx.wanted
                                     if w.get("target") == target.name and w.get("query")))
        try:
            setup = state.session.setup()
            server = state.session.server(self.config.long_transaction)
            statements = self._statements(state, queries) if setup.statements else []
            found_tables = state.session.tables(_tables_of(statements))
        except Unreachable as exc:
            ctx.log.warning("database %s did not answer: %s", target.name, exc)
            state.session.close()
            return [UP.observe(0, labels, now)], [self._unreachable(target, str(exc))], f"not answering: {exc}"
        except StatsMissing as exc:
            return [UP.observe(1, labels, now)], [self._stats_missing(target, str(exc))], "no query statistics"
        observations = [UP.observe(1, labels, now), *self._server_observations(server, labels, now)]
        findings = []
        if not setup.monitor:
            findings.append(self._permission_missing(target, setup.role))
        if not setup.statements:
            findings.append(self._stats_missing(target, "the pg_stat_statements extension is not installed in "
                                                        f"database {target.database}"))
        table_scans = self._scans(state, found_tables, labels, ctx, now, observations)
        summaries = []
        for query in queries:
            report = self._report(target, state, query, statements, ctx, now, observations)
            if report.period:
                summaries.append(f"{query}: {report.period.calls} runs, mean {_ms(report.period.mean)}")
            if report.period and self._slow(target, report):
                findings.append(self._query_slow(target, state, report, table_scans, server, ctx, now))
        summary = "; ".join(summaries) or describe_server(server, self.config.long_transaction)
        return observations, findings, summary

    def _statements(self, state: _TargetState, queries: Sequence[str]) -> list[Statement]:
        """The statements of every watched query: by tag, by the ids seen under an application_name, by id."""
        known = {i for ids in state.by_application.values() for i in ids}
        ids = [int(q) for q in queries if q.lstrip("-").isdigit()]
        statements = state.session.statements(queries, [*ids, *known])
        untagged = [q for q in queries if not select(statements, q, ())]
        for name, seen in state.session.by_application(untagged).items():
            state.by_application.setdefault(name, set()).update(seen)
        return statements

    def _server_observations(self, server: ServerState, labels: Mapping[str, str], now: float) -> list[Observation]:
        seen = [CONNECTIONS.observe(server.connections / max(1, server.max_connections), labels, now),
                LOCK_WAITS.observe(server.lock_waits, labels, now),
                OLDEST_TRANSACTION.observe(server.oldest_transaction, labels, now)]
        if server.replication_lag is not None:
            seen.append(REPLICATION_LAG.observe(server.replication_lag, labels, now))
        return seen

    def _scans(self, state: _TargetState, found: Sequence[TableStats], labels: Mapping[str, str], ctx: Context,
               now: float, observations: list[Observation]) -> dict[str, Scans]:
        """Each read table's scans since the previous reading (memory, else the stored counters) and its growth."""
        result = {}
        for table in found:
            table_labels = {**labels, "table": table.qualified}
            stored = _stored(ctx, (SEQ_SCANS, SEQ_ROWS, INDEX_SCANS), table_labels, now - 7 * 86400, now)
            before = state.tables.get(table.qualified) or (stored and TableStats(
                table.schema, table.name, 0, 0, int(stored[1][0]), int(stored[1][1]), int(stored[1][2]), 0, None))
            rows = ctx.history.series(TABLE_ROWS.name, table_labels, now - 7 * 86400)
            result[table.qualified] = scans(table, before or None, rows[0] if rows else None, now)
            state.tables[table.qualified] = table
            observations += [SEQ_SCANS.observe(table.seq_scans, table_labels, now),
                             SEQ_ROWS.observe(table.seq_rows_read, table_labels, now),
                             INDEX_SCANS.observe(table.index_scans, table_labels, now),
                             TABLE_ROWS.observe(table.rows, table_labels, now)]
        return result

    def _report(self, target: Target, state: _TargetState, query: str, statements: Sequence[Statement],
                ctx: Context, now: float, observations: list[Observation]) -> _Report:
        labels = {"target": target.name, "query": query}
        group = select(statements, query, state.by_application.get(query, ()))
        reading = totals(group, now)
        stored = _stored(ctx, (CALLS, SECONDS, SQUARES, ROWS), labels, now - 7 * 86400, now)
        before = state.totals.get(query) or (stored and Totals(stored[0], int(stored[1][0]), stored[1][1],
                                                               stored[1][2], int(stored[1][3])))
        state.totals[query] = reading
        observations += [CALLS.observe(reading.calls, labels, now), SECONDS.observe(reading.seconds, labels, now),
                         SQUARES.observe(reading.squares, labels, now), ROWS.observe(reading.rows, labels, now)]
        current = period(before or None, reading)
        if current is None or current.calls < self.config.min_calls:
            return _Report(query, group, current, None, False)
        observations += [MEAN.observe(current.mean, labels, now),
                         SLOW_RATIO.observe(current.slow_share(target.slow_after), labels, now)]
        detector = ctx.detectors.get(f"{target.name}/{query}/mean", self.params)
        usual = detector.usual()
        episode = detector.update(now, math.log(max(current.mean, 1e-6))).episode
        return _Report(query, group, current, math.exp(usual) if usual is not None else None, episode in UP_KINDS)

    def _slow(self, target: Target, report: _Report) -> bool:
        """Slower than the business floor, or unusually slow for this report and at least half of it."""
        assert report.period is not None
        mean = report.period.mean
        return mean > target.slow_after or (report.unusual and mean >= target.slow_after / 2)

    # ------------------------------------------------------------------ findings

    def _query_slow(self, target: Target, state: _TargetState, report: _Report, table_scans: Mapping[str, Scans],
                    server: ServerState, ctx: Context, now: float) -> Finding:
        current = report.period
        assert current is not None
        labels = {"target": target.name, "query": report.query}
        means = ctx.history.series(MEAN.name, labels, now - 31 * 86400)
        floor = target.slow_after / 2 if report.unusual else target.slow_after
        started = since([*means, (now, current.mean)], floor, now)
        read = [table_scans[name] for name in _qualified(_tables_of(report.statements), table_scans)]
        full = full_reads(read, self.config.large_table_rows)
        plan = state.session.plan(report.statements[0].text) if target.explain else None
        index = self._index(state, report.statements, full, plan)
        share = current.slow_share(target.slow_after)
        facts: dict[str, Any] = {
            "target": target.name, "query": report.query, "database": target.database, "calls": current.calls,
            "mean_seconds": current.mean, "usual_seconds": report.usual, "slow_after_seconds": target.slow_after,
            "slow_share": share, "period_seconds": current.seconds, "since": started, "month_end": month_end(now),
            "tables": [s.table.qualified for s in full], "index": index.statement if index else ""}
        evidence = {
            "database": f"{target.name} ({target.where})",
            "query id": ", ".join(str(s.queryid) for s in report.statements[:5]),
            "query": shorten(report.statements[0].text),
            "runs": f"{current.calls} in {format_duration(current.seconds)}: mean {_ms(current.mean)}, spread "
                    f"{_ms(current.spread)}, {share:.0%} estimated longer than {_ms(target.slow_after)}",
        }
        if report.usual is not None:
            evidence["usual mean"] = (f"{_ms(report.usual)} (median of the per-run means, up to the last "
                                      f"{self.params.window} runs)")
        evidence["tables"] = "; ".join(describe_table(s) for s in (full or read)) or "none found in the statistics"
        evidence["server"] = describe_server(server, self.config.long_transaction)
        if plan is not None:
            evidence["plan"] = costly_node(plan) if isinstance(plan, dict) else plan
        if index:
            evidence["suggested index"] = f"{index.statement} (about {format_bytes(index.size_bytes)}; " \
                                          f"agent suggest index {target.name} {report.query})"
        limit = f"slow_after {_ms(target.slow_after)}"
        evidence["rule"] = (f"mean run time above {limit}" if current.mean > target.slow_after else
                            f"mean run time at least half of {limit} and unusually high for this report "
                            f"(detection engine, sensitivity {self.config.sensitivity})")
        summary = (f"{target.name} {report.query}: mean {_ms(current.mean)} over {current.calls} runs "
                   f"(slow after {_ms(target.slow_after)})")
        return Finding(self.name, "database_query_slow", Severity.WARNING, f"{target.name}/{report.query}", labels,
                       summary, facts, evidence, incident="database_query")

    def _index(self, state: _TargetState, statements: Sequence[Statement], full: Sequence[Scans],
               plan: dict | str | None) -> IndexSuggestion | None:
        """An index for the table read in full the most, on the columns the report filters it by."""
        if not full:
            return None
        table = full[0].table
        wanted = [c for s in statements for c in filter_columns(s.text)]
        if isinstance(plan, dict) and "Filter" in plan:
            wanted = filter_columns(plan["Filter"]) + wanted
        widths, indexed = state.session.columns(table)
        return suggest_index(table, list(dict.fromkeys(wanted)), widths, indexed)

    def _unreachable(self, target: Target, error: str) -> Finding:
        return Finding(
            self.name, "database_unreachable", Severity.CRITICAL, target.name, {"target": target.name},
            f"{target.name} ({target.where}) did not answer", {"target": target.name, "database": target.database},
            {"database": f"{target.name} ({target.where})", "error": error,
             "rule": f"no connection within {format_duration(self.config.connect_timeout)}"},
            incident=SERVICE_INCIDENT)

    def _permission_missing(self, target: Target, role: str) -> Finding:
        grant = f"GRANT pg_monitor TO {role};"
        return self._setup("database_permission_missing", target, f"role {role} lacks pg_monitor",
                           {"role": role, "grant": grant},
                           {"missing grant": grant, "rule": "without pg_monitor other users' statements and sessions "
                                                            "are hidden (<insufficient privilege>)"})

    def _stats_missing(self, target: Target, reason: str) -> Finding:
        return self._setup("database_stats_missing", target, "pg_stat_statements cannot be read", {"reason": reason},
                           {"problem": reason, "fix": "shared_preload_libraries = 'pg_stat_statements' in "
                                                      "postgresql.conf (restart), then CREATE EXTENSION "
                                                      f"pg_stat_statements; in database {target.database}"})

    def _setup(self, kind: str, target: Target, summary: str, facts: dict[str, Any],
               evidence: dict[str, str]) -> Finding:
        """IT only: the labels match no business resource, so no department hears about the agent's setup."""
        return Finding(self.name, kind, Severity.WARNING, target.name, {"audience": "it", "setup_target": target.name},
                       f"{target.name}: {summary}", {"target": target.name, "database": target.database, **facts},
                       {"database": f"{target.name} ({target.where})", **evidence})

    # ------------------------------------------------------------------ agent suggest index

    def suggest_index(self, target_name: str, query: str, ctx: Context) -> IndexSuggestion:
        """The index that would stop the report's full reads (`agent suggest index`); raises CheckError if none."""
        state = self.states.get(target_name)
        if state is None:
            raise CheckError(f"unknown database target {target_name!r} "
                             f"(configured: {', '.join(self.states) or 'none'})")
        try:
            statements = select(self._statements(state, [query]), query, state.by_application.get(query, ()))
            if not statements:
                raise CheckError(f"{target_name}: no statement in pg_stat_statements matches {query!r}")
            read = [scans(t, None, None, ctx.now()) for t in state.session.tables(_tables_of(statements))]
            index = self._index(state, statements, full_reads(read, self.config.large_table_rows), None)
        except (Unreachable, StatsMissing) as exc:
            raise CheckError(f"{target_name}: {exc}") from None
        finally:
            state.session.close()
        if index is None:
            raise CheckError(f"{target_name}: {query} reads no large table in full on a column it filters by "
                             "that lacks an index; nothing to suggest")
        return index


def _tables_of(statements: Sequence[Statement]) -> list[str]:
    return list(dict.fromkeys(name for s in statements for name in tables(s.text)))


def _qualified(names: Sequence[str], known: Mapping[str, Any]) -> list[str]:
    """The qualified names (schema.table) of `names` as written in a query, among those read."""
    return [q for q in known if q in names or q.rpartition(".")[2] in names]


def _stored(ctx: Context, metrics: Sequence[Metric], labels: Mapping[str, str], since: float,
            now: float) -> tuple[float, list[float]] | None:
    """The newest reading an earlier run stored for every one of `metrics` (so one-shot runs see periods too)."""
    series = [dict(ctx.history.series(m.name, labels, since)) for m in metrics]
    common = sorted(ts for ts in set.intersection(*(set(s) for s in series)) if ts < now)
    if not common:
        return None
    return common[-1], [s[common[-1]] for s in series]


def _ms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
