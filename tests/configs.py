"""Hypothesis strategies for config files a careless or hostile user could write.

A valid config with a few keys replaced by odd values (NaN, infinities,
400-digit numbers, NUL bytes, deep nesting, wrong types, unknown keys), then
dumped to YAML and sometimes damaged as text (aliases, tags, invalid UTF-8,
several documents). Shared by tests/unit/test_config_fuzz.py (a few hundred
examples in the default run) and bench/config_fuzz.py (tens of thousands).
"""

from __future__ import annotations

import contextlib
import copy
import io
import sys
from typing import Any

import yaml
from hypothesis import strategies as st

VALID: dict[str, Any] = {
    "agent": {"state_dir": "/tmp/forewarn-fuzz", "listen": "127.0.0.1:9813", "default_owner": "it",
              "update_interval": "20m"},
    "owners": {
        "it": {"department": "IT", "contact": "On-call", "address_as": "Team", "tone": "friendly", "language": "en",
               "notify": ["audit"], "escalate_to": "finance", "escalate_after": "30m"},
        "finance": {"department": "Finance", "contact": "Marco", "address_as": "Mr. Santino", "tone": "formal",
                    "language": "en", "timezone": "Europe/Rome", "quiet_hours": "22:00-07:00", "notify": ["mail"]},
    },
    "resources": [{"name": "Finance drive", "owner": "finance", "impact": "reports", "operation": "saving",
                   "match": {"check": "disk", "mount": "/srv"}},
                  {"name": "Cache", "owner": "it", "match": {"check": "cache", "target": "pacs"}}],
    "checks": {
        "disk": {"interval": "60s", "for": "0s", "warning": "85%", "critical": "95%", "forecast_warning": "72h",
                 "mounts": ["/srv"], "exclude": ["/snap/*"]},
        "cache": {"interval": "30s", "sensitivity": "high", "detector": {"threshold": 5, "cooldown": 10},
                  "probes": 20, "spread": "50%", "targets": [{"name": "pacs", "url": "redis://127.0.0.1:6379/0",
                                                              "slow_after": "100ms", "password_env": "PW"}]},
        "cloud_storage": {"interval": "6h", "source": "listing", "buckets": ["reports"], "currency": "EUR",
                          "usd_rate": 0.9, "prices": {"standard": 0.02}, "prefix_depth": 2},
    },
    "notifiers": {
        "audit": {"type": "file", "path": "/tmp/forewarn-fuzz/notices.jsonl"},
        "mail": {"type": "email", "to": ["a@example.com"], "from": "b@example.com",
                 "smtp": {"host": "smtp.example.com", "port": 587, "starttls": True}},
        "hook": {"type": "dingtalk", "url_env": "HOOK", "secret_env": "SECRET", "timeout": "5s"},
        "fleet": {"type": "alertmanager", "urls": ["http://127.0.0.1:9093"]},
    },
}

ODD_SCALARS = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1, 0.85, -0.0, float("nan"), float("inf"), float("-inf"),
                     10**400, -(10**30), 2**63, 1e308, "", " ", "0s", "0", ".nan", "1e999", "1e999%", "120%",
                     "nan%", "-5s", "200ms", "99999999999999999999d", "redis://u:hunter2@h:1", "http://h",
                     "a\0b", "/var/lib/fore\0warn", "\u202e", "x" * 300, "9" * 400, "Europe/Rome", "22:00-07:00",
                     "127.0.0.1:99999", "[::1]:9813", "zh-CN", "console", "disk", "cache", "file"]),
    st.integers(), st.floats(), st.text(max_size=20))
ODD_KEYS = st.sampled_from(["for", "for_", "url", "password", "token", "type", "check", "match", "interval",
                            "warning", "notify", "colour", "", "\0", "targets", "detector", "smtp", "to", "from"])


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


ODD_VALUES = st.one_of(
    ODD_SCALARS,
    st.integers(min_value=1, max_value=600).map(_nested),
    st.recursive(ODD_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(ODD_KEYS, inner, max_size=3)), max_leaves=6),
)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, path + (index,))
    return found


PATHS = _paths(VALID)


def _apply(doc: Any, change: tuple[tuple, str, Any, Any]) -> Any:
    path, action, key, value = change
    if not path:
        return value if action == "replace" else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if action == "replace":
        parent[path[-1]] = value
    elif action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == "add" and isinstance(parent[path[-1]], dict):
        parent[path[-1]][key] = value
    return doc


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """VALID with up to four keys replaced, deleted or added."""
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        change = (draw(st.sampled_from(PATHS)), draw(st.sampled_from(["replace", "delete", "add"])),
                  draw(ODD_KEYS), draw(ODD_VALUES))
        try:
            doc = _apply(doc, change)
        except (KeyError, IndexError, TypeError):  # an earlier change removed or replaced the parent
            pass
    return doc


BOMB = "".join(f"{a}: &{a} [{', '.join([f'*{b}'] * 9)}]\n" for b, a in zip("abcdefgh", "bcdefghi"))
TEXT_DAMAGE = [
    lambda text: text,
    lambda text: "a: &a [x, x, x, x, x, x, x, x, x]\n" + BOMB + text,
    lambda text: text.replace("60s", "!!python/object:os.system 60s"),
    lambda text: text + "---\nagent: {}\n",
    lambda text: text.replace("IT", "IT\t\x07\x1b[2J"),
    lambda text: "<<: *nowhere\n" + text,
    lambda text: text[: len(text) // 2],
    lambda text: text.replace("checks:", "checks: &c\n  x: 1\nchecks2: *c\nchecks:"),
    lambda text: "agent: " + "{a: " * 300 + "1" + "}" * 300 + "\n" + text,
]


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    """The bytes of a config file: a dumped document, sometimes damaged as text or as bytes."""
    doc = draw(documents())
    try:
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, RecursionError, ValueError):
        text = "agent: {}\n"
    data = draw(st.sampled_from(TEXT_DAMAGE))(text).encode("utf-8", "surrogatepass")
    if draw(st.integers(min_value=0, max_value=19)) == 0:
        data = data.replace(b"IT", b"\xff\xfe", 1)
    return data


def run_validate(path: str) -> tuple[int, str]:
    """`agent config validate -c PATH` through the CLI's own entry point, in this process: (exit code, stderr)."""
    from agent.cli import main

    err, argv = io.StringIO(), sys.argv
    sys.argv = ["agent", "config", "validate", "-c", path]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        sys.argv = argv
    return code, err.getvalue()
