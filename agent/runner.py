"""Runs checks in isolation: a check that raises or hangs makes its own result UNKNOWN, nothing else."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

from agent.api import Check, CheckConfig, CheckResult, Context, ForewarnError, ResourceStatus, Status
from agent.clock import Clock, wall_clock
from agent.config import Config
from agent.detect.bank import DetectorBank
from agent.store import Store

log = logging.getLogger(__name__)


class Runner:
    """Owns one instance per configured check, so checks can keep state between runs."""

    def __init__(self, config: Config, store: Store, clock: Clock | None = None,
                 build: Callable[[type, CheckConfig], Check] | None = None, isolate: bool = True):
        """`build` makes a check from its class and config (a rehearsal feeds it scripted numbers);
        `isolate` runs each check in a thread of its own, bounded by its timeout (a rehearsal's scripted
        checks cannot hang, and run inline)."""
        self.config, self.store, self.clock, self.isolate = config, store, clock or wall_clock(), isolate
        build = build or (lambda cls, cfg: cls(cfg))
        self.checks = {name: build(config.registry.check(name), cfg)
                       for name, cfg in config.checks.items() if cfg.enabled}
        self.running: dict[str, tuple[threading.Thread, float]] = {}
        """A run that outlived its timeout: no second run starts until it returns (no pile-up)."""
        self.detectors = {name: _bank(store, name) for name in self.checks}

    def run(self, name: str) -> CheckResult:
        check, cfg = self.checks[name], self.config.checks[name]
        stuck = self.running.get(name)
        if stuck and stuck[0].is_alive():
            return failed(name, f"still running since {time.monotonic() - stuck[1]:.0f}s ago (timeout {cfg.timeout:g}s)")
        ctx = Context(now=self.clock, history=self.store, hostname=self.config.hostname(),
                      wanted=self.config.wanted(name), log=logging.getLogger(f"forewarn.checks.{name}"),
                      detectors=self.detectors[name])
        outcome: list = []
        worker = threading.Thread(target=_capture, args=(check.run, ctx, outcome), daemon=True,
                                  name=f"check-{name}")
        if self.isolate:
            worker.start()
            worker.join(cfg.timeout)
        else:
            _capture(check.run, ctx, outcome)
        if not outcome:
            self.running[name] = (worker, time.monotonic() - cfg.timeout)
            log.warning("check %s did not finish within %gs", name, cfg.timeout)
            return failed(name, f"did not finish within {cfg.timeout:g}s")
        if isinstance(outcome[0], BaseException):
            exc = outcome[0]
            reason = str(exc) if isinstance(exc, ForewarnError) else f"{exc.__class__.__name__}: {exc}"
            log.warning("check %s failed: %s", name, reason)
            log.debug("check %s failure detail", name, exc_info=exc)
            return failed(name, reason)
        result: CheckResult = outcome[0]
        with self.store.transaction():
            self.store.record(result.observations)
            self.detectors[name].flush()
        return result

    def run_all(self, names: Iterable[str] | None = None) -> list[CheckResult]:
        return [self.run(name) for name in (names or self.checks)]

    def close(self) -> None:
        for bank in self.detectors.values():
            bank.flush(force=True)
        for check in self.checks.values():
            close = getattr(check, "close", None)
            if close:
                close()


def _bank(store: Store, check: str) -> DetectorBank:
    """Detector state in the store, under keys namespaced by check, saved at most every 5 minutes and on close."""
    return DetectorBank(lambda key: store.load_detector(f"{check}:{key}"),
                        lambda key, state: store.save_detector(f"{check}:{key}", state), save_every=300.0)


def failed(name: str, reason: str) -> CheckResult:
    return CheckResult(name, (ResourceStatus(name, Status.UNKNOWN, f"check could not run: {reason}"),), error=reason)


def _capture(function, ctx, outcome: list) -> None:
    try:
        outcome.append(function(ctx))
    except BaseException as exc:  # reported by the caller as UNKNOWN, with the reason
        outcome.append(exc)
