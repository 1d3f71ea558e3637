"""Why a report is slow, from what the statistics views already know, and the index that would fix it.

The evidence stands on pg_stat_user_tables, pg_stat_activity, pg_locks and
pg_stat_replication, which `pg_monitor` may read: a large table read in full
again and again (sequential scans, rows read, growth), dead rows waiting for
vacuum, lock waits, long transactions, connections against max_connections,
replication lag. The index is a proposal for a person to review; nothing here
changes the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from agent.api import format_bytes, format_duration

LEAF_FILL = 0.9
"""B-tree leaf pages are filled to 90% by CREATE INDEX."""
TUPLE_OVERHEAD = 8 + 4
"""Index tuple header plus its line pointer, in bytes."""


@dataclass(frozen=True, slots=True)
class TableStats:
    """One row of pg_stat_user_tables, with the table's size."""

    schema: str
    name: str
    rows: int
    dead_rows: int
    seq_scans: int
    seq_rows_read: int
    index_scans: int
    size_bytes: int
    vacuumed: float | None
    """Last (auto)vacuum, unix seconds; None when never."""

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True, slots=True)
class ServerState:
    connections: int
    max_connections: int
    lock_waits: int
    long_transactions: int
    oldest_transaction: float
    """Seconds the oldest open transaction has been open (0 when none)."""
    replication_lag: float | None
    """Seconds a standby (or this standby) is behind; None without replication."""


@dataclass(frozen=True, slots=True)
class Scans:
    """What a table went through since the previous reading."""

    table: TableStats
    seq_scans: int
    seq_rows_read: int
    index_scans: int
    grown: int | None
    """Rows added since the oldest stored reading; None without one."""
    over: float | None
    """Seconds that growth took."""


@dataclass(frozen=True, slots=True)
class IndexSuggestion:
    table: str
    columns: tuple[str, ...]
    statement: str
    size_bytes: float
    why: str


def scans(now: TableStats, before: TableStats | None, oldest_rows: tuple[float, float] | None,
          at: float) -> Scans:
    """Differences since `before` (the whole count when there is none); growth since `oldest_rows` (ts, rows)."""
    def delta(new: int, old: int | None) -> int:
        return new - old if old is not None and new >= old else new

    grown = now.rows - int(oldest_rows[1]) if oldest_rows else None
    return Scans(now, delta(now.seq_scans, before and before.seq_scans),
                 delta(now.seq_rows_read, before and before.seq_rows_read),
                 delta(now.index_scans, before and before.index_scans), grown,
                 at - oldest_rows[0] if oldest_rows else None)


def full_reads(found: Sequence[Scans], large_rows: int) -> list[Scans]:
    """Large tables read in full in the period, most rows read first: the usual cause of a slow report."""
    return sorted((s for s in found if s.seq_scans and s.table.rows >= large_rows),
                  key=lambda s: -s.seq_rows_read)


def describe_table(s: Scans) -> str:
    t = s.table
    text = (f"{t.qualified}: {t.rows:,} rows, {format_bytes(t.size_bytes)}; since the last reading "
            f"{s.seq_scans:,} sequential scans reading {s.seq_rows_read:,} rows, {s.index_scans:,} index scans")
    if s.grown is not None and s.over:
        text += f"; {s.grown:+,} rows in {format_duration(s.over)}"
    if t.rows and t.dead_rows / (t.rows + t.dead_rows) >= 0.1:
        vacuumed = "never vacuumed" if t.vacuumed is None else "vacuumed since"
        text += f"; {t.dead_rows:,} dead rows ({t.dead_rows / (t.rows + t.dead_rows):.0%}, {vacuumed})"
    return text


def describe_server(state: ServerState, long_transaction: float) -> str:
    parts = [f"{state.connections} of {state.max_connections} connections in use",
             f"{state.lock_waits} lock waits" if state.lock_waits else "no lock waits"]
    if state.long_transactions:
        parts.append(f"{state.long_transactions} transactions open longer than {format_duration(long_transaction)} "
                     f"(oldest {format_duration(state.oldest_transaction)})")
    else:
        parts.append(f"no transaction open longer than {format_duration(long_transaction)}")
    parts.append("no replication" if state.replication_lag is None
                 else f"replication {state.replication_lag:.1f} s behind")
    return ", ".join(parts)


def costly_node(plan: Mapping) -> str:
    """The plan node that costs most by itself (its total cost less its children's), in one line."""
    def walk(node: Mapping) -> list[Mapping]:
        return [node, *(n for child in node.get("Plans", ()) for n in walk(child))]

    def own(node: Mapping) -> float:
        return node["Total Cost"] - sum(child["Total Cost"] for child in node.get("Plans", ()))

    node = max(walk(plan), key=own)
    where = f" on {node['Schema']}.{node['Relation Name']}" if "Relation Name" in node and "Schema" in node else (
        f" on {node['Relation Name']}" if "Relation Name" in node else "")
    text = (f"{node['Node Type']}{where} (cost {own(node):,.0f} of {plan['Total Cost']:,.0f}, "
            f"~{node['Plan Rows']:,} rows")
    return text + (f", filter {node['Filter']})" if "Filter" in node else ")")


def suggest_index(table: TableStats, wanted: Sequence[str], widths: Mapping[str, int],
                  indexed: Sequence[str]) -> IndexSuggestion | None:
    """A b-tree on the filter columns the table has, unless an index already leads with the first of them.

    `widths`: the table's columns and their average width in bytes; `indexed`: the
    leading column of each existing index.
    """
    columns = tuple(c for c in wanted if c in widths)
    if not columns or columns[0] in indexed:
        return None
    name = _identifier(f"{table.name}_{'_'.join(columns)}_idx"[:63])
    statement = (f"CREATE INDEX CONCURRENTLY {name} ON {_identifier(table.schema)}.{_identifier(table.name)} "
                 f"({', '.join(_identifier(c) for c in columns)});")
    entry = TUPLE_OVERHEAD + _align(sum(widths[c] for c in columns))
    size = table.rows * entry / LEAF_FILL
    why = (f"the report filters {table.qualified} on {', '.join(columns)}, and the table ({table.rows:,} rows) is "
           f"read in full each time for want of an index on {'them' if len(columns) > 1 else 'it'}")
    return IndexSuggestion(table.qualified, columns, statement, size, why)


def _align(width: int) -> int:
    return (width + 7) // 8 * 8


def _identifier(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'
