"""Cache wait times as users feel them: the slow request one time in fifty that averages hide.

Each run sends small probes spread over the run (PING or a GET of our own probe
key), on a persistent connection and now and then on a new one. The probes of
the last `lookback` are judged together: kept in memory by the daemon, pooled
from the stored per-run counts after a restart or in a one-shot `agent check`.
Server-side counters (redis INFO, memcached stats) explain why. Key names and
values never leave the cache: only counts, sizes and command names are read.

What is unusual for a target (its per-run median wait, hit ratio, eviction
rate) is the detection engine's call: one detector per series, fed one point
per run, kept by the engine across restarts.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

from agent.api import (CheckError, CheckResult, Context, DetectorParams, Finding, Metric, Observation,
                       ResourceStatus, Severity, Status, format_duration)
from checks.cache.clients import Session, client_for
from checks.cache.config import CacheConfig, Target
from checks.cache.server import (Reading, ServerRules, ServerStats, eviction_rate, evidence, judge,
                                 period_hit_ratio, reading)
from checks.cache.stats import (PastRun, Probe, ProbeWindow, Rules, Summary, Tally, Unusual, latency_kind, median,
                                summarize, tally, watch, watch_seconds)

UP = Metric("cache_up", "", "1 when the cache answered at least one probe in the last run, 0 when none.")
PROBE_SECONDS = Metric("cache_probe_seconds", "seconds",
                       "Probe answer time in the last run, by quantile (0.5 and 0.99).")
PROBES = Metric("cache_cycle_probes", "", "Probes sent to the cache in the last run.")
SLOW_RATIO = Metric("cache_slow_probe_ratio", "ratio", "Share of the last run's probes slower than slow_after.")
CONNECT = Metric("cache_connect_seconds", "seconds", "Median time to open a new connection and get a first answer.")
HIT_RATIO = Metric("cache_hit_ratio", "ratio", "Share of lookups that found their entry, since the previous run.")
HITS = Metric("cache_hits_total", "", "Lookups that found their entry, as counted by the server.", "counter")
MISSES = Metric("cache_misses_total", "", "Lookups that found nothing, as counted by the server.", "counter")
EVICTIONS = Metric("cache_evictions_total", "", "Entries the server evicted to make room.", "counter")
MEMORY = Metric("cache_memory_used_ratio", "ratio", "Memory in use as a share of the configured limit.")
FRAGMENTATION = Metric("cache_fragmentation_ratio", "ratio", "Resident memory divided by memory in use (redis).")

SERVICE_INCIDENT = "cache_service"
"""Slow, spiky and unreachable are one incident whose severity changes."""

BASE = DetectorParams(window=960, warmup=120, smooth=4, cooldown=120, persistence=3, trend_persistence=0)
"""The `medium` detector of every series here, one point per run (30 s): the last 8 hours are the usual, the
first hour only learns, and after an alert an hour passes before the next. Three unusual runs in a row are
needed, as one odd run also tilts the next runs' 4-run mean. Trends are not judged (trend_persistence 0)."""


Measure = Callable[[Target, float, Context, float], "Outcome"]
"""How a run measures one target: (target, seconds to spread over, context, since) -> what it saw."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run saw of one target."""

    probes: tuple[Probe, ...]
    error: str
    stats: ServerStats | None
    seconds: float

    @property
    def unreachable(self) -> bool:
        return not any(p.ok for p in self.probes)


class _TargetState:
    """What the check keeps of one target between runs."""

    def __init__(self, target: Target, config: CacheConfig):
        self.session = Session(client_for(target, config.probe_timeout, config.slowlog_entries))
        self.window = ProbeWindow(config.lookback)
        self.reading: Reading | None = None
        self.rules = Rules(target.slow_after, config.min_probes, config.min_slow, config.min_slow_share)


class CacheCheck:
    name: ClassVar[str] = "cache"
    Config: ClassVar[type[CacheConfig]] = CacheConfig
    requires: ClassVar[dict[str, str]] = {"redis": "redis", "pymemcache": "pymemcache"}  # imported when the check runs
    metrics: ClassVar[tuple[Metric, ...]] = (UP, PROBE_SECONDS, PROBES, SLOW_RATIO, CONNECT, HIT_RATIO, HITS,
                                             MISSES, EVICTIONS, MEMORY, FRAGMENTATION)

    def __init__(self, config: CacheConfig, measure: Measure | None = None):
        self.config = config
        self.states = {t.name: _TargetState(t, config) for t in config.targets}
        self.measure = measure or self._probe
        """How a run measures a target: real probes, or a rehearsal's scripted ones."""
        self.runs = 0
        self.params = config.detector_params(BASE)
        self.server_rules = ServerRules(config.hit_ratio_drop, config.min_lookups, config.evictions_min,
                                        config.memory_warning, config.fragmentation_warning,
                                        config.fragmentation_min_waste, _unusual(self.params))

    @classmethod
    def rehearsal(cls, config: CacheConfig, script) -> CacheCheck:
        """This check judging scripted waits (`agent rehearse`): only the measurements are simulated."""
        from checks.cache.rehearsal import ScriptedProbes

        return cls(config, ScriptedProbes(config, script))

    def close(self) -> None:
        for state in self.states.values():
            state.session.close()

    def run(self, ctx: Context) -> CheckResult:
        targets = self.config.targets
        if not targets:
            return CheckResult(self.name)
        seconds = self.config.cycle_seconds(first=self.runs == 0)
        self.runs += 1
        since = ctx.now() - self.config.lookback
        with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="cache-probe") as pool:
            futures = [pool.submit(self.measure, t, seconds, ctx, since) for t in targets]
            outcomes: list[Outcome | CheckError] = []
            for future in futures:
                try:
                    outcomes.append(future.result())
                except CheckError as exc:  # e.g. the password's environment variable is missing
                    outcomes.append(exc)
        statuses, observations, findings = [], [], []
        for target, outcome in zip(targets, outcomes):
            labels = {"target": target.name}
            if isinstance(outcome, CheckError):
                statuses.append(ResourceStatus(target.name, Status.UNKNOWN, f"not probed: {outcome}", labels))
                continue
            seen, found, summary, facts = self._judge(target, outcome, ctx)
            observations += seen
            findings += found
            worst = max((f.severity.status for f in found), default=Status.OK)
            statuses.append(ResourceStatus(target.name, worst, summary, labels, facts))
        return CheckResult(self.name, tuple(statuses), tuple(observations), tuple(findings))

    def _probe(self, target: Target, seconds: float, ctx: Context, since: float) -> Outcome:
        session = self.states[target.name].session
        probes, error = session.cycle(self.config.probes, seconds, self.config.fresh_every,
                                      patience=self.config.probe_timeout, now=ctx.now)
        ctx.log.debug("cache %s: %d probes over %.1fs", target.name, len(probes), seconds)
        stats = session.stats(since) if any(p.ok for p in probes) else None
        return Outcome(tuple(probes), error, stats, seconds)

    # ------------------------------------------------------------------ judging

    def _judge(self, target: Target, outcome: Outcome, ctx: Context
               ) -> tuple[list[Observation], list[Finding], str, dict[str, Any]]:
        """Observations, findings, the status line, and the target's current numbers (for a resolution)."""
        now, labels, state = ctx.now(), {"target": target.name}, self.states[target.name]
        if outcome.unreachable:
            ctx.log.warning("cache %s did not answer: %s", target.name, outcome.error)
            return [UP.observe(0, labels, now)], [self._unreachable(target, outcome)], \
                f"not answering: {outcome.error}", {"target": target.name, "kind": target.kind}
        cycle = summarize(outcome.probes, target.slow_after)
        fresh = [p.seconds for p in outcome.probes if p.fresh and p.ok]
        observations = [
            UP.observe(1, labels, now), PROBES.observe(cycle.count, labels, now),
            SLOW_RATIO.observe(cycle.slow_share, labels, now),
            PROBE_SECONDS.observe(cycle.median, {**labels, "quantile": "0.5"}, now),
            PROBE_SECONDS.observe(cycle.p99, {**labels, "quantile": "0.99"}, now),
        ]
        if fresh:
            observations.append(CONNECT.observe(median(fresh), labels, now))
        past = self._past_runs(labels, ctx, now)
        floor = math.log(target.slow_after / 2)  # the detector sees log seconds; half the budget matters
        seen = watch_seconds(ctx.detectors.get(f"{target.name}/median", self.params._replace(floor=floor)), now,
                             cycle.median)
        state.window.add(outcome.probes)
        recent = state.window.recent(now)
        judged = summarize(recent, target.slow_after)
        counts = tally(recent, past, target.slow_after, now, self.config.lookback)
        span = max(now - counts.since, outcome.seconds)
        facts = _latency_facts(target, judged, counts, seen, span)
        findings = []
        kind = latency_kind(judged, counts, seen, state.rules)
        if kind:
            findings.append(self._latency(kind, target, judged, counts, seen, fresh, span, outcome.stats))
        if outcome.stats:
            seen, found = self._server(target, outcome.stats, state, ctx, now)
            observations += seen
            findings += found
        summary = (f"median {_ms(judged.median)}, {counts.slow} of {counts.probes} probes slower than "
                   f"{_ms(target.slow_after)} over {format_duration(span)}")
        return observations, findings, summary, facts

    def _past_runs(self, labels: Mapping[str, str], ctx: Context, now: float) -> list[PastRun]:
        since = now - self.config.lookback
        counts = dict(ctx.history.series(PROBES.name, labels, since))
        ratios = dict(ctx.history.series(SLOW_RATIO.name, labels, since))
        return [PastRun(ts, int(n), round(ratios[ts] * n)) for ts, n in counts.items() if ts in ratios and ts < now]

    def _latency(self, kind: str, target: Target, judged: Summary, counts: Tally, seen: Unusual,
                 fresh: list[float], span: float, stats: ServerStats | None) -> Finding:
        facts = _latency_facts(target, judged, counts, seen, span)
        shown = {
            "endpoint": f"{target.name} ({target.url})",
            "probes": f"{counts.probes} over {format_duration(span)}, {counts.slow} slower than "
                      f"{_ms(target.slow_after)} ({counts.slow_share:.1%}), {judged.failed} without answer",
            "wait times": f"median {_ms(judged.median)}, p95 {_ms(judged.p95)}, p99 {_ms(judged.p99)}, "
                          f"max {_ms(judged.max)} (last {judged.count} probes in memory)",
        }
        if fresh:
            shown["new connections"] = f"{len(fresh)} in the last run, median {_ms(median(fresh))} to connect and answer"
        if seen.usual is not None:
            shown["usual median"] = f"{_ms(seen.usual)} (median of the per-run medians of the last {seen.learnt} runs)"
        if kind == "cache_slow":
            rule = f"median above {_ms(target.slow_after)}" if judged.median > target.slow_after else (
                f"median at least half of {_ms(target.slow_after)} while the per-run median is unusually high "
                f"({seen.episode}): {self.server_rules.unusual}")
            summary = f"{target.name}: typical wait {_ms(judged.median)} (slow after {_ms(target.slow_after)})"
        else:
            rule = (f"median below {_ms(target.slow_after)} while at least {self.config.min_slow} probes and "
                    f"{self.config.min_slow_share:.0%} of at least {self.config.min_probes} are slower")
            summary = (f"{target.name}: {counts.slow} of {counts.probes} probes slower than {_ms(target.slow_after)} "
                       f"while the median is {_ms(judged.median)}")
        server = evidence(stats) if stats else {}
        return Finding(self.name, kind, Severity.WARNING, target.name, {"target": target.name}, summary, facts,
                       {**shown, **server, "rule": rule}, incident=SERVICE_INCIDENT)

    def _unreachable(self, target: Target, outcome: Outcome) -> Finding:
        return Finding(
            self.name, "cache_unreachable", Severity.CRITICAL, target.name, {"target": target.name},
            f"{target.name} did not answer any of {len(outcome.probes)} probes",
            {"target": target.name, "kind": target.kind, "probes": len(outcome.probes)},
            {"endpoint": f"{target.name} ({target.url})", "error": outcome.error,
             "probes": f"{len(outcome.probes)} sent, none answered within {_ms(self.config.probe_timeout)}",
             "rule": "no probe of a run answered"},
            incident=SERVICE_INCIDENT)

    def _server(self, target: Target, stats: ServerStats, state: _TargetState, ctx: Context,
                now: float) -> tuple[list[Observation], list[Finding]]:
        labels = {"target": target.name}
        current = reading(stats, now)
        before = state.reading or self._stored_reading(labels, ctx, now)
        state.reading = current or state.reading
        observations = []
        if current:
            observations += [HITS.observe(current.hits, labels, now), MISSES.observe(current.misses, labels, now),
                             EVICTIONS.observe(current.evictions, labels, now)]
        ratio = period_hit_ratio(before, current)
        if ratio:
            observations.append(HIT_RATIO.observe(ratio[0], labels, now))
        if stats.memory_ratio is not None:
            observations.append(MEMORY.observe(stats.memory_ratio, labels, now))
        if stats.fragmentation is not None:
            observations.append(FRAGMENTATION.observe(stats.fragmentation, labels, now))
        hit_ratio, evictions = self._watch_server(target, state, before, current, ctx, now)
        findings = [
            Finding(self.name, v.kind, v.severity, target.name, labels, f"{target.name}: {v.summary}",
                    {"target": target.name, "kind": target.kind, **v.facts},
                    {"endpoint": f"{target.name} ({target.url})", **v.evidence})
            for v in judge(stats, before, current, hit_ratio, evictions, self.server_rules)]
        return observations, findings

    def _watch_server(self, target: Target, state: _TargetState, before: Reading | None, current: Reading | None,
                      ctx: Context, now: float) -> tuple[Unusual, Unusual]:
        """Feed this period's hit ratio and eviction rate to their detectors (one point each, when measured).

        A hit ratio over fewer than `min_lookups` lookups is noise, not a point of the series.
        """
        hit_ratio = evictions = Unusual()
        ratio = period_hit_ratio(before, current)
        if ratio and ratio[1] >= self.config.min_lookups:
            hit_ratio = watch(ctx.detectors.get(f"{target.name}/hit_ratio", self.params), now, ratio[0])
        period = eviction_rate(before, current)
        if period:
            rate = period[0] / period[1]
            evictions = watch(ctx.detectors.get(f"{target.name}/evictions", self.params), now, rate)
        return hit_ratio, evictions

    def _stored_reading(self, labels: Mapping[str, str], ctx: Context, now: float) -> Reading | None:
        """The last counters an earlier process stored, so one-shot runs see rates too."""
        since = now - self.config.baseline
        series = [dict(ctx.history.series(m.name, labels, since)) for m in (HITS, MISSES, EVICTIONS)]
        common = sorted(set(series[0]) & set(series[1]) & set(series[2]))
        common = [ts for ts in common if ts < now]
        if not common:
            return None
        ts = common[-1]
        return Reading(ts, int(series[0][ts]), int(series[1][ts]), int(series[2][ts]))


def _latency_facts(target: Target, judged: Summary, counts: Tally, seen: Unusual, span: float) -> dict[str, Any]:
    return {"target": target.name, "kind": target.kind, "probes": counts.probes, "slow_probes": counts.slow,
            "slow_share": counts.slow_share, "slow_after_seconds": target.slow_after,
            "median_seconds": judged.median, "span_seconds": span,
            # the longest wait is known only for the probes in memory: said only when they are the whole window
            "worst_seconds": judged.max if counts.probes <= judged.count else None,
            "usual_median_seconds": seen.usual, "failed_probes": judged.failed}


def _unusual(params: DetectorParams) -> str:
    """The detector's rule in words, for the evidence's rule line."""
    return (f"{params.persistence} runs in a row at least {params.threshold:g} robust spreads beyond every one of "
            f"the last {params.window} runs (the run's value or its {params.smooth}-run mean), "
            f"after {params.warmup} runs of warm-up")


def _ms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
