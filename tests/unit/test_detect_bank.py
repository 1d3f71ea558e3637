"""Detector state kept between runs and across restarts, in the real state database."""

from __future__ import annotations

import random
from typing import ClassVar

from agent.api import CheckResult, Context, DetectionConfig, DetectorParams, Metric
from agent.config import parse_config
from agent.detect.bank import DetectorBank
from agent.registry import Registry
from agent.runner import Runner
from agent.store import Store

PARAMS = DetectorParams(window=200, warmup=50, cooldown=20, seasonal=False)


def store_bank(store: Store) -> DetectorBank:
    return DetectorBank(store.load_detector, store.save_detector)


def feed(bank: DetectorBank, values: list[float], start: int, params: DetectorParams = PARAMS) -> list:
    detector = bank.get("s", params)
    return [detector.update(60.0 * (start + i), v) for i, v in enumerate(values)]


def series(n: int) -> list[float]:
    rng = random.Random(2)
    values = [10.0 + rng.gauss(0, 1) for _ in range(n)]
    values[250] += 30
    return values


def test_a_restarted_process_continues_exactly_where_the_last_one_stopped(tmp_path):
    values = series(300)
    straight = feed(DetectorBank(), values, 0)
    store = Store(tmp_path)
    bank = store_bank(store)
    first = feed(bank, values[:120], 0)
    bank.flush()
    store.close()

    reopened = Store(tmp_path)  # a new process: nothing in memory
    resumed = feed(store_bank(reopened), values[120:], 120)
    assert first + resumed == straight
    assert [i for i, v in enumerate(straight) if v.alert] == [250]


def test_new_parameters_start_a_new_warm_up(tmp_path):
    store = Store(tmp_path)
    bank = store_bank(store)
    feed(bank, series(300)[:120], 0)
    bank.flush()
    stricter = PARAMS._replace(threshold=8.0)
    detector = store_bank(store).get("s", stricter)
    assert detector.last_ts is None and detector.params == stricter
    assert store_bank(store).get("s", PARAMS).last_ts == 60.0 * 119


def test_unreadable_state_starts_fresh_instead_of_failing(tmp_path):
    store = Store(tmp_path)
    store.save_detector("s", {"version": 2, "params": {"no_such_knob": 1}})
    assert store_bank(store).get("s", PARAMS).last_ts is None


def test_only_detectors_used_since_the_last_save_are_saved_and_not_on_every_run(tmp_path):
    saved: list[str] = []
    bank = DetectorBank(lambda key: None, lambda key, state: saved.append(key), save_every=3600)
    bank.get("a", PARAMS)
    bank.get("b", PARAMS)
    bank.flush()
    assert saved == ["a", "b"]  # the first run saves: a one-shot `agent check` keeps what it learnt
    bank.get("b", PARAMS)
    bank.flush()
    assert saved == ["a", "b"]  # within save_every: not yet
    bank.flush(force=True)
    assert saved == ["a", "b", "b"]


LEVEL = Metric("probe_level", "", "a test series")


class LevelCheck:
    """A minimal plugin: one value per run through the engine, as the real checks do."""

    name: ClassVar[str] = "level"
    Config: ClassVar[type[DetectionConfig]] = DetectionConfig
    metrics: ClassVar[tuple[Metric, ...]] = (LEVEL,)
    values: ClassVar[list[float]] = []

    def __init__(self, config: DetectionConfig):
        self.config = config

    def run(self, ctx: Context) -> CheckResult:
        detector = ctx.detectors.get("level", self.config.detector_params(PARAMS))
        verdict = detector.update(ctx.now(), LevelCheck.values.pop(0))
        return CheckResult(self.name, observations=(LEVEL.observe(verdict.score, {}, ctx.now()),))


class OneCheck(Registry):
    def check(self, name: str) -> type:
        return LevelCheck


def runner(tmp_path, clock) -> Runner:
    doc = {"agent": {"state_dir": str(tmp_path)}, "checks": {"level": {"sensitivity": "medium"}}}
    config = parse_config(doc, "cfg.yaml", OneCheck(("level",), ("console",)))
    return Runner(config, Store(tmp_path), clock=clock)


def test_the_runner_saves_each_checks_detectors_so_a_restart_keeps_the_warm_up(tmp_path):
    LevelCheck.values = series(300)
    now = [0.0]
    first = runner(tmp_path, lambda: now[0])
    for minute in range(100):
        now[0] = 60.0 * minute
        first.run("level")
    first.close()  # what the daemon does on SIGTERM and `agent check` at its end
    first.store.close()
    second = runner(tmp_path, lambda: now[0])  # a restart: a new runner over the same state directory
    detector = second.detectors["level"].get("level", PARAMS)
    assert detector.last_ts == 60.0 * 99 and detector.policy.seen == 100  # the warm-up is not started over
    for minute in range(100, 300):
        now[0] = 60.0 * minute
        second.run("level")
    assert detector.policy.seen == 300
