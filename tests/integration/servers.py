"""Real servers on 127.0.0.1 for integration tests.

Each helper starts one server on a free loopback port with its data in a
temporary directory, waits for it with a bounded loop, and stops it on exit,
even when the test failed. A missing binary is an error, never a skip: a test
that silently skips is a test that never runs in CI.

Usage::

    with RedisServer(extra_args=["--maxmemory", "1mb"]) as redis_srv:
        client = redis_srv.client()

See TESTING-NOTES.md for the facts these helpers rely on.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
PORT_ATTEMPTS = 3  # another test run may grab our free port between probe and bind
KEEP_LOGS = os.environ.get("FOREWARN_KEEP_SERVER_LOGS") == "1"
POSTGRES_BIN = "/usr/lib/postgresql"
"""Debian keeps the PostgreSQL server binaries off PATH, in <version>/bin/ under this folder."""


class ServerError(RuntimeError):
    """A test server could not be started or is missing; `log_path` is its log, if any."""

    def __init__(self, message: str, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def require_binary(name: str) -> str:
    """Absolute path of `name`, or a ServerError telling how to install it."""
    path = shutil.which(name) or next((str(p) for p in sorted(Path(POSTGRES_BIN).glob(f"*/bin/{name}"))), None)
    if path is None:
        raise ServerError(f"{name} not found on PATH; run tests/install-deps (as root)")
    return path


def tail(path: Path, lines: int = 40) -> str:
    """Last `lines` lines of a log file, or a note saying it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log at {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; never loops forever."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _tcp_answers(port: int, request: bytes, expected: Sequence[bytes]) -> bool:
    """True if the server on `port` answers `request` with one of `expected` prefixes."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(request)
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith(tuple(expected))


def _http_ok(url: str) -> bool:
    """True if GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            return resp.status == 200
    except OSError:
        return False


def http_json(url: str, body: Any = None, timeout: float = 5.0) -> Any:
    """GET (or POST `body` as JSON to) `url` and decode the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


# --------------------------------------------------------------------------
# Child processes


@dataclass
class ManagedProcess:
    """One server binary run as a child, its output in a log file.

    `build_argv(port, workdir)` gives the command line; `is_ready(port)` says
    when it answers. Both are per server, the start/stop discipline is shared.
    """

    name: str
    build_argv: Callable[[int, Path], list[str]]
    is_ready: Callable[[int], bool]
    port: int = 0
    workdir: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    _keep_workdir: bool = False

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None, "start() first"
        return self.workdir / f"{self.name}.log"

    def start(self, timeout: float = START_TIMEOUT_S, port: int | None = None) -> None:
        """Start on `port` (or a free one), retrying on a port stolen meanwhile."""
        require_binary(self.name)
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"forewarn-{self.name}-"))
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.port = port if port is not None else free_port()
            if self._start_once(timeout):
                return
            stolen = "address already in use" in tail(self.log_path).lower()
            if not stolen or port is not None or attempt == PORT_ATTEMPTS:
                break
        self._keep_workdir = True  # so the log path in the message stays valid
        raise ServerError(
            f"{self.name} did not become ready on {HOST}:{self.port} within {timeout:.0f}s "
            f"(exit code {self.proc.returncode if self.proc else None}); "
            f"log {self.log_path}:\n{tail(self.log_path)}",
            log_path=self.log_path,
        )

    def _start_once(self, timeout: float) -> bool:
        """Launch and wait for readiness; stop the child and return False if it fails."""
        assert self.workdir is not None
        argv = self.build_argv(self.port, self.workdir)
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest only
            )
        proc = self.proc

        def up() -> bool:
            return proc.poll() is not None or self.is_ready(self.port)

        if wait_until(up, timeout) and proc.poll() is None:
            return True
        self._terminate()
        return False

    def _terminate(self) -> None:
        """Terminate, then kill after a bound; always reaps the child."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the child and remove its data (kept with FOREWARN_KEEP_SERVER_LOGS=1)."""
        self._terminate()
        if self.workdir is not None and not (self._keep_workdir or KEEP_LOGS):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines) if self.workdir else "<not started>"


class _ProcessServer:
    """Context-manager plumbing shared by the servers that are child processes."""

    process: ManagedProcess

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines)

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> _ProcessServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisServer(_ProcessServer):
    """redis-server 7 without persistence.

    `extra_args` go straight to redis-server, e.g. ["--enable-debug-command",
    "local"] to allow DEBUG SLEEP, ["--maxmemory", "1mb"]; `password` sets
    --requirepass.
    """

    def __init__(self, extra_args: Sequence[str] = (), password: str | None = None) -> None:
        self.extra_args = list(extra_args)
        self.password = password
        self.process = ManagedProcess("redis-server", self._argv, self._ready)

    def _argv(self, port: int, workdir: Path) -> list[str]:
        argv = [require_binary("redis-server"), "--port", str(port), "--bind", HOST,
                "--save", "", "--appendonly", "no", "--dir", str(workdir)]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        return argv + self.extra_args

    @staticmethod
    def _ready(port: int) -> bool:
        # -NOAUTH means it is up but wants the password.
        return _tcp_answers(port, b"PING\r\n", [b"+PONG", b"-NOAUTH"])

    @property
    def url(self) -> str:
        auth = f":{urllib.parse.quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{HOST}:{self.port}/0"

    def client(self, **kwargs: Any) -> Any:
        """A redis-py client for this server (imported here: redis-py is heavy)."""
        import redis

        kwargs.setdefault("socket_timeout", 5)
        return redis.Redis(host=HOST, port=self.port, password=self.password, **kwargs)


class Memcached(_ProcessServer):
    """memcached on TCP only (-U 0), `memory_mb` of cache."""

    def __init__(self, memory_mb: int = 64, extra_args: Sequence[str] = ()) -> None:
        self.memory_mb = memory_mb
        self.extra_args = list(extra_args)
        self.process = ManagedProcess("memcached", self._argv, self._ready)

    def _argv(self, port: int, workdir: Path) -> list[str]:
        argv = [require_binary("memcached"), "-l", HOST, "-p", str(port), "-U", "0",
                "-m", str(self.memory_mb)]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # memcached refuses to run as root without it
        return argv + self.extra_args

    @staticmethod
    def _ready(port: int) -> bool:
        return _tcp_answers(port, b"version\r\n", [b"VERSION"])

    def client(self, **kwargs: Any) -> Any:
        """A pymemcache client for this server."""
        from pymemcache.client.base import Client

        kwargs.setdefault("timeout", 5)
        kwargs.setdefault("connect_timeout", 5)
        kwargs.setdefault("default_noreply", False)  # seeding a cache should fail loudly
        return Client((HOST, self.port), **kwargs)


class PostgresServer(_ProcessServer):
    """PostgreSQL (Debian 15) with pg_stat_statements preloaded, its data in a temp dir.

    initdb and postgres refuse to run as root, so both run as the `postgres`
    user (runuser) when the tests run as root. The superuser `postgres` has
    `password` (scram-sha-256 over TCP), so clients prove they send one.
    """

    def __init__(self, password: str = "pg-super-secret", extra_args: Sequence[str] = ()) -> None:
        self.password = password
        self.extra_args = list(extra_args)
        self.process = ManagedProcess("postgres", self._argv, self._ready)

    def _as_postgres(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def _argv(self, port: int, workdir: Path) -> list[str]:
        data = workdir / "data"
        if not data.exists():
            self._initdb(workdir, data)
        return self._as_postgres([
            require_binary("postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
            "-c", f"listen_addresses={HOST}", "-c", "shared_preload_libraries=pg_stat_statements",
            "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
            *self.extra_args])

    def _initdb(self, workdir: Path, data: Path) -> None:
        data.mkdir()
        secret = workdir / "pwfile"
        secret.write_text(self.password + "\n")
        if os.geteuid() == 0:
            workdir.chmod(0o755)
            shutil.chown(data, "postgres", "postgres")
            shutil.chown(secret, "postgres", "postgres")
        done = subprocess.run(
            self._as_postgres([require_binary("initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                               "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
                               f"--pwfile={secret}"]),
            capture_output=True, text=True, timeout=120)
        secret.unlink()
        if done.returncode != 0:
            raise ServerError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")

    def _ready(self, port: int) -> bool:
        try:
            self.connect(port=port).close()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False

    def url(self, user: str = "postgres", database: str = "postgres") -> str:
        """A password-free URL (the password goes by reference, as the agent requires)."""
        return f"postgresql://{user}@{HOST}:{self.port}/{database}"

    def connect(self, database: str = "postgres", port: int | None = None, **kwargs: Any) -> Any:
        """A psycopg connection as the superuser, autocommit (imported here: psycopg is optional)."""
        import psycopg

        return psycopg.connect(host=HOST, port=port or self.port, user="postgres", password=self.password,
                               dbname=database, autocommit=True, connect_timeout=2, **kwargs)


def _self_scrape_config(port: int) -> str:
    return (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: prometheus\n"
        f"    static_configs:\n      - targets: ['{HOST}:{port}']\n"
    )


class Prometheus(_ProcessServer):
    """Prometheus with its TSDB in a temp dir.

    `config_yaml` is the config text; None scrapes itself every second, so
    `up` has a sample within a couple of seconds.
    """

    def __init__(self, config_yaml: str | None = None, extra_args: Sequence[str] = ()) -> None:
        self.config_yaml = config_yaml
        self.extra_args = list(extra_args)
        self.process = ManagedProcess("prometheus", self._argv, self._ready)

    def _argv(self, port: int, workdir: Path) -> list[str]:
        config = workdir / "prometheus.yml"
        config.write_text(self.config_yaml if self.config_yaml is not None else _self_scrape_config(port))
        return [require_binary("prometheus"), f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={HOST}:{port}", *self.extra_args]

    @staticmethod
    def _ready(port: int) -> bool:
        return _http_ok(f"http://{HOST}:{port}/-/ready")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the `data.result` list of the answer."""
        answer = http_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        if answer.get("status") != "success":
            raise ServerError(f"prometheus query {promql!r} failed: {answer}")
        return answer["data"]["result"]

    def wait_for_query(self, promql: str, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Poll `promql` until it returns a non-empty result (bounded)."""
        result: list[dict[str, Any]] = []

        def has_result() -> bool:
            nonlocal result
            result = self.query(promql)
            return bool(result)

        if not wait_until(has_result, timeout, interval=0.25):
            raise ServerError(f"prometheus query {promql!r} still empty after {timeout:.0f}s")
        return result


def promtool_check_metrics(exposition: str) -> subprocess.CompletedProcess[str]:
    """Run `promtool check metrics` on an exposition; clean output is empty stdout+stderr."""
    return subprocess.run([require_binary("promtool"), "check", "metrics"], input=exposition,
                          capture_output=True, text=True, timeout=30)


DEFAULT_ALERTMANAGER_CONFIG = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"


class Alertmanager(_ProcessServer):
    """Prometheus Alertmanager (Debian's binary is prometheus-alertmanager).

    Gossip is off unless `cluster_port` is given; for an HA pair see
    `alertmanager_pair`.
    """

    def __init__(self, config_yaml: str = DEFAULT_ALERTMANAGER_CONFIG, cluster_port: int | None = None,
                 peers: Sequence[str] = (), extra_args: Sequence[str] = ()) -> None:
        self.config_yaml = config_yaml
        self.cluster_port = cluster_port
        self.peers = list(peers)
        self.extra_args = list(extra_args)
        self.process = ManagedProcess("prometheus-alertmanager", self._argv, self._ready)

    def _argv(self, port: int, workdir: Path) -> list[str]:
        config = workdir / "alertmanager.yml"
        config.write_text(self.config_yaml)
        argv = [require_binary("prometheus-alertmanager"), f"--config.file={config}",
                f"--storage.path={workdir / 'data'}", f"--web.listen-address={HOST}:{port}"]
        if self.cluster_port is None:
            argv.append("--cluster.listen-address=")  # empty: gossip off, no port on 0.0.0.0
        else:
            argv += [f"--cluster.listen-address={HOST}:{self.cluster_port}",
                     "--cluster.settle-timeout=2s", "--cluster.gossip-interval=50ms"]
            argv += [f"--cluster.peer={peer}" for peer in self.peers]
        return argv + self.extra_args

    @staticmethod
    def _ready(port: int) -> bool:
        return _http_ok(f"http://{HOST}:{port}/-/ready")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts (each alert needs at least `labels`)."""
        http_json(f"{self.url}/api/v2/alerts", body=alerts)

    def alerts(self) -> list[dict[str, Any]]:
        """GET /api/v2/alerts."""
        return http_json(f"{self.url}/api/v2/alerts")


@contextlib.contextmanager
def alertmanager_pair(config_yaml: str = DEFAULT_ALERTMANAGER_CONFIG) -> Iterator[tuple[Alertmanager, Alertmanager]]:
    """Two Alertmanagers gossiping with each other over 127.0.0.1 cluster ports."""
    port_a, port_b = free_port(), free_port()
    first = Alertmanager(config_yaml, cluster_port=port_a, peers=[f"{HOST}:{port_b}"])
    second = Alertmanager(config_yaml, cluster_port=port_b, peers=[f"{HOST}:{port_a}"])
    with first, second:
        yield first, second


class NodeExporter(_ProcessServer):
    """prometheus-node-exporter, as a peer to compare the agent with.

    `textfile_dir` replaces Debian's default /var/lib/prometheus/node-exporter.
    """

    def __init__(self, extra_args: Sequence[str] = (), textfile_dir: Path | None = None) -> None:
        self.extra_args = list(extra_args)
        self.textfile_dir = textfile_dir
        self.process = ManagedProcess("prometheus-node-exporter", self._argv, self._ready)

    def _argv(self, port: int, workdir: Path) -> list[str]:
        textfile_dir = self.textfile_dir or workdir / "textfile"
        textfile_dir.mkdir(parents=True, exist_ok=True)
        return [require_binary("prometheus-node-exporter"), f"--web.listen-address={HOST}:{port}",
                f"--collector.textfile.directory={textfile_dir}", *self.extra_args]

    @staticmethod
    def _ready(port: int) -> bool:
        return _http_ok(f"http://{HOST}:{port}/metrics")

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.port}/metrics"


# --------------------------------------------------------------------------
# In-process servers


@dataclass
class ReceivedMail:
    """One message as the SMTP server got it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class _Inbox:
    """aiosmtpd handler: stores messages, or answers with a chosen error for fault tests."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.server.respond_with is not None:
            return self.server.respond_with
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        self.server._receive(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1, collecting what it receives.

    Fault tests: `stop()` then `start()` again keeps the port (a notifier sees
    a refused connection meanwhile); `respond_with = "451 4.3.0 try later"` or
    "550 ..." makes DATA fail temporarily or permanently. `login=(user, pw)`
    requires AUTH (allowed without TLS, loopback only).
    """

    port: int = 0
    login: tuple[str, str] | None = None
    respond_with: str | None = None
    received: list[ReceivedMail] = field(default_factory=list)
    _controller: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [mail.message for mail in self.received]

    @property
    def log_path(self) -> None:
        return None  # in-process: failures show in pytest's captured output

    def log_tail(self, lines: int = 40) -> str:
        return f"smtp on {HOST}:{self.port}: {len(self.received)} message(s) received"

    def _receive(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.received.append(mail)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (isinstance(auth_data, LoginPassword) and self.login is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.login)
        return AuthResult(success=ok, handled=False)  # handled=True would send no reply at all

    def start(self) -> None:
        """Start (or restart) on self.port, choosing a free one the first time."""
        from aiosmtpd.controller import Controller

        if self.port == 0:
            self.port = free_port()
        auth: dict[str, Any] = {}
        if self.login is not None:
            auth = {"authenticator": self._authenticate, "auth_required": True,
                    "auth_require_tls": False}
        self._controller = Controller(_Inbox(self), hostname=HOST, port=self.port,
                                      ready_timeout=START_TIMEOUT_S, enable_SMTPUTF8=True, **auth)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The received messages once there are at least `count` (bounded wait)."""
        if not wait_until(lambda: len(self.received) >= count, timeout):
            raise AssertionError(f"expected {count} message(s) within {timeout}s, got {len(self.received)}")
        return self.messages

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


DUMMY_AWS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
             "region_name": "us-east-1"}


@dataclass
class MotoServer:
    """moto's ThreadedMotoServer: S3, CloudWatch, Cost Explorer over real HTTP.

    It runs in this process, so moto's state is shared by every MotoServer
    here; `reset()` clears it. With `s3_today_datapoint=False`, CloudWatch no
    longer invents a "today" BucketSizeBytes/NumberOfObjects point from the
    stored objects (real CloudWatch has none); restored on stop().
    """

    s3_today_datapoint: bool = True
    port: int = 0
    _server: Any = None
    _saved_metrics_fn: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> None:
        return None

    def log_tail(self, lines: int = 40) -> str:
        return f"moto on {self.endpoint_url} (in-process)"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        if not self.s3_today_datapoint:
            self._patch_s3_metrics()
        server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        # start() waits without a bound; bound it here so a broken moto fails the test.
        starter = threading.Thread(target=server.start, daemon=True)
        starter.start()
        starter.join(START_TIMEOUT_S)
        if starter.is_alive():
            self._restore_s3_metrics()
            raise ServerError(f"moto ThreadedMotoServer did not start within {START_TIMEOUT_S:.0f}s")
        self._server = server
        self.port = server.get_host_and_port()[1]

    def stop(self) -> None:
        try:
            if self._server is not None:
                self._server.stop()
                self._server = None
        finally:
            self._restore_s3_metrics()

    def _patch_s3_metrics(self) -> None:
        from moto.s3.models import S3Backend

        self._saved_metrics_fn = S3Backend.__dict__["get_cloudwatch_metrics"]
        S3Backend.get_cloudwatch_metrics = classmethod(lambda cls, account_id, region: [])  # type: ignore[method-assign,assignment]

    def _restore_s3_metrics(self) -> None:
        if self._saved_metrics_fn is not None:
            from moto.s3.models import S3Backend

            S3Backend.get_cloudwatch_metrics = self._saved_metrics_fn  # type: ignore[method-assign]
            self._saved_metrics_fn = None

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for `service` pointed at this server, with dummy credentials."""
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, **{**DUMMY_AWS, **kwargs})

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (e.g. the agent CLI) to reach this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def reset(self) -> None:
        """Forget every bucket, metric and queued result."""
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"),
                               timeout=10).close()

    def queue_cost_results(self, results: list[dict[str, Any]]) -> None:
        """Queue Cost Explorer answers: each GetCostAndUsage call pops the next one."""
        http_json(f"{self.endpoint_url}/moto-api/static/ce/cost-and-usage-results", body={"results": results})

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------
# Fault injection


MAX_DELAY_S = 30.0


class DelayProxy:
    """TCP proxy on 127.0.0.1 that stalls some requests on their way to `target_port`.

    Every `delay_every`-th chunk sent by a client (counted over all
    connections, 1-based) waits `delay_s` before it is forwarded; or give
    `schedule(n) -> seconds` for chunk n. Replies pass through untouched.
    Delays are capped at MAX_DELAY_S and cut short by stop().
    """

    def __init__(self, target_port: int, delay_every: int = 0, delay_s: float = 0.0,
                 schedule: Callable[[int], float] | None = None) -> None:
        self.target_port = target_port
        self.schedule = schedule or self._every(delay_every, delay_s)
        self.port = 0
        self.chunks = 0  # client chunks forwarded so far
        self.delayed = 0  # of which delayed
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    @staticmethod
    def _every(every: int, delay_s: float) -> Callable[[int], float]:
        return lambda n: delay_s if every > 0 and n % every == 0 else 0.0

    @property
    def log_path(self) -> None:
        return None

    def log_tail(self, lines: int = 40) -> str:
        return f"delay proxy {HOST}:{self.port} -> {self.target_port}: {self.delayed}/{self.chunks} chunks delayed"

    def start(self) -> None:
        listener = socket.create_server((HOST, 0))
        listener.settimeout(0.2)  # lets the accept loop notice stop()
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept_loop)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream, True)
            self._spawn(self._pump, upstream, client, False)

    def _next_delay(self) -> float:
        with self._lock:
            self.chunks += 1
            delay = min(max(self.schedule(self.chunks), 0.0), MAX_DELAY_S)
            if delay > 0:
                self.delayed += 1
        return delay

    def _pump(self, source: socket.socket, sink: socket.socket, delay_this_way: bool) -> None:
        """Copy bytes one way until either side closes; both closed at the end."""
        try:
            while not self._stopping.is_set():
                chunk = source.recv(65536)
                if not chunk:
                    break
                if delay_this_way:
                    delay = self._next_delay()
                    if delay and self._stopping.wait(delay):
                        break
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> DelayProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------
# Disks


@contextlib.contextmanager
def tmpfs(size: str = "16m") -> Iterator[Path]:
    """A real, small filesystem to fill: tmpfs of `size` mounted in a temp dir (root only)."""
    if os.geteuid() != 0:
        raise ServerError("tmpfs needs root (mount -t tmpfs); run the integration tests as root")
    mountpoint = Path(tempfile.mkdtemp(prefix="forewarn-tmpfs-"))
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint)],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise ServerError(f"mount -t tmpfs -o size={size} failed: {done.stderr.strip()}")
        try:
            yield mountpoint
        finally:
            _umount(mountpoint)
    finally:
        with contextlib.suppress(OSError):
            mountpoint.rmdir()


def _umount(mountpoint: Path) -> None:
    """Unmount; if busy, detach lazily so the run never leaves a mount behind."""
    done = subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=30)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True, capture_output=True, timeout=30)
