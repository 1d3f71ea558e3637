"""Talking to the caches: one small request at a time, timed as a client application sees it.

redis-py and pymemcache are imported here, inside the functions that need them,
so an agent without cache targets never loads them. Nothing here reads or
returns a key name or a value of the customer's data.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, Protocol

from checks.cache.config import Endpoint, Target, endpoints
from checks.cache.server import OWN_CLIENT_NAME, ServerStats, from_memcached, from_redis
from checks.cache.stats import Probe


class Unreachable(Exception):
    """No answer at all; the message is safe to show (no secrets, no data)."""


class Client(Protocol):
    """A persistent connection to one target, plus a way to open fresh ones."""

    always_fresh: bool

    def open(self) -> Any: ...

    def request(self, conn: Any) -> None: ...

    def shut(self, conn: Any) -> None: ...

    def stats(self, conn: Any, since: float) -> ServerStats | None: ...


def describe(exc: BaseException) -> str:
    """An error as one line; redis-py and pymemcache messages carry addresses, never passwords."""
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0]}" if text else exc.__class__.__name__


class RedisClient:
    """redis:// rediss:// and sentinel:// targets, on raw redis-py connections (no reply parsing of data)."""

    always_fresh = False

    def __init__(self, target: Target, timeout: float, slowlog_entries: int):
        import redis  # here, not inside a timed probe: the import must not count as a wait

        self.target, self.timeout, self.redis = target, timeout, redis
        self.slowlog_entries = slowlog_entries
        self.errors = (redis.RedisError, OSError)

    def _address(self) -> Endpoint:
        if self.target.scheme != "sentinel":
            return endpoints(self.target.url)[0]
        from redis.sentinel import Sentinel

        sentinel = Sentinel([(e.host, e.port) for e in endpoints(self.target.url)], socket_timeout=self.timeout)
        try:
            host, port = sentinel.discover_master(self.target.service())
        except self.errors as exc:
            raise Unreachable(f"no master for {self.target.service()} from sentinel: {describe(exc)}") from None
        finally:
            for conn in sentinel.sentinels:
                conn.close()
        return Endpoint(host, int(port))

    def open(self) -> Any:
        where = self._address()
        options: dict[str, Any] = dict(
            host=where.host, port=where.port, db=self.target.db(), username=self.target.username,
            password=self.target.password(), socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
            client_name=OWN_CLIENT_NAME)
        kind: type = self.redis.Connection
        if self.target.scheme == "rediss":
            kind = self.redis.SSLConnection
            options.update(ssl_ca_certs=str(self.target.tls_ca_file) if self.target.tls_ca_file else None,
                           ssl_cert_reqs="required" if self.target.tls_verify else "none",
                           ssl_check_hostname=self.target.tls_verify)
        conn = kind(**options)
        try:
            conn.connect()
        except self.errors as exc:
            conn.disconnect()
            raise Unreachable(describe(exc)) from None
        return conn

    def request(self, conn: Any) -> None:
        try:
            if self.target.probe == "get":
                conn.send_command("GET", self.target.probe_key)
            else:
                conn.send_command("PING")
            conn.read_response()
        except self.errors as exc:
            raise Unreachable(describe(exc)) from None

    def shut(self, conn: Any) -> None:
        conn.disconnect()

    def stats(self, conn: Any, since: float) -> ServerStats:
        def call(*args: Any) -> Any:
            try:
                conn.send_command(*args)
                return conn.read_response()
            except self.redis.RedisError:  # LATENCY / SLOWLOG may be renamed or refused by ACLs
                return None

        raw = call("INFO") or b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))
        latency = call("LATENCY", "LATEST") or []
        slowlog = (call("SLOWLOG", "GET", self.slowlog_entries) or []) if self.slowlog_entries else []
        return from_redis(info, latency, slowlog, since)


class MemcachedClient:
    """memcached:// targets through pymemcache; the probe is `version` or a GET of our own probe key."""

    always_fresh = False

    def __init__(self, target: Target, timeout: float):
        from pymemcache.client.base import Client as Memcache
        from pymemcache.exceptions import MemcacheError

        self.target, self.timeout, self.memcache = target, timeout, Memcache
        self.errors = (MemcacheError, OSError)

    def open(self) -> Any:
        where = endpoints(self.target.url)[0]
        client = self.memcache((where.host, where.port), connect_timeout=self.timeout, timeout=self.timeout,
                               no_delay=True)
        try:
            client._connect()  # pymemcache connects lazily; connect now so connect time is seen
        except self.errors as exc:
            client.close()
            raise Unreachable(describe(exc)) from None
        return client

    def request(self, conn: Any) -> None:
        try:
            if self.target.probe == "get":
                conn.get(self.target.probe_key)
            else:
                conn.version()
        except self.errors as exc:
            raise Unreachable(describe(exc)) from None

    def shut(self, conn: Any) -> None:
        conn.close()

    def stats(self, conn: Any, since: float) -> ServerStats:
        return from_memcached(conn.stats())


class TcpClient:
    """tcp:// targets: only the time to connect is measured."""

    always_fresh = True

    def __init__(self, target: Target, timeout: float):
        self.target, self.timeout = target, timeout

    def open(self) -> Any:
        where = endpoints(self.target.url)[0]
        try:
            return socket.create_connection((where.host, where.port), timeout=self.timeout)
        except OSError as exc:
            raise Unreachable(describe(exc)) from None

    def request(self, conn: Any) -> None:
        return None

    def shut(self, conn: Any) -> None:
        conn.close()

    def stats(self, conn: Any, since: float) -> None:
        return None


def client_for(target: Target, timeout: float, slowlog_entries: int) -> Client:
    if target.kind == "redis":
        return RedisClient(target, timeout, slowlog_entries)
    if target.kind == "memcached":
        return MemcachedClient(target, timeout)
    return TcpClient(target, timeout)


class Session:
    """One target's persistent connection, kept by the check between runs."""

    def __init__(self, client: Client):
        self.client = client
        self.conn: Any = None

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.client.shut(self.conn)
            except Exception:  # closing a broken connection may fail too; it is gone either way
                pass
            self.conn = None

    def _alive(self) -> None:
        """An idle connection the server dropped between runs is replaced, not counted as a slow probe."""
        if self.conn is None:
            return
        try:
            self.client.request(self.conn)
        except Unreachable:
            self.close()

    def probe(self, fresh: bool, at: float) -> tuple[Probe, str]:
        """One timed request; on a new connection when `fresh` (or when there is none yet)."""
        fresh = fresh or self.conn is None  # always_fresh clients never keep one
        conn = None
        started = time.perf_counter()
        try:
            conn = self.client.open() if fresh else self.conn
            self.client.request(conn)
        except Unreachable as exc:
            elapsed = time.perf_counter() - started
            if conn is not None and conn is not self.conn:
                self.client.shut(conn)
            elif conn is not None:
                self.close()
            return Probe(at, elapsed, ok=False, fresh=fresh), str(exc)
        elapsed = time.perf_counter() - started
        if fresh and self.conn is None and not self.client.always_fresh:
            self.conn = conn
        elif fresh:
            self.client.shut(conn)
        return Probe(at, elapsed, ok=True, fresh=fresh), ""

    def cycle(self, count: int, seconds: float, fresh_every: int, patience: float,
              now: Callable[[], float], sleep: Callable[[float], None] = time.sleep) -> tuple[list[Probe], str]:
        """`count` probes evenly over `seconds`; stops early when a stalled server puts it `patience` behind."""
        self._alive()
        start, step = time.perf_counter(), seconds / count
        probes: list[Probe] = []
        error = ""
        for i in range(count):
            delay = start + i * step - time.perf_counter()
            if delay > 0:
                sleep(delay)
            elif -delay > patience:
                break
            probe, reason = self.probe(i % fresh_every == fresh_every - 1, now())
            probes.append(probe)
            error = reason or error
        return probes, error

    def stats(self, since: float) -> ServerStats | None:
        """Server-side counters on the persistent connection; None when the server would not say."""
        if self.conn is None:
            return None
        try:
            return self.client.stats(self.conn, since)
        except Exception:  # stats are evidence, not a probe: losing them must not fail the check
            self.close()
            return None
