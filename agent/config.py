"""Loads and validates the YAML config once, reporting every problem as one line.

Each line reads `FILE: key.path: what is wrong (got VALUE)`. Check and notifier
sections are validated by the plugin's own model, found through the registry.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent import yamlfile
from agent.api import CheckConfig, ConfigError, Duration, NotifierConfig
from agent.registry import Registry, default_registry
from agent.schema import Invalid, Model, field_check, show, validate

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


class AgentSection(Model):
    state_dir: Path | None = None
    listen: str = "127.0.0.1:9813"
    default_owner: str = "it"
    hostname: str | None = None
    update_interval: Duration = 1200.0
    """How often an open critical incident gets an update notice."""
    web_config_file: str | None = None
    """TLS and basic auth for /metrics, in the exporters' web-config format."""

    @field_check("listen")
    def _listen(cls, name: str, value: str, data: Mapping[str, Any]) -> str:
        match = _LISTEN.match(value)
        if not match or not 0 < int(match.group(2)) < 65536:
            raise ValueError("not an address like 127.0.0.1:9813")
        return value


class Owner(Model):
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
    response: str = ""
    """What IT does for this owner's resources ("IT moves old archives on Thursdays"); said in notices."""

    @field_check("timezone")
    def _timezone(cls, name: str, value: str, data: Mapping[str, Any]) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown timezone (use a name like Europe/Rome)") from None
        return value

    @field_check("quiet_hours")
    def _quiet_hours(cls, name: str, value: str | None, data: Mapping[str, Any]) -> str | None:
        if value is not None and not _QUIET_HOURS.match(value):
            raise ValueError("not a time range like 22:00-07:00")
        return value


class Resource(Model):
    name: str
    owner: str
    impact: str = ""
    operation: str = ""
    response: str = ""
    """What IT does for this resource; notices say it as what is being done (else the owner's `response`)."""
    match: dict[str, str]

    @field_check("match")
    def _match(cls, name: str, value: dict[str, str], data: Mapping[str, Any]) -> dict[str, str]:
        if "check" not in value:
            raise ValueError("must name the check, e.g. {check: disk, mount: /srv}")
        return value

    def matches(self, check: str, labels: Mapping[str, str]) -> bool:
        return all((check if key == "check" else labels.get(key)) == want for key, want in self.match.items())


SECTIONS: dict[str, Any] = {
    "agent": AgentSection,
    "owners": dict[str, Owner],
    "resources": list[Resource],
    "checks": dict[str, dict[str, Any] | None],
    "notifiers": dict[str, dict[str, Any]],
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
    warnings: tuple[str, ...] = ()
    """Valid but probably not meant (`FILE: key.path: ...`): shown by `config validate` and the daemon."""

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
    source = str(path)
    data = yamlfile.load(yamlfile.read_text(source), source)
    if data is None:  # on a reload this silently dropped every owner and notifier
        raise ConfigError([f"{source}: the config file is empty (delete it to run on the built-in defaults)"])
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the top level must be a mapping of sections (got {type(data).__name__})"])
    return parse_config(data, source, registry)


def parse_config(data: dict, source: str, registry: Registry) -> Config:
    """Validates a whole document; raises ConfigError listing every problem."""
    problems = [f"{source}: {path}: {msg}" for path, msg in _find_plain_secrets(data, ())]
    problems += [f"{source}: {key}: unknown section (expected one of {', '.join(SECTIONS)})"
                 for key in data if key not in SECTIONS]
    parsed: dict[str, Any] = {}
    for key, schema in SECTIONS.items():
        try:
            parsed[key] = validate(schema, data.get(key) or ({} if key != "resources" else []))
        except Invalid as exc:
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
            checks[name] = registry.check(name).Config.parse(section or {})
        except Invalid as exc:
            problems += _describe(exc, source, ("checks", name))

    notifiers: dict[str, NotifierConfig] = {}
    for name, section in raw_notifiers.items():
        kind = section.get("type")
        if kind not in registry.notifiers:
            got = f" (got {show(kind)})" if kind is not None else ""
            problems.append(f"{source}: notifiers.{name}.type: unknown or missing notifier type, "
                            f"expected one of {', '.join(registry.notifiers)}{got}")
            continue
        try:
            notifiers[name] = registry.notifier(kind).Config.parse(section)
        except Invalid as exc:
            problems += _describe(exc, source, ("notifiers", name))

    if sections_valid:  # references are only worth checking between valid sections
        problems += _cross_references(agent, owners, parsed["resources"], raw_notifiers, source)
        problems += _match_labels(parsed["resources"], checks, registry, source)
    if problems:
        raise ConfigError(problems)
    config = Config(source, agent, owners, tuple(parsed["resources"]), checks, notifiers, registry)
    return replace(config, warnings=tuple(f"{source}: {line}" for line in _surprises(config, raw_checks)))


def _match_labels(resources: list[Resource], checks: Mapping[str, CheckConfig], registry: Registry,
                  source: str) -> list[str]:
    """A `match` naming a check or label that no finding carries matches nothing, silently: refuse it."""
    problems = []
    for i, resource in enumerate(resources):
        check = resource.match["check"]
        if check not in registry.checks:
            problems.append(f"{source}: resources.{i}.match.check: unknown check "
                            f"(available: {', '.join(registry.checks)}) (got {show(check)})")
            continue
        config = checks.get(check) or registry.check(check).Config()
        known = config.match_keys()
        for key in resource.match:
            if known is not None and key != "check" and key not in known:
                problems.append(f"{source}: resources.{i}.match.{key}: the {check} check's findings carry no such "
                                f"label (known: {', '.join(known)})")
    return problems


def _surprises(config: Config, raw_checks: Mapping[str, Any]) -> list[str]:
    """Valid but probably not meant: one line each, without refusing the config."""
    lines = [f"owners.{owner_id}.notify: no notifiers, so this owner's notices go nowhere"
             for owner_id, owner in config.owners.items() if not owner.notify]
    if "disk" not in raw_checks:
        lines.append("checks: no disk entry, so local disks are not watched "
                     "(add `disk: {}`, or `disk: {enabled: false}` to say it is meant)")
    return lines


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


def _describe(exc: Invalid, source: str, prefix: tuple) -> list[str]:
    """One line per problem; a problem under a secret key is left out (already reported, never echoed)."""
    return [f"{source}: {problem.line(prefix)}" for problem in exc.found
            if not any(str(part).lower() in SECRET_KEYS for part in prefix + problem.path)]
