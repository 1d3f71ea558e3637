"""The agent's HTTP endpoint (/metrics, /healthz), built to stay up under abuse.

A thread per connection let 400 half-sent requests hold 400 threads, before
any authentication. Here one asyncio thread holds every connection while its
request head arrives (at most `HEAD_TIMEOUT`, `MAX_HEAD` bytes, `MAX_CONNECTIONS`
at once), and only complete requests reach a few worker threads. bcrypt checks
of credentials not seen before run on one thread of their own with a short
queue, so a flood of wrong passwords cannot starve a scraper whose credentials
are already verified.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, make_wsgi_app

from agent.api import ForewarnError
from agent.webconfig import WebConfig

log = logging.getLogger(__name__)

BACKLOG = 128
MAX_CONNECTIONS = 512
"""Open connections at once (file descriptors stay bounded); a newcomer beyond that displaces the connection
that has waited longest without sending a whole request head."""
HEAD_TIMEOUT = 5.0
"""Seconds a client has to send a whole request head (and to take an answer), TLS handshake included."""
MAX_HEAD = 16 * 1024
WORKERS = 4
AUTH_QUEUE = 8
"""Unverified credentials waiting for bcrypt; beyond that a client is told to come back later (429)."""


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    keep_alive: bool


class Server:
    """Serves a WSGI app on its own thread; `address` once started, `shutdown()` to stop."""

    def __init__(self, host: str, port: int, app: Callable, web: WebConfig):
        self.host, self.port, self.app, self.web = host, port, app, web
        self.address = ""
        self.loop = asyncio.new_event_loop()
        self.workers = ThreadPoolExecutor(WORKERS, thread_name_prefix="http")
        self.checker = ThreadPoolExecutor(1, thread_name_prefix="http-auth")
        self.open = 0
        self.heads: dict[asyncio.StreamWriter, None] = {}
        """Connections still sending their request head, oldest first."""
        self.checking = 0
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="http-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._error:
            raise ForewarnError(f"cannot listen on {self.host}:{self.port}: "
                                f"{getattr(self._error, 'strerror', None) or self._error}")

    def shutdown(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.workers.shutdown(wait=False, cancel_futures=True)
        self.checker.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(lambda loop, context: log.debug("http: %s", context.get("message")))
        try:
            server = self.loop.run_until_complete(asyncio.start_server(
                self._client, self.host, self.port, backlog=BACKLOG, limit=MAX_HEAD, ssl=self.web.tls,
                ssl_handshake_timeout=HEAD_TIMEOUT if self.web.tls else None))
        except (OSError, ValueError) as exc:
            self._error = exc
            self._started.set()
            return
        port = server.sockets[0].getsockname()[1]
        self.address = f"{self.host}:{port}"
        self._started.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            self.loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open >= MAX_CONNECTIONS:
            if not self.heads:
                writer.transport.abort()
                return
            oldest = next(iter(self.heads))
            del self.heads[oldest]
            oldest.transport.abort()
        self.open += 1
        abort = True
        try:
            while True:
                self.heads[writer] = None
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
                finally:
                    self.heads.pop(writer, None)
                request = _parse(head)
                if request is None:
                    await self._answer(writer, "400 Bad Request", [], b"bad request\n")
                    return
                status, headers, body = await self._respond(request, writer.get_extra_info("peercert"))
                await self._answer(writer, status, headers, b"" if request.method == "HEAD" else body,
                                   request.keep_alive)
                if not request.keep_alive:
                    abort = False
                    return
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ssl.SSLError, OSError):
            pass  # slow, gone, oversized or not speaking TLS: nothing to answer
        except Exception:  # noqa: BLE001 - a bug in the app drops this connection, not the endpoint
            log.warning("http: request failed", exc_info=True)
        finally:
            self.open -= 1
            writer.transport.abort() if abort else writer.close()

    async def _respond(self, request: _Request, peer: dict | None) -> tuple[str, list[tuple[str, str]], bytes]:
        """The web config's checks in the exporter toolkit's order: rate limit, client SANs, basic auth."""
        if self.web.rate_limit and not self.web.rate_limit.allow():
            return "429 Too Many Requests", [("Retry-After", "1")], b"too many requests\n"
        if not self.web.peer_allowed(peer):
            return "403 Forbidden", [], b"client certificate has no allowed SAN\n"
        authorization = request.headers.get("authorization")
        allowed = self.web.known(authorization)
        if allowed is None:  # not seen before: bcrypt, on its own thread, with a short queue
            if self.checking >= AUTH_QUEUE:
                return "429 Too Many Requests", [("Retry-After", "1")], b"too many requests\n"
            self.checking += 1
            try:
                allowed = await self.loop.run_in_executor(self.checker, self.web.allows, authorization)
            finally:
                self.checking -= 1
        if not allowed:
            return "401 Unauthorized", [("WWW-Authenticate", 'Basic realm="forewarn"')], b"unauthorized\n"
        return await self.loop.run_in_executor(self.workers, _call, self.app, request)

    async def _answer(self, writer: asyncio.StreamWriter, status: str, headers: list[tuple[str, str]],
                      body: bytes, keep_alive: bool = False) -> None:
        headers = headers + list(self.web.headers.items())  # the web config's http_server_config.headers
        names = {name.lower() for name, _ in headers}
        lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
        if "content-type" not in names:
            lines.append("Content-Type: text/plain; charset=utf-8")
        lines += [f"Content-Length: {len(body)}", f"Connection: {'keep-alive' if keep_alive else 'close'}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await asyncio.wait_for(writer.drain(), HEAD_TIMEOUT)


def _parse(head: bytes) -> _Request | None:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        return None
    if method not in ("GET", "HEAD") or not version.startswith("HTTP/1."):
        return None
    headers = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                return None
            headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection == "keep-alive" if version == "HTTP/1.0" else connection != "close"
    parts = urlsplit(target)
    return _Request(method, parts.path or "/", parts.query, headers, keep_alive)


def _call(app: Callable, request: _Request) -> tuple[str, list[tuple[str, str]], bytes]:
    """Runs the WSGI app for one request (in a worker thread)."""
    environ = {"REQUEST_METHOD": request.method, "PATH_INFO": request.path, "QUERY_STRING": request.query,
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http"}
    for name, value in request.headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    answer: list = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: answer.extend((status, headers))))
    return answer[0], list(answer[1]), body


def serve(listen: str, registry: CollectorRegistry, web: WebConfig, health: Callable[[], str]) -> Server:
    """/metrics from `registry`; /healthz answers 200 "ok", 200 with what is degraded (`health()` says why the
    agent is not fully well but still working), or 503 "stopping"."""
    host, _, port = listen.rpartition(":")
    metrics_app = make_wsgi_app(registry)

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/healthz":
            state = health()
            code = "503 Service Unavailable" if state == "stopping" else "200 OK"
            start_response(code, [("Content-Type", "text/plain; charset=utf-8")])
            return [(f"degraded: {state}\n" if state and state != "stopping" else f"{state or 'ok'}\n").encode()]
        if path in ("/metrics", "/"):
            return metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]

    try:
        number = int(port)
    except ValueError:
        raise ForewarnError(f"cannot listen on {listen!r}: expected HOST:PORT") from None
    server = Server(host.strip("[]") or "127.0.0.1", number, app, web)
    server.start()
    return server
