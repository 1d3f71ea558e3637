"""The state database: one SQLite file (WAL) holding everything that must survive a restart.

Series history is kept in tiers so a year of 1-minute samples stays small:
raw samples for two days, 5-minute means for five weeks, hourly means for 400 days.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from agent.api import Observation, StateError

FILENAME = "forewarn.db"
TIERS = (  # (tier, bucket seconds, retention seconds)
    (0, 0, 2 * 86400),
    (1, 300, 35 * 86400),
    (2, 3600, 400 * 86400),
)
COMPACT_EVERY = 300.0

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        labels TEXT NOT NULL,
        UNIQUE (name, labels)
    );
    CREATE TABLE samples (
        series_id INTEGER NOT NULL REFERENCES series(id),
        tier INTEGER NOT NULL,
        ts REAL NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (series_id, tier, ts)
    ) WITHOUT ROWID;
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        dedup_key TEXT NOT NULL,
        owner TEXT NOT NULL,
        state TEXT NOT NULL,
        severity TEXT NOT NULL,
        opened REAL NOT NULL,
        updated REAL NOT NULL,
        resolved REAL,
        data TEXT NOT NULL
    );
    CREATE INDEX incidents_open ON incidents (dedup_key, owner) WHERE state != 'resolved';
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        owner TEXT NOT NULL,
        notice TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        next_attempt REAL NOT NULL,
        last_error TEXT,
        delivered REAL
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt);
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY,
        matcher TEXT NOT NULL,
        starts REAL NOT NULL,
        ends REAL NOT NULL,
        author TEXT NOT NULL,
        comment TEXT NOT NULL
    );
    CREATE TABLE detector_state (key TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL);
    """,
)


class Store:
    """Thin, explicit access to the state file. One instance per process."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / FILENAME
        self.lock = threading.RLock()
        """Held for each statement and across a transaction: checks read history from their threads."""
        self._depth = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise _state_error(self.path, exc) from None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot create the state database ({exc.strerror})") from None
        self._series_ids: dict[tuple[str, str], int] = {}
        self._last_compaction = 0.0

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StateError(f"{self.path}: written by a newer Forewarn (schema {version}); upgrade the agent")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in script.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    def transaction(self):
        """A write transaction; nested uses join the outer one, so callers can compose them."""
        return _Transaction(self)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self.lock:
            try:
                return self.db.execute(sql, tuple(params))
            except sqlite3.DatabaseError as exc:
                raise _state_error(self.path, exc) from None

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self.lock:
            return self.execute(sql, params).fetchall()

    # ------------------------------------------------------------------ series

    def _series_id(self, name: str, labels: Mapping[str, str]) -> int:
        key = (name, json.dumps(dict(labels), sort_keys=True, ensure_ascii=False))
        with self.lock:
            if key not in self._series_ids:
                self.execute("INSERT OR IGNORE INTO series (name, labels) VALUES (?, ?)", key)
                [(series_id,)] = self.query("SELECT id FROM series WHERE name = ? AND labels = ?", key)
                self._series_ids[key] = series_id
            return self._series_ids[key]

    def record(self, observations: Iterable[Observation]) -> None:
        rows = [(self._series_id(o.name, o.labels), o.timestamp, o.value) for o in observations]
        if not rows:
            return
        with self.transaction():
            try:
                self.db.executemany("INSERT OR REPLACE INTO samples VALUES (?, 0, ?, ?)", rows)
            except sqlite3.DatabaseError as exc:
                raise _state_error(self.path, exc) from None
        now = max(ts for _, ts, _ in rows)
        if now - self._last_compaction >= COMPACT_EVERY:
            self.compact(now)

    def series(self, name: str, labels: Mapping[str, str], since: float) -> list[tuple[float, float]]:
        """All stored points of one series after `since`, oldest first, across tiers."""
        series_id = self._series_id(name, labels)
        rows = self.query("SELECT ts, value FROM samples WHERE series_id = ? AND ts >= ? ORDER BY ts",
                          (series_id, since))
        return [(ts, value) for ts, value in rows]

    def compact(self, now: float) -> None:
        """Rolls samples past a tier's retention into the next tier's means; drops the oldest."""
        with self.transaction():
            for (tier, _, keep), (next_tier, bucket, _) in zip(TIERS, TIERS[1:]):
                cutoff = now - keep
                self.db.execute(
                    f"""INSERT OR REPLACE INTO samples
                        SELECT series_id, ?, CAST(ts / {bucket} AS INTEGER) * {bucket}, AVG(value)
                        FROM samples WHERE tier = ? AND ts < ?
                        GROUP BY series_id, CAST(ts / {bucket} AS INTEGER)""",
                    (next_tier, tier, cutoff),
                )
                self.db.execute("DELETE FROM samples WHERE tier = ? AND ts < ?", (tier, cutoff))
            last_tier, _, keep = TIERS[-1]
            self.db.execute("DELETE FROM samples WHERE tier = ? AND ts < ?", (last_tier, now - keep))
        self._last_compaction = now

    # ------------------------------------------------------------ detector state

    def load_detector(self, key: str) -> dict | None:
        rows = self.query("SELECT state FROM detector_state WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def save_detector(self, key: str, state: dict) -> None:
        self.execute("INSERT OR REPLACE INTO detector_state VALUES (?, ?, ?)", (key, json.dumps(state), time.time()))


class _Transaction:
    def __init__(self, store: Store):
        self.store = store

    def __enter__(self):
        store = self.store
        store.lock.acquire()
        if store._depth == 0:
            try:
                store.db.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                store.lock.release()
                raise _state_error(store.path, exc) from None
        store._depth += 1
        return store

    def __exit__(self, exc_type, exc, tb):
        store = self.store
        store._depth -= 1
        try:
            if store._depth == 0:
                store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            store.lock.release()
        return False


def _state_error(path: Path, exc: sqlite3.DatabaseError) -> StateError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StateError(f"{path}: the state database is locked by another process; "
                          "is another agent running with the same state_dir?")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StateError(f"{path}: the state database is corrupt ({text}); "
                          "move it aside and the agent will start a new one")
    if "readonly" in text or "unable to open" in text:
        return StateError(f"{path}: the state database cannot be written ({text})")
    return StateError(f"{path}: state database error ({text})")
