"""The state database: one SQLite file (WAL) holding everything that must survive a restart.

Monitoring must keep speaking when the host is in trouble. When the state
filesystem fills, the agent first releases a reserve file kept beside the
database, then moves the state into an in-memory database shared by every
Store of that file in the process (and says so in the log and /healthz); it
writes the state back when space returns. A damaged database (failing `PRAGMA
quick_check`, or emptied) is an error for commands; the daemon (`keep_going`)
runs on a fresh in-memory state instead and says so. The file is created
atomically (built aside, then hard-linked into place), so a concurrent opener
never sees a half-made schema and an empty file always means damage.

Series history is kept in tiers so a year of 1-minute samples stays small:
raw samples for two days, 5-minute means for five weeks, hourly means for 400 days.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from agent.api import Observation, StateError

log = logging.getLogger(__name__)

FILENAME = "forewarn.db"
RESERVE = "forewarn.reserve"
RESERVE_BYTES = 8 << 20
"""Preallocated beside the database and released when its filesystem fills, so the agent still writes."""
LOW_WATER = 1 << 20
"""Free bytes below which a write first releases the reserve, then moves the state to memory."""
RECOVER_EVERY = 5.0
"""Seconds between checks for free space again while the state lives in memory."""
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
    """
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    """,
)


@dataclass
class _Shared:
    """What every Store of one state file in this process shares: one lock, and where the state lives now."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    memory: sqlite3.Connection | None = None
    """Keeps the in-memory state alive while it cannot live on disk."""
    problem: str = ""
    recoverable: bool = False
    """True when the state goes back to disk once there is room (a full filesystem, not a damaged file)."""
    generation: int = 0
    """Bumped on every move between disk and memory; each Store reconnects when it sees a new one."""
    checked: float = 0.0


_SHARED: dict[str, _Shared] = {}
_SHARED_LOCK = threading.Lock()


class Store:
    """Thin, explicit access to the state file. Stores of one file in a process share one lock."""

    def __init__(self, directory: Path, keep_going: bool = False):
        """`keep_going` (the daemon): a damaged database is replaced by in-memory state, not an error."""
        self.path = Path(directory) / FILENAME
        with _SHARED_LOCK:
            self.shared = _SHARED.setdefault(os.path.abspath(self.path), _Shared())
        self.lock = self.shared.lock
        """Held for each statement and across a transaction: checks read history from their threads."""
        self._depth = 0
        self._journal: list[tuple[str, tuple]] = []
        """The statements of the open transaction, replayed in memory if the filesystem fills under it."""
        self._series_ids: dict[tuple[str, str], int] = {}
        self._last_compaction = 0.0
        with self.lock:
            self._generation = self.shared.generation
            if self.shared.memory is not None:
                self.db = _connect_memory(self.shared)
                return
            try:
                self.db = _open_disk(self.path)
            except _Full as exc:
                self.db = _read_only(self.path)  # its state is copied to memory when it can be read
                self._to_memory(str(exc), recoverable=True)
            except _Damaged as exc:
                if not keep_going:
                    raise
                self._to_memory(str(exc), recoverable=False)
            else:
                _keep_reserve(self.path)

    @property
    def problem(self) -> str:
        """Why the state is not on disk right now ("" when it is)."""
        return self.shared.problem

    def close(self) -> None:
        self.db.close()

    def transaction(self):
        """A write transaction; nested uses join the outer one, so callers can compose them."""
        return _Transaction(self)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        params = tuple(params)
        with self.lock:
            if self._depth == 0:
                self._ready()
            try:
                try:
                    cursor = self.db.execute(sql, params)
                except sqlite3.DatabaseError as exc:
                    if not _is_full(exc):
                        raise
                    self._move_to_memory()
                    cursor = self.db.execute(sql, params)
            except sqlite3.DatabaseError as exc:
                raise _state_error(self.path, exc) from None
            if self._depth:
                self._journal.append((sql, params))
            return cursor

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self.lock:
            cursor = self.execute(sql, params)
            try:
                return cursor.fetchall()
            except sqlite3.DatabaseError as exc:
                raise _state_error(self.path, exc) from None

    # --------------------------------------------------------- disk or memory

    def _ready(self) -> None:
        """Before a statement outside a transaction: make room, move, or follow a move (lock held)."""
        shared = self.shared
        if shared.memory is None:
            self._make_room()
        elif shared.recoverable and time.monotonic() - shared.checked >= RECOVER_EVERY:
            shared.checked = time.monotonic()
            self._back_to_disk()
        self._follow()

    def _follow(self) -> None:
        """Reconnects after the state moved between disk and memory (lock held)."""
        shared = self.shared
        if self._generation != shared.generation:
            old, self._generation = self.db, shared.generation
            self.db = _connect_memory(shared) if shared.memory is not None else _connect(self.path)
            old.close()

    def _move_to_memory(self) -> None:
        """The filesystem filled under a write: the open transaction is done again in memory."""
        in_transaction = self._depth > 0
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self._to_memory(f"the state filesystem {self.path.parent} is full", recoverable=True)
        self._follow()
        if in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            for sql, params in self._journal:
                self.db.execute(sql, params)

    def _make_room(self) -> None:
        if _free(self.path.parent) >= LOW_WATER:
            return
        reserve = self.path.with_name(RESERVE)
        if reserve.is_file() and not reserve.is_symlink():
            reserve.unlink()
            log.warning("%s: the state filesystem is full; released the %d MB reserve to keep writing",
                        self.path.parent, RESERVE_BYTES >> 20)
            if _free(self.path.parent) >= LOW_WATER:
                return
        self._to_memory(f"the state filesystem {self.path.parent} is full", recoverable=True)

    def _to_memory(self, reason: str, recoverable: bool) -> None:
        """Moves the state into memory: a copy of the disk state when it is readable, a fresh one otherwise."""
        shared = self.shared
        if shared.memory is not None:  # another Store of this file moved it already
            return
        memory = sqlite3.connect(_memory_uri(shared), uri=True, isolation_level=None, check_same_thread=False)
        try:
            self.db.backup(memory)
        except (AttributeError, sqlite3.DatabaseError):
            pass  # no readable disk state: a fresh one
        _migrate(memory, self.path)
        shared.memory, shared.problem, shared.recoverable = memory, reason, recoverable
        shared.generation += 1
        shared.checked = time.monotonic()
        if getattr(self, "db", None) is None:
            self.db, self._generation = _connect_memory(shared), shared.generation
        then = "until there is room again" if recoverable else "until the file is replaced and the agent restarted"
        log.error("%s: %s; keeping the state in memory %s (lost if the agent stops)", self.path, reason, then)

    def _back_to_disk(self) -> None:
        shared = self.shared
        pages = shared.memory.execute("PRAGMA page_count").fetchone()[0] * 4096
        if _free(self.path.parent) < pages + RESERVE_BYTES + 2 * LOW_WATER:
            return
        try:
            disk = _open_disk(self.path)
            try:
                shared.memory.backup(disk)
                disk.execute("PRAGMA journal_mode=WAL")
            finally:
                disk.close()
        except (StateError, sqlite3.DatabaseError) as exc:
            log.warning("%s: cannot write the state back to disk yet: %s", self.path, exc)
            return
        shared.memory.close()
        shared.memory, shared.problem, shared.recoverable = None, "", False
        shared.generation += 1
        _keep_reserve(self.path)
        log.warning("%s: there is room again; the state is back on disk", self.path)

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
            for row in rows:
                self.execute("INSERT OR REPLACE INTO samples VALUES (?, 0, ?, ?)", row)
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
                self.execute(
                    f"""INSERT OR REPLACE INTO samples
                        SELECT series_id, ?, CAST(ts / {bucket} AS INTEGER) * {bucket}, AVG(value)
                        FROM samples WHERE tier = ? AND ts < ?
                        GROUP BY series_id, CAST(ts / {bucket} AS INTEGER)""",
                    (next_tier, tier, cutoff),
                )
                self.execute("DELETE FROM samples WHERE tier = ? AND ts < ?", (tier, cutoff))
            last_tier, _, keep = TIERS[-1]
            self.execute("DELETE FROM samples WHERE tier = ? AND ts < ?", (last_tier, now - keep))
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
                store._ready()
                store.db.execute("BEGIN IMMEDIATE")
                store._journal = []
            except sqlite3.DatabaseError as exc:
                store.lock.release()
                raise _state_error(store.path, exc) from None
            except BaseException:
                store.lock.release()
                raise
        store._depth += 1
        return store

    def __exit__(self, exc_type, exc, tb):
        store = self.store
        store._depth -= 1
        try:
            if store._depth == 0:
                _finish(store, "ROLLBACK" if exc_type else "COMMIT")
        finally:
            store.lock.release()
        return False


def _finish(store: Store, verb: str) -> None:
    try:
        try:
            store.db.execute(verb)
        except sqlite3.DatabaseError as exc:
            if verb != "COMMIT" or not _is_full(exc):
                raise
            store._depth += 1  # still inside: the transaction is replayed in memory, then committed there
            try:
                store._move_to_memory()
            finally:
                store._depth -= 1
            store.db.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        if store.db.in_transaction:
            store.db.execute("ROLLBACK")
        raise _state_error(store.path, exc) from None


# ----------------------------------------------------------------- opening


class _Full(StateError):
    """The state filesystem has no room for the database."""


class _Damaged(StateError):
    """The database file is damaged or emptied: commands stop, the daemon goes on in memory."""


def _open_disk(path: Path) -> sqlite3.Connection:
    """The database on disk, created if missing, refused when it is a link, empty or damaged."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"{path.parent}: cannot create the state directory ({exc.strerror})") from None
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if name.is_symlink():
            raise StateError(f"{name}: is a symbolic link; the agent does not write through links (remove it)")
    try:
        if not path.exists():
            _create(path)
        elif path.stat().st_size == 0:
            raise _Damaged(f"{path}: the state database is empty (truncated?); its incidents and silences are "
                             "gone: move it aside and the agent will start a new one")
        db = _connect(path)
        verdict = " ".join(db.execute("PRAGMA quick_check(1)").fetchone()[0].split("***")[-1].split())
        if verdict != "ok":
            db.close()
            raise _Damaged(f"{path}: the state database is damaged ({verdict}); "
                             "move it aside and the agent will start a new one")
        _migrate(db, path)
        db.execute("BEGIN IMMEDIATE")  # every user writes: a lock held elsewhere is one clear line now
        db.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        raise _state_error(path, exc) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _Full(f"the state filesystem {path.parent} is full") from None
        raise StateError(f"{path}: cannot create the state database ({exc.strerror})") from None
    return db


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _create(path: Path) -> None:
    """Builds the schema in a private file, then links it into place: an opener sees all of it or no file."""
    aside = path.with_name(f".{FILENAME}.{os.getpid()}.{threading.get_ident()}.new")
    aside.unlink(missing_ok=True)
    os.close(os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    try:
        db = _connect(aside)
        try:
            _migrate(db, path)
        finally:
            db.close()
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process created it first: theirs is as good
    finally:
        aside.unlink(missing_ok=True)


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Brings the schema up to date; the version is read again under the write lock, so two openers
    never both apply a migration."""
    if _version(db, path) == len(MIGRATIONS):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        version = _version(db, path)
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _version(db: sqlite3.Connection, path: Path) -> int:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StateError(f"{path}: written by a newer Forewarn (schema {version}); upgrade the agent")
    return version


def _read_only(path: Path) -> sqlite3.Connection | None:
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False) if path.exists() else None
    except sqlite3.DatabaseError:
        return None


def _memory_uri(shared: _Shared) -> str:
    return f"file:forewarn-{id(shared)}?mode=memory&cache=shared"


def _connect_memory(shared: _Shared) -> sqlite3.Connection:
    return sqlite3.connect(_memory_uri(shared), uri=True, isolation_level=None, check_same_thread=False)


def _free(directory: Path) -> int:
    try:
        stat = os.statvfs(directory)
    except OSError:
        return LOW_WATER  # cannot tell: carry on and let a write say what is wrong
    return stat.f_bavail * stat.f_frsize


def _keep_reserve(path: Path) -> None:
    """Preallocates the reserve while there is ample room (never the last of it)."""
    reserve = path.with_name(RESERVE)
    if reserve.exists() or reserve.is_symlink() or _free(path.parent) < 4 * RESERVE_BYTES:
        return
    try:
        fd = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return  # another process made it, or the directory is read-only: nothing to keep
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError:
        reserve.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _is_full(exc: sqlite3.DatabaseError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)


def _state_error(path: Path, exc: sqlite3.DatabaseError) -> StateError:
    text = str(exc)
    if _is_full(exc):
        return _Full(f"{path}: the state filesystem is full ({text})")
    if "locked" in text or "busy" in text:
        return StateError(f"{path}: the state database is locked by another process; "
                          "is another agent running with the same state_dir?")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return _Damaged(f"{path}: the state database is damaged ({text}); "
                          "move it aside and the agent will start a new one")
    if "readonly" in text or "unable to open" in text:
        return StateError(f"{path}: the state database cannot be written ({text})")
    return StateError(f"{path}: state database error ({text})")
