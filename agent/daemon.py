"""`agent run`: the long-running agent on a monitored host.

The main thread schedules checks (interval plus jitter, a bounded pool, a
timeout each), turns their findings into incidents and notices, and answers
signals: SIGTERM/SIGINT stop it cleanly, SIGHUP reloads the config (a bad new
config is reported and the old one keeps running). A sender thread drains the
outbox with its own database connection; an HTTP thread serves /metrics and
/healthz. systemd is told READY, WATCHDOG and STOPPING when it asks for them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client import Gauge

from agent.api import CheckResult, ConfigError, ForewarnError, NotifyError
from agent.clock import wall_clock
from agent.config import Config, load_config
from agent.http import Server, serve
from agent.lifecycle import Lifecycle
from agent.metrics import Metrics
from agent.outbox import Outbox, notice_from_dict
from agent.runner import Runner
from agent.store import Store
from agent.webconfig import load_web_config

log = logging.getLogger(__name__)
POOL_SIZE = 4
TICK = 0.2
HOUSEKEEPING_EVERY = 2.0


def sd_notify(message: str) -> None:
    """Tells systemd our state when started as Type=notify; a no-op otherwise."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("cannot notify systemd: %s", exc)


@dataclass
class _Schedule:
    due: float
    future: Future | None = None
    started: float = 0.0


@dataclass
class Daemon:
    config_path: str | None
    listen: str | None = None
    web_config: str | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    reload_requested: threading.Event = field(default_factory=threading.Event)

    def run(self) -> int:
        self.config = load_config(self.config_path)
        if os.geteuid() == 0 and "INVOCATION_ID" not in os.environ:  # systemd sets INVOCATION_ID for its services
            log.warning("running as root outside systemd: the agent needs no root privileges; run it as its own "
                        "user (see SECURITY.md)")
        self.clock = wall_clock()
        for line in self.config.warnings:
            log.warning(line)
        self.store = Store(self.config.state_dir(), keep_going=True)
        self.metrics = Metrics(self.config)
        self.outbox = Outbox(self.store, self.config, clock=self.clock, on_result=self._count_notice)
        self.lifecycle = Lifecycle(self.config, self.store, self.outbox)
        self.runner = Runner(self.config, self.store, self.clock)
        self.schedule = self._new_schedule(self.config)
        self.pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="check")
        server = self._serve()
        sender = threading.Thread(target=self._send_loop, name="sender", daemon=True)
        sender.start()
        threading.Thread(target=self._refresh_loop, name="refresher", daemon=True).start()
        self._install_signals()
        sd_notify("READY=1\nSTATUS=watching")
        log.info("forewarn running: %d checks, listening on %s", len(self.runner.checks), self._address)
        try:
            self._loop()
        finally:
            sd_notify("STOPPING=1")
            self.stop_event.set()
            server.shutdown()
            sender.join(timeout=3)
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.runner.close()
            self.store.close()
        log.info("forewarn stopped")
        return 0

    # ------------------------------------------------------------------ loop

    def _loop(self) -> None:
        watchdog = float(os.environ.get("WATCHDOG_USEC", 0)) / 2e6
        last_ping = last_housekeeping = 0.0
        while not self.stop_event.is_set():
            now = self.clock()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self._reload()
            for name, slot in self.schedule.items():
                if slot.future is None and now >= slot.due:
                    slot.started = now
                    slot.future = self.pool.submit(_timed, self.runner.run, name)
                elif slot.future is not None and slot.future.done():
                    self._handle(name, slot, *slot.future.result(), now)
            if now - last_housekeeping >= HOUSEKEEPING_EVERY:
                last_housekeeping = now
                self._guarded(self.lifecycle.housekeeping, now)
            if watchdog and now - last_ping >= watchdog:
                sd_notify("WATCHDOG=1")
                last_ping = now
            self.stop_event.wait(TICK)

    def _handle(self, name: str, slot: _Schedule, result: CheckResult, duration: float, now: float) -> None:
        cfg = self.config.checks[name]
        slot.future = None
        slot.due = slot.started + cfg.interval * random.uniform(0.95, 1.05)
        self.metrics.record(result, duration, not result.error, now)
        self._guarded(lambda at: self.lifecycle.handle(result, at), now)
        self.metrics.count_open(i.severity.value for i in self.lifecycle.incidents.open_incidents())

    def _guarded(self, step, now: float) -> None:
        """A failed step is rolled back whole and tried again on the next cycle; the daemon goes on."""
        try:
            step(now)
        except ForewarnError as exc:
            log.error("incident step failed, will retry: %s", exc)
        except Exception:  # a bug in composing must not stop the monitoring
            log.exception("incident step failed, will retry")

    def _reload(self) -> None:
        sd_notify("RELOADING=1")
        try:
            config = load_config(self.config_path)
        except ForewarnError as exc:
            for line in exc.problems if isinstance(exc, ConfigError) else [str(exc)]:
                log.error("reload refused, keeping the running config: %s", line)
            sd_notify("READY=1")
            return
        for line in config.warnings:
            log.warning(line)
        in_flight = [slot.future for slot in self.schedule.values() if slot.future is not None]
        threading.Thread(target=_close_when_done, args=(self.runner, in_flight), name="close-old-checks",
                         daemon=True).start()
        self.config = config
        self.runner = Runner(config, self.store, self.clock)
        self.schedule = self._new_schedule(config)
        self.metrics.reconfigure(config)
        self.lifecycle.reconfigure(config)
        self.outbox.config = config
        log.info("config reloaded from %s", config.source)
        sd_notify("READY=1")

    def _new_schedule(self, config: Config) -> dict[str, _Schedule]:
        now = self.clock()
        return {name: _Schedule(now + random.uniform(0, min(1.0, 0.1 * cfg.interval)))
                for name, cfg in config.checks.items() if cfg.enabled}

    # ------------------------------------------------------- sending, serving

    def _send_loop(self) -> None:
        self._outbox_loop("delivery pass", lambda outbox: outbox.deliver_due())

    def _refresh_loop(self) -> None:
        """Re-sends on a thread of its own, so a hung receiver delays no other channel's delivery."""
        refreshed: dict[str, float] = {}
        self._outbox_loop("alert refresh", lambda outbox: self._refresh(outbox, refreshed, self.clock()))

    def _outbox_loop(self, what: str, step) -> None:
        """Runs `step` every second with an outbox of its own (its own database connection) until stopped."""
        store = Store(self.config.state_dir())
        outbox = Outbox(store, self.config, clock=self.clock, on_result=self._count_notice, patience=0.5)
        try:
            while True:
                outbox.config = self.config  # follows reloads; it rebuilds only channels that changed
                try:
                    step(outbox)
                except ForewarnError as exc:
                    log.error("%s failed: %s", what, exc)
                if self.stop_event.wait(1.0):
                    break
        finally:
            store.close()

    def _refresh(self, outbox: Outbox, refreshed: dict[str, float], now: float) -> None:
        """Channels that forget an alert unless told again (`refresh_every`, e.g. Alertmanager) get the
        latest notice of each open incident re-sent; the receiver treats a repeat as the same alert."""
        for name, settings in self.config.notifiers.items():
            every = getattr(self.config.registry.notifier(settings.type), "refresh_every", None)
            if not every or now - refreshed.get(name, 0.0) < every:
                continue
            refreshed[name] = now
            latest = outbox.store.query(
                "SELECT notice FROM outbox WHERE id IN (SELECT MAX(id) FROM outbox WHERE channel = ?"
                " AND state = 'sent' GROUP BY json_extract(notice, '$.thread_id'))"
                " AND json_extract(notice, '$.phase') NOT IN ('resolution', 'test', 'operator')"
                " AND json_extract(notice, '$.incident_id') IN (SELECT id FROM incidents WHERE state = 'open')",
                (name,))
            for (body,) in latest:
                notice = notice_from_dict(json.loads(body))
                try:
                    outbox.notifier(name).send(notice)
                except NotifyError as exc:
                    log.warning("refresh of %s on %s failed: %s", notice.incident_id, name, exc)

    def _count_notice(self, channel: str, result: str) -> None:
        self.metrics.notices.labels(channel, result).inc()

    def _serve(self) -> Server:
        web = load_web_config(self.web_config or self.config.agent.web_config_file)
        Gauge("forewarn_state_in_memory", "1 while the state database cannot be used and the state is kept in "
              "memory (full filesystem, damaged file); the log says why.",
              registry=self.metrics.registry).set_function(lambda: 1.0 if self.store.problem else 0.0)

        def health() -> str:
            if self.stop_event.is_set():
                return "stopping"
            return f"the state is kept in memory: {self.store.problem}" if self.store.problem else ""

        server = serve(self.listen or self.config.agent.listen, self.metrics.registry, web, health)
        self._address = server.address
        return server

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())


def _timed(run, name: str) -> tuple[CheckResult, float]:
    started = time.perf_counter()
    result = run(name)
    return result, time.perf_counter() - started


def _close_when_done(runner: Runner, in_flight: list[Future]) -> None:
    """After a reload the old checks finish their runs (results discarded) before they are closed."""
    for future in in_flight:
        try:
            future.result()
        except Exception:  # noqa: BLE001 - a discarded run's failure does not matter any more
            pass
    runner.close()
