"""Loads and validates the YAML config once, reporting every problem as one line.

Each line reads `FILE: key.path: what is wrong (got VALUE)`. Check and notifier
sections are validated by the plugin's own model, found through the registry.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator

from agent.api import CheckConfig, ConfigError, Duration, NotifierConfig
from agent.registry import Registry, default_registry

DEFAULTS_SOURCE = "<built-in defaults>"
SEARCH_PATH = (
    "./forewarn.yaml",
    "~/.config/forewarn/config.yaml",
    "/etc/forewarn/config.yaml",
)
SECRET_KEYS = {"password", "passwd", "secret", "token", "api_key", "apikey", "access_key",
               "secret_access_key", "signing_secret", "webhook", "webhook_url"}
_QUIET_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_LISTEN = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]*):(\d{1,5})$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSection(_Model):
    state_dir: Path | None = None
    listen: str = "127.0.0.1:9813"
    default_owner: str = "it"
    hostname: str | None = None
    update_interval: Duration = 1200.0
    """How often an open critical incident gets an update notice."""
    web_config_file: str | None = None
    """TLS and basic auth for /metrics, in the exporters' web-config format."""

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        match = _LISTEN.match(value)
        if not match or not 0 < int(match.group(2)) < 65536:
            raise ValueError("not an address like 127.0.0.1:9813")
        return value


class Owner(_Model):
    department: str
    contact: str = ""
    address_as: str = ""
    tone: Literal["formal", "friendly"] = "formal"
    language: Literal["en", "zh-CN"] = "en"
    timezone: str = "UTC"
    quiet_hours: str | None = None
    notify: tuple[str, ...] = ()
    escalate_to: str | None = None
    escalate_after: Duration = 1800.0
    """A critical incident not acknowledged this long also goes to `escalate_to`."""

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown timezone (use a name like Europe/Rome)") from None
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        if value is not None and not _QUIET_HOURS.match(value):
            raise ValueError("not a time range like 22:00-07:00")
        return value


class Resource(_Model):
    name: str
    owner: str
    impact: str = ""
    operation: str = ""
    match: dict[str, str]

    @field_validator("match")
    @classmethod
    def _match(cls, value: dict[str, str]) -> dict[str, str]:
        if "check" not in value:
            raise ValueError("must name the check, e.g. {check: disk, mount: /srv}")
        return value

    def matches(self, check: str, labels: Mapping[str, str]) -> bool:
        return all((check if key == "check" else labels.get(key)) == want for key, want in self.match.items())


SECTIONS: dict[str, TypeAdapter] = {
    "agent": TypeAdapter(AgentSection),
    "owners": TypeAdapter(dict[str, Owner]),
    "resources": TypeAdapter(list[Resource]),
    "checks": TypeAdapter(dict[str, dict[str, Any] | None]),
    "notifiers": TypeAdapter(dict[str, dict[str, Any]]),
}


BUILTIN_IT_OWNER = Owner(department="IT", contact="IT team", address_as="IT team", tone="friendly",
                         notify=("console",))


@dataclass(frozen=True)
class Config:
    source: str
    agent: AgentSection
    owners: Mapping[str, Owner]
    resources: tuple[Resource, ...]
    checks: Mapping[str, CheckConfig]
    notifiers: Mapping[str, NotifierConfig]
    registry: Registry = field(repr=False, compare=False, default_factory=default_registry)

    def state_dir(self) -> Path:
        if self.agent.state_dir:
            return self.agent.state_dir
        if os.environ.get("STATE_DIRECTORY"):  # systemd's StateDirectory=
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        if os.geteuid() == 0:
            return Path("/var/lib/forewarn")
        base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
        return Path(base) / "forewarn"

    def hostname(self) -> str:
        return self.agent.hostname or os.uname().nodename

    def resources_for(self, check: str, labels: Mapping[str, str]) -> list[Resource]:
        return [r for r in self.resources if r.matches(check, labels)]

    def wanted(self, check: str) -> tuple[dict[str, str], ...]:
        return tuple({k: v for k, v in r.match.items() if k != "check"}
                     for r in self.resources if r.match.get("check") == check)


def find_config(explicit: str | None) -> Path | None:
    """The config to use: -c, then $FOREWARN_CONFIG, then the search path; None means defaults."""
    if explicit:
        return Path(explicit)
    if os.environ.get("FOREWARN_CONFIG"):
        return Path(os.environ["FOREWARN_CONFIG"])
    for candidate in SEARCH_PATH:
        path = Path(os.path.expanduser(candidate))
        if path.is_file():
            return path
    return None


def load_config(explicit: str | None = None, registry: Registry | None = None) -> Config:
    path = find_config(explicit)
    registry = registry or default_registry()
    if path is None:
        return parse_config({}, DEFAULTS_SOURCE, registry)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.__class__.__name__}: {exc})"]) from None
    return parse_config(_parse_yaml(text, str(path)), str(path), registry)


def _parse_yaml(text: str, source: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{source}: {where}invalid YAML: {problem}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the top level must be a mapping of sections (got {type(data).__name__})"])
    return data


def parse_config(data: dict, source: str, registry: Registry) -> Config:
    """Validates a whole document; raises ConfigError listing every problem."""
    problems = [f"{source}: {path}: {msg}" for path, msg in _find_plain_secrets(data, ())]
    problems += [f"{source}: {key}: unknown section (expected one of {', '.join(SECTIONS)})"
                 for key in data if key not in SECTIONS]
    parsed: dict[str, Any] = {}
    for key, adapter in SECTIONS.items():
        try:
            parsed[key] = adapter.validate_python(data.get(key) or ({} if key != "resources" else []))
        except ValidationError as exc:
            problems += _describe(exc, source, (key,))
    sections_valid = len(parsed) == len(SECTIONS)
    agent: AgentSection = parsed.get("agent", AgentSection())
    owners: dict[str, Owner] = parsed.get("owners", {})
    raw_checks = parsed.get("checks", {}) if "checks" in data else {"disk": {}}
    raw_notifiers = parsed.get("notifiers", {})
    if "it" not in owners and agent.default_owner == "it":
        owners["it"] = BUILTIN_IT_OWNER  # IT hears about everything, on the console unless configured
        raw_notifiers.setdefault("console", {"type": "console"})

    checks: dict[str, CheckConfig] = {}
    for name, section in raw_checks.items():
        if name not in registry.checks:
            problems.append(f"{source}: checks.{name}: unknown check (available: {', '.join(registry.checks)})")
            continue
        try:
            checks[name] = registry.check(name).Config.model_validate(section or {})
        except ValidationError as exc:
            problems += _describe(exc, source, ("checks", name))

    notifiers: dict[str, NotifierConfig] = {}
    for name, section in raw_notifiers.items():
        kind = section.get("type")
        if kind not in registry.notifiers:
            got = f" (got {kind!r})" if kind is not None else ""
            problems.append(f"{source}: notifiers.{name}.type: unknown or missing notifier type, "
                            f"expected one of {', '.join(registry.notifiers)}{got}")
            continue
        try:
            notifiers[name] = registry.notifier(kind).Config.model_validate(section)
        except ValidationError as exc:
            problems += _describe(exc, source, ("notifiers", name))

    if sections_valid:  # references are only worth checking between valid sections
        problems += _cross_references(agent, owners, parsed["resources"], raw_notifiers, source)
    if problems:
        raise ConfigError(problems)
    return Config(source, agent, owners, tuple(parsed["resources"]), checks, notifiers, registry)


def _cross_references(agent: AgentSection, owners: dict[str, Owner], resources: list[Resource], notifiers: dict,
                      source: str) -> list[str]:
    problems = []
    if agent.default_owner not in owners:
        problems.append(f"{source}: agent.default_owner: owner is not defined in owners (got {agent.default_owner!r})")
    for owner_id, owner in owners.items():
        for i, channel in enumerate(owner.notify):
            if channel not in notifiers:
                problems.append(f"{source}: owners.{owner_id}.notify.{i}: notifier is not defined in notifiers (got {channel!r})")
        if owner.escalate_to is not None and owner.escalate_to not in owners:
            problems.append(f"{source}: owners.{owner_id}.escalate_to: owner is not defined in owners (got {owner.escalate_to!r})")
    for i, resource in enumerate(resources):
        if resource.owner not in owners:
            problems.append(f"{source}: resources.{i}.owner: owner is not defined in owners (got {resource.owner!r})")
    return problems


def _find_plain_secrets(node: Any, path: tuple) -> list[tuple[str, str]]:
    """Secrets are accepted only by reference (`*_env`, `*_file`), never inline."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.lower() in SECRET_KEYS:
                found.append((".".join(map(str, path + (key,))),
                              f"secrets are only accepted by reference: use {key}_env or {key}_file"))
            else:
                found += _find_plain_secrets(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _find_plain_secrets(value, path + (i,))
    return found


def _describe(exc: ValidationError, source: str, prefix: tuple) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        loc = prefix + tuple(error["loc"])
        if any(str(part).lower() in SECRET_KEYS for part in loc):
            continue  # already reported, and its value must not be echoed
        path = ".".join(str(part) for part in loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":  # its value is not echoed: a mistyped key may hold a secret
            lines.append(f"{source}: {path}: unknown key")
            continue
        elif error["type"] == "missing":
            lines.append(f"{source}: {path}: required key is missing")
            continue
        lines.append(f"{source}: {path}: {message} (got {_show(error.get('input'))})")
    return lines


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
