"""Talking to PostgreSQL: read-only statistics queries on one persistent connection per target.

psycopg is imported here, when a check first connects, so an agent without
database targets never loads it. Nothing here reads a row of the customer's
tables: only statistics views, catalogs and, when allowed, a plan (EXPLAIN
without ANALYZE, which does not run the query).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from checks.database.causes import ServerState, TableStats
from checks.database.config import Target
from checks.database.stats import Statement, tag_pattern

APPLICATION_NAME = "forewarn"


class Unreachable(Exception):
    """No connection; the message is safe to show (libpq names the host, never the password)."""


class StatsMissing(Exception):
    """pg_stat_statements cannot be read; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class Setup:
    monitor: bool
    """The role has pg_monitor (or is a superuser): it sees every user's statements and activity."""
    statements: bool
    """pg_stat_statements is installed in this database."""
    role: str


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0]}" if text else exc.__class__.__name__


class Session:
    """One connection to a target, opened on first use and again after it broke; counts what it asks."""

    def __init__(self, target: Target, connect_timeout: float, statement_timeout: float):
        self.target = target
        self.connect_timeout, self.statement_timeout = connect_timeout, statement_timeout
        self.conn: Any = None
        self.queries = 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _connection(self) -> Any:
        import psycopg

        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return self.conn
        self.close()
        options: dict[str, Any] = dict(
            connect_timeout=max(1, round(self.connect_timeout)), application_name=APPLICATION_NAME,
            autocommit=True, options=f"-c statement_timeout={int(self.statement_timeout * 1000)} "
                                     "-c default_transaction_read_only=on")
        password = self.target.password()
        if password is not None:
            options["password"] = password
        if self.target.sslmode:
            options["sslmode"] = self.target.sslmode
        if self.target.sslrootcert:
            options["sslrootcert"] = str(self.target.sslrootcert)
        try:
            self.conn = psycopg.connect(self.target.url, prepare_threshold=None, **options)
        except psycopg.Error as exc:
            raise Unreachable(describe(exc)) from None
        return self.conn

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        import psycopg

        conn = self._connection()
        self.queries += 1
        try:
            return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError as exc:
            if conn.broken:
                raise Unreachable(describe(exc)) from None
            raise

    # ------------------------------------------------------------------ reads

    def setup(self) -> Setup:
        ((monitor, statements, role),) = self.rows(
            "SELECT pg_has_role(current_user, 'pg_monitor', 'USAGE') OR r.rolsuper,"
            " EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'), current_user"
            " FROM pg_roles r WHERE r.rolname = current_user")
        return Setup(bool(monitor), bool(statements), str(role))

    def statements(self, tags: Sequence[str], ids: Sequence[int]) -> list[Statement]:
        """This database's statements that carry one of `tags` in a comment or have one of `ids`."""
        import psycopg

        try:
            found = self.rows(
                "SELECT queryid, query, calls, total_exec_time / 1000, stddev_exec_time / 1000, rows"
                " FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND userid <> (SELECT oid FROM pg_roles WHERE rolname = current_user)"  # never our own queries
                " AND queryid IS NOT NULL AND (query ~ ANY(%s) OR queryid = ANY(%s))",
                ([tag_pattern(t) for t in tags], list(ids)))
        except (psycopg.errors.ObjectNotInPrerequisiteState, psycopg.errors.UndefinedTable) as exc:
            raise StatsMissing(describe(exc)) from None
        return [Statement(int(q), str(text), int(c), float(s), float(sd), int(r)) for q, text, c, s, sd, r in found]

    def by_application(self, names: Sequence[str]) -> dict[str, set[int]]:
        """Query ids running right now under each application_name (a sample, remembered by the caller)."""
        seen: dict[str, set[int]] = {}
        if names:
            for name, queryid in self.rows(
                    "SELECT application_name, query_id FROM pg_stat_activity WHERE datname = current_database()"
                    " AND query_id IS NOT NULL AND application_name = ANY(%s)", (list(names),)):
                seen.setdefault(name, set()).add(int(queryid))
        return seen

    def server(self, long_transaction: float) -> ServerState:
        ((connections, limit, waits, long, oldest, lag),) = self.rows(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
            " current_setting('max_connections')::int,"
            " (SELECT count(*) FROM pg_locks WHERE NOT granted),"
            " (SELECT count(*) FROM pg_stat_activity WHERE xact_start < now() - make_interval(secs => %s)),"
            " (SELECT coalesce(extract(epoch FROM now() - min(xact_start)), 0) FROM pg_stat_activity"
            "  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()),"
            " CASE WHEN pg_is_in_recovery() THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
            "  ELSE (SELECT extract(epoch FROM max(replay_lag)) FROM pg_stat_replication) END",
            (long_transaction,))
        return ServerState(int(connections), int(limit), int(waits), int(long), float(oldest),
                           None if lag is None else float(lag))

    def tables(self, names: Sequence[str]) -> list[TableStats]:
        """Statistics of the named tables (`table` or `schema.table`)."""
        if not names:
            return []
        found = self.rows(
            "SELECT schemaname, relname, n_live_tup, n_dead_tup, coalesce(seq_scan, 0), coalesce(seq_tup_read, 0),"
            " coalesce(idx_scan, 0), pg_total_relation_size(relid),"
            " extract(epoch FROM greatest(last_vacuum, last_autovacuum))"
            " FROM pg_stat_user_tables WHERE relname = ANY(%s) OR schemaname || '.' || relname = ANY(%s)",
            ([n.rpartition(".")[2] for n in names], list(names)))
        wanted = set(names)
        return [TableStats(s, n, int(r), int(d), int(sq), int(sr), int(ix), int(size), v) for s, n, r, d, sq, sr, ix,
                size, v in found if n in wanted or f"{s}.{n}" in wanted]

    def columns(self, table: TableStats) -> tuple[dict[str, int], list[str]]:
        """The table's columns with their average width in bytes, and the leading column of each index."""
        widths = {name: int(width) for name, width in self.rows(
            "SELECT a.attname, coalesce(s.avg_width, nullif(a.attlen, -1), 32) FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname"
            " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
            (table.schema, table.name))}
        indexed = [str(name) for (name,) in self.rows(
            "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE n.nspname = %s AND c.relname = %s", (table.schema, table.name))]
        return widths, indexed

    def plan(self, text: str) -> dict | str:
        """The generic plan of a normalised SELECT (never executed), or why there is none."""
        import psycopg

        if ";" in text or not re.match(r"\s*(/\*.*?\*/\s*)*(select|with)\b", text, re.IGNORECASE | re.DOTALL):
            return "only single SELECT statements are explained"
        count = max((int(n) for n in re.findall(r"\$(\d+)", text)), default=0)
        execute = "EXECUTE forewarn_plan" + (f"({', '.join(['NULL'] * count)})" if count else "")
        conn = self._connection()
        try:
            with conn.transaction():
                self.queries += 3
                conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                conn.execute(f"PREPARE forewarn_plan AS {text}")
                ((plan,),) = conn.execute(f"EXPLAIN (FORMAT JSON) {execute}").fetchall()
        except psycopg.errors.InsufficientPrivilege:
            return "not allowed: the role may not read the tables (GRANT SELECT on them, or pg_read_all_data)"
        except psycopg.Error as exc:
            return f"not available ({describe(exc)})"
        finally:
            self.queries += 1
            conn.execute("DEALLOCATE ALL")  # the connection prepares nothing else (prepare_threshold=None)
        return plan[0]["Plan"]
