"""What the cache server says about itself (redis INFO, memcached stats), and when it matters.

Only counters, sizes and command NAMES are kept: never a key name or a value.
Rates come from two readings of the server's counters (this run and the last
one, from memory or from the stored history), so `agent check` judges too.
Whether a hit ratio or an eviction rate is unusual for this server is its
detector's call; the rules here add the floors that make it matter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from agent.api import Severity, format_bytes
from checks.cache.stats import Unusual


OWN_CLIENT_NAME = "forewarn"
"""The probes' client name; their own commands are left out of the slow-command list."""


@dataclass(frozen=True, slots=True)
class ServerStats:
    kind: str
    hits: int | None = None
    misses: int | None = None
    evictions: int | None = None
    used_memory: int | None = None
    max_memory: int | None = None
    """None or 0: no limit."""
    evicts: bool = True
    """False when a full cache refuses writes (redis `noeviction`)."""
    policy: str = ""
    fragmentation: float | None = None
    rss: int | None = None
    clients: int | None = None
    blocked_clients: int | None = None
    fork_usec: int | None = None
    latency_events: tuple[tuple[str, int, int], ...] = ()
    """(event, latest ms, max ms) from LATENCY LATEST."""
    slow_commands: tuple[tuple[str, int], ...] = ()
    """(command name, entries) from SLOWLOG, most frequent first."""

    @property
    def memory_ratio(self) -> float | None:
        if self.used_memory is None or not self.max_memory:
            return None
        return self.used_memory / self.max_memory


@dataclass(frozen=True, slots=True)
class Reading:
    """The server's cumulative counters at one moment."""

    at: float
    hits: int
    misses: int
    evictions: int


@dataclass(frozen=True, slots=True)
class ServerRules:
    hit_ratio_drop: float = 0.2
    min_lookups: int = 200
    evictions_min: int = 100
    memory_warning: float = 0.9
    fragmentation_warning: float = 1.5
    fragmentation_min_waste: float = 64e6
    unusual: str = "unusual for this server"
    """How the detector decides "unusual", for the rule line of the evidence."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A server-side finding before it is tied to a target."""

    kind: str
    severity: Severity
    summary: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, str] = field(default_factory=dict)


def _int(info: Mapping[str, Any], key: str) -> int | None:
    value = info.get(key)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def from_redis(info: Mapping[str, Any], latency: Sequence[Sequence[Any]] = (),
               slowlog: Sequence[Sequence[Any]] = (), since: float = 0.0) -> ServerStats:
    """From INFO, LATENCY LATEST and raw SLOWLOG GET entries (only each entry's command name is read)."""
    names: Counter[str] = Counter()
    for entry in slowlog:
        own = len(entry) > 5 and _text(entry[5]) == OWN_CLIENT_NAME
        if len(entry) > 3 and float(entry[1]) >= since and entry[3] and not own:
            names[_text(entry[3][0]).upper()] += 1
    policy = str(info.get("maxmemory_policy", ""))
    fragmentation = info.get("mem_fragmentation_ratio")
    return ServerStats(
        kind="redis", hits=_int(info, "keyspace_hits"), misses=_int(info, "keyspace_misses"),
        evictions=_int(info, "evicted_keys"), used_memory=_int(info, "used_memory"),
        max_memory=_int(info, "maxmemory"), evicts=policy != "noeviction", policy=policy,
        fragmentation=float(fragmentation) if fragmentation is not None else None, rss=_int(info, "used_memory_rss"),
        clients=_int(info, "connected_clients"), blocked_clients=_int(info, "blocked_clients"),
        fork_usec=_int(info, "latest_fork_usec"),
        latency_events=tuple((_text(e[0]), int(e[2]), int(e[3])) for e in latency if len(e) >= 4),
        slow_commands=tuple(names.most_common(5)))


def from_memcached(stats: Mapping[Any, Any]) -> ServerStats:
    info = {_text(k): v for k, v in stats.items()}
    return ServerStats(
        kind="memcached", hits=_int(info, "get_hits"), misses=_int(info, "get_misses"),
        evictions=_int(info, "evictions"), used_memory=_int(info, "bytes"), max_memory=_int(info, "limit_maxbytes"),
        policy="lru", clients=_int(info, "curr_connections"))


def _text(value: Any) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def reading(stats: ServerStats, at: float) -> Reading | None:
    if stats.hits is None or stats.misses is None or stats.evictions is None:
        return None
    return Reading(at, stats.hits, stats.misses, stats.evictions)


def period_hit_ratio(before: Reading | None, now: Reading | None) -> tuple[float, int] | None:
    """(hit ratio, lookups) between two readings; None across a restart or without lookups."""
    if before is None or now is None or now.hits < before.hits or now.misses < before.misses:
        return None
    hits, misses = now.hits - before.hits, now.misses - before.misses
    return (hits / (hits + misses), hits + misses) if hits + misses else None


def eviction_rate(before: Reading | None, now: Reading | None) -> tuple[int, float] | None:
    """(entries evicted, seconds) between two readings; None across a restart."""
    if before is None or now is None or now.evictions < before.evictions or now.at <= before.at:
        return None
    return now.evictions - before.evictions, now.at - before.at


def judge(stats: ServerStats, before: Reading | None, now: Reading | None, hit_ratio: Unusual,
          evictions: Unusual, rules: ServerRules) -> list[Verdict]:
    """Findings of one run; `hit_ratio` and `evictions` are what their detectors said of this run's values."""
    found: list[Verdict] = []
    context = evidence(stats)
    ratio = period_hit_ratio(before, now)
    usual_ratio = hit_ratio.usual
    if ratio and hit_ratio.down and usual_ratio is not None and ratio[1] >= rules.min_lookups \
            and usual_ratio - ratio[0] >= rules.hit_ratio_drop:
        found.append(Verdict(
            "cache_hit_ratio_drop", Severity.WARNING, f"hit ratio {ratio[0]:.0%}, usually {usual_ratio:.0%}",
            {"hit_ratio": ratio[0], "usual_hit_ratio": usual_ratio, "lookups": ratio[1]},
            {**context, "hit ratio": f"{ratio[0]:.1%} over {ratio[1]:,} lookups (usually {usual_ratio:.1%})",
             "rule": f"hit ratio at least {rules.hit_ratio_drop:.0%} below its usual value, over at least "
                     f"{rules.min_lookups} lookups, and unusually low: {rules.unusual}"}))
    period = eviction_rate(before, now)
    if period and period[0] >= rules.evictions_min and evictions.up:
        evicted, seconds = period
        rate, usual = evicted / seconds, evictions.usual or 0.0  # an episode means the detector has a past
        found.append(Verdict(
            "cache_evictions_surge", Severity.WARNING, f"{evicted:,} entries evicted in {seconds:.0f}s",
            {"evicted": evicted, "period_seconds": seconds, "per_minute": rate * 60, "usual_per_minute": usual * 60,
             "hit_ratio": ratio[0] if ratio else None},
            {**context, "evictions": f"{evicted:,} in {seconds:.0f}s ({rate * 60:,.1f}/min, usually "
                                     f"{usual * 60:,.1f}/min)",
             "rule": f"at least {rules.evictions_min} evictions since the last run, at a rate unusually high "
                     f"({rules.unusual})"}))
    memory = stats.memory_ratio
    if memory is not None and memory >= rules.memory_warning:
        found.append(Verdict(
            "cache_memory_near_limit", Severity.INFO if stats.evicts else Severity.WARNING,
            f"{memory:.0%} of its memory limit in use",
            {"memory_ratio": memory, "used_bytes": stats.used_memory, "limit_bytes": stats.max_memory,
             "evicts": stats.evicts},
            {**context, "rule": f"used memory >= {rules.memory_warning:.0%} of the limit"}))
    if stats.fragmentation is not None and stats.rss is not None and stats.used_memory is not None:
        waste = stats.rss - stats.used_memory
        if stats.fragmentation >= rules.fragmentation_warning and waste >= rules.fragmentation_min_waste:
            found.append(Verdict(
                "cache_fragmentation_high", Severity.WARNING, f"fragmentation ratio {stats.fragmentation:.2f}",
                {"fragmentation": stats.fragmentation, "wasted_bytes": waste, "used_bytes": stats.used_memory},
                {**context, "rule": f"fragmentation >= {rules.fragmentation_warning:g} wasting at least "
                                    f"{format_bytes(rules.fragmentation_min_waste)}"}))
    return found


def evidence(stats: ServerStats) -> dict[str, str]:
    """The server's side of the story for the appendix (numbers and command names only)."""
    shown: dict[str, str] = {}
    if stats.used_memory is not None:
        limit = f" of {format_bytes(stats.max_memory)} limit ({stats.policy or 'default policy'})" if stats.max_memory else " (no limit)"
        shown["memory"] = f"{format_bytes(stats.used_memory)}{limit}"
    if stats.fragmentation is not None:
        shown["fragmentation"] = f"{stats.fragmentation:.2f} (rss {format_bytes(stats.rss or 0)})"
    if stats.hits is not None and stats.misses is not None and stats.hits + stats.misses:
        shown["hits since start"] = f"{stats.hits / (stats.hits + stats.misses):.1%} of {stats.hits + stats.misses:,} lookups"
    if stats.evictions is not None:
        shown["evicted since start"] = f"{stats.evictions:,}"
    if stats.clients is not None:
        blocked = f", {stats.blocked_clients} blocked" if stats.blocked_clients else ""
        shown["clients"] = f"{stats.clients} connected{blocked}"
    if stats.fork_usec:
        shown["last fork"] = f"{stats.fork_usec / 1000:.1f} ms"
    if stats.latency_events:
        shown["latency events"] = ", ".join(f"{e} {latest} ms (max {worst} ms)" for e, latest, worst in stats.latency_events)
    if stats.slow_commands:
        shown["slowlog commands"] = ", ".join(f"{name} x{count}" for name, count in stats.slow_commands)
    return shown
