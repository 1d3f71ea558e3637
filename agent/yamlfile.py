"""Reads a YAML file a user points at, within limits, so that no file can hang or exhaust the agent.

Refused, each as one line: anything but a regular file (a FIFO would block for
ever, /dev/zero never ends), more than MAX_BYTES, nesting deeper than
MAX_DEPTH, and documents whose aliases expand to more than MAX_NODES nodes (a
318-byte "billion laughs" expands to 10^9). The limits are checked on the
parser's event stream, which is iterative, before anything is built.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

from agent.errors import ConfigError

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000


def read_text(path: str, what: str = "config file") -> str:
    """The file's text; ConfigError when it is missing, not a regular file, too big or not UTF-8."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)  # a FIFO must not block the open
    except FileNotFoundError:
        raise ConfigError([f"{path}: {what} not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read {what} ({exc.__class__.__name__}: {exc.strerror})"]) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError([f"{path}: {what} is not a regular file"])
        try:
            data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read {what} ({exc.__class__.__name__}: {exc.strerror})"]) from None
    if len(data) > MAX_BYTES:
        raise ConfigError([f"{path}: {what} is larger than {MAX_BYTES >> 20} MiB"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: cannot read {what} (not UTF-8: {exc.reason} at byte {exc.start})"]) from None


def load(text: str, source: str) -> Any:
    """The YAML document in `text` (None when empty); ConfigError for invalid YAML or a document beyond the limits."""
    try:
        _within_limits(text, source)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{source}: {where}invalid YAML: {problem}"]) from None
    except ValueError as exc:  # e.g. an integer beyond Python's 4300-digit conversion limit
        raise ConfigError([f"{source}: invalid YAML: {exc}"]) from None


def _within_limits(text: str, source: str) -> None:
    depth, nodes = 0, 0
    sizes: dict[str, int] = {}
    opened: list[tuple[str | None, int]] = []  # (anchor, node count when the collection opened)
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            nodes += sizes.get(event.anchor, 1)
        elif isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
            nodes += 1
            if isinstance(event, yaml.ScalarEvent):
                if event.anchor:
                    sizes[event.anchor] = 1
            else:
                opened.append((event.anchor, nodes - 1))
                depth = max(depth, len(opened))
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start = opened.pop()
            if anchor:
                sizes[anchor] = nodes - start
        if depth > MAX_DEPTH:
            raise ConfigError([f"{source}: line {event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels"])
        if nodes > MAX_NODES:
            raise ConfigError([f"{source}: line {event.start_mark.line + 1}: more than {MAX_NODES} values "
                               f"once aliases are expanded"])
