"""Finds checks and notifiers through Python entry points, so plugins ship as packages."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

CHECKS = "forewarn.checks"
NOTIFIERS = "forewarn.notifiers"


@dataclass(frozen=True)
class Registry:
    """Names of the available plugins; a plugin's class is imported only when used."""

    checks: tuple[str, ...]
    notifiers: tuple[str, ...]

    def check(self, name: str) -> type:
        return _load(CHECKS, name)

    def notifier(self, type_name: str) -> type:
        return _load(NOTIFIERS, type_name)


@cache
def _entry_points(group: str) -> dict:
    return {ep.name: ep for ep in entry_points(group=group)}


@cache
def _load(group: str, name: str) -> type:
    return _entry_points(group)[name].load()


def default_registry() -> Registry:
    return Registry(tuple(sorted(_entry_points(CHECKS))), tuple(sorted(_entry_points(NOTIFIERS))))
