"""Scripted probes for `agent rehearse`: what a cache answered, as a scenario says, judged by the real check.

A scenario gives per target, at each moment: `wait` (the usual answer, seconds), `slow_share` (the
share of probes that wait `slow_wait` instead) and `down` (1: nothing answers). The probes of a run
are spread over the run like real ones, the slow ones evenly among them.
"""

from __future__ import annotations

from typing import Callable, Mapping

from agent.api import Context
from checks.cache.check import Outcome
from checks.cache.config import CacheConfig, Target
from checks.cache.stats import Probe

Script = Callable[[float], Mapping[str, Mapping[str, float]]]


class ScriptedProbes:
    def __init__(self, config: CacheConfig, script: Script):
        self.config, self.script = config, script

    def __call__(self, target: Target, seconds: float, ctx: Context, since: float) -> Outcome:
        now = ctx.now()
        values = self.script(now).get(target.name, {})
        count = self.config.probes
        if values.get("down", 0) >= 0.5:
            return Outcome(tuple(Probe(now, self.config.probe_timeout, ok=False) for _ in range(count)),
                           "connection refused", None, seconds)
        wait, slow_wait = values.get("wait", 0.001), values.get("slow_wait", 2.0)
        slow = round(values.get("slow_share", 0.0) * count)
        every = count / slow if slow else 0.0
        probes = tuple(Probe(now - seconds + seconds * i / count,
                             slow_wait if slow and int(i % every) == 0 and i // every < slow else wait)
                       for i in range(count))
        return Outcome(probes, "", None, seconds)
