"""Finds checks and notifiers through Python entry points, so plugins ship as packages."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

from agent.errors import ConfigError

CHECKS = "forewarn.checks"
NOTIFIERS = "forewarn.notifiers"
KINDS = {CHECKS: "check", NOTIFIERS: "notifier"}


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
    """The plugin's class, once every module it needs is importable.

    A plugin imports its heavy client libraries (redis, boto3...) only when it
    runs, so it names them in `requires` ({module: PyPI package}); a missing one
    is a ConfigError (exit 2) before anything runs, never an import error mid-run.
    """
    try:
        plugin = _entry_points(group)[name].load()
    except ModuleNotFoundError as exc:
        raise missing(group, name, exc.name or str(exc), exc.name or str(exc)) from None
    for module, package in getattr(plugin, "requires", {}).items():
        if not _importable(module):
            raise missing(group, name, module, package)
    return plugin


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(group: str, name: str, module: str, package: str) -> ConfigError:
    return ConfigError([f"the {name} {KINDS[group]} needs the Python module {module!r}, which is not installed: "
                        f"{sys.executable} -m pip install {package}"])


def default_registry() -> Registry:
    return Registry(tuple(sorted(_entry_points(CHECKS))), tuple(sorted(_entry_points(NOTIFIERS))))
