"""Fixtures that start real servers on 127.0.0.1 (see servers.py).

Session-scoped servers are shared by all tests (tests use their own keys,
buckets and labels); the `fresh_*` and `start_server` fixtures give a test its
own instance when it changes server state (maxmemory, a password, a stall).
When a test fails, the log tail of every server it used is added to its report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.integration.servers import (
    Alertmanager,
    DelayProxy,
    Memcached,
    MotoServer,
    NodeExporter,
    PostgresServer,
    Prometheus,
    RedisServer,
    SmtpServer,
    alertmanager_pair,
    require_binary,
    tmpfs,
)

HERE = Path(__file__).parent
S = TypeVar("S")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration is an integration test."""
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the log tail of each server the test used to its report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for name, value in getattr(item, "funcargs", {}).items():
        servers = value.started if isinstance(value, ServerStarter) else [value]
        for server in servers:
            if hasattr(server, "log_tail"):
                where = getattr(server, "log_path", None) or "in-process"
                report.sections.append((f"{name}: {type(server).__name__} log ({where})",
                                        server.log_tail()))


class ServerStarter:
    """Starts servers for one test and stops them all when it ends."""

    def __init__(self) -> None:
        self.started: list[Any] = []

    def __call__(self, server: S) -> S:
        server.start()  # type: ignore[attr-defined]
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        errors = []
        for server in reversed(self.started):
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def start_server() -> Iterator[Callable[[S], S]]:
    """`start_server(RedisServer(password="s3cret"))`: started now, stopped after the test."""
    starter = ServerStarter()
    try:
        yield starter
    finally:
        starter.stop_all()


def _serve(server: S) -> Iterator[S]:
    server.start()  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()  # type: ignore[attr-defined]


# Shared for the session ---------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """Shared redis; DEBUG SLEEP allowed, every command in SLOWLOG."""
    yield from _serve(RedisServer(extra_args=["--enable-debug-command", "local",
                                              "--slowlog-log-slower-than", "0"]))


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[Memcached]:
    yield from _serve(Memcached())


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Shared PostgreSQL 15 with pg_stat_statements preloaded (tests use their own databases and roles)."""
    yield from _serve(PostgresServer())


@pytest.fixture(scope="session")
def prometheus_server() -> Iterator[Prometheus]:
    """Prometheus scraping itself every second."""
    yield from _serve(Prometheus())


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool (for `promtool check metrics`)."""
    return require_binary("promtool")


@pytest.fixture(scope="session")
def alertmanager_server() -> Iterator[Alertmanager]:
    yield from _serve(Alertmanager())


@pytest.fixture(scope="session")
def node_exporter() -> Iterator[NodeExporter]:
    yield from _serve(NodeExporter())


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    yield from _serve(MotoServer())


# One per test --------------------------------------------------------------


@pytest.fixture
def fresh_redis() -> Iterator[RedisServer]:
    """A redis of the test's own (same flags as redis_server), empty."""
    yield from _serve(RedisServer(extra_args=["--enable-debug-command", "local",
                                              "--slowlog-log-slower-than", "0"]))


@pytest.fixture
def fresh_moto(moto_server: MotoServer) -> MotoServer:
    """The shared moto server, emptied before the test."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def moto_without_s3_today() -> Iterator[MotoServer]:
    """An emptied moto server whose CloudWatch has no invented "today" S3 storage point.

    moto's state and this patch are process-wide: during the test they also
    hold for moto_server.
    """
    with MotoServer(s3_today_datapoint=False) as server:
        server.reset()
        yield server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server with an empty inbox (in-process, starts in milliseconds)."""
    yield from _serve(SmtpServer())


@pytest.fixture
def alertmanager_ha() -> Iterator[tuple[Alertmanager, Alertmanager]]:
    """Two Alertmanagers clustered over 127.0.0.1."""
    with alertmanager_pair() as pair:
        yield pair


@pytest.fixture
def slow_memcached(memcached_server: Memcached) -> Iterator[DelayProxy]:
    """A proxy in front of memcached_server stalling one request in 5 by 0.5 s.

    Tune it in the test (`proxy.schedule = ...`) or build your own DelayProxy.
    """
    yield from _serve(DelayProxy(memcached_server.port, delay_every=5, delay_s=0.5))


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A real 16 MiB tmpfs to fill (needs root)."""
    with tmpfs("16m") as mountpoint:
        yield mountpoint
