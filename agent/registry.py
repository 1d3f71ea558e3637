"""Finds checks and notifiers through Python entry points, so plugins ship as packages.

The entry points are read from each installed distribution's
`entry_points.txt` (the file importlib.metadata reads too) on sys.path, in
path order, the first of a name winning as imports do: importlib.metadata
itself would cost every command 10-30 ms of start-up.
"""

from __future__ import annotations

import configparser
import glob
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import cache

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
def _entry_points(group: str) -> dict[str, str]:
    """name -> "module:attribute" for the group."""
    found: dict[str, str] = {}
    for entry in sys.path:
        for path in sorted(glob.glob(os.path.join(glob.escape(entry or "."), "*.*-info", "entry_points.txt"))):
            parser = configparser.ConfigParser(delimiters=("=",), interpolation=None, strict=False)
            parser.optionxform = str  # names are case-sensitive
            try:
                parser.read(path, encoding="utf-8")
            except configparser.Error:
                continue  # a broken distribution does not hide the others
            if parser.has_section(group):
                for name, value in parser.items(group):
                    found.setdefault(name, value.split("[")[0].strip())
    return found


def _import(value: str) -> type:
    module, _, attribute = value.partition(":")
    found = importlib.import_module(module.strip())
    for part in filter(None, attribute.strip().split(".")):
        found = getattr(found, part)
    return found


@cache
def _load(group: str, name: str) -> type:
    """The plugin's class, once every module it needs is importable.

    A plugin imports its heavy client libraries (redis, boto3...) only when it
    runs, so it names them in `requires` ({module: PyPI package}); a missing one
    is a ConfigError (exit 2) before anything runs, never an import error mid-run.
    """
    try:
        plugin = _import(_entry_points(group)[name])
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
