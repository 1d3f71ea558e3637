"""What the cache check is told: its targets, how often to probe, what counts as slow.

Passwords are accepted only by reference (`password_env`, `password_file`) and
read at connect time; a URL carrying a password is refused without echoing it.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from agent.api import (CheckError, DetectionConfig, Duration, Field, Model, Parse, Percent, Size, model_check,
                       read_secret, split_url)

SCHEMES = ("redis", "rediss", "sentinel", "memcached", "tcp")
DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "sentinel": 26379, "memcached": 11211}


def _valid_url(value: object) -> object:
    """A cache URL; one carrying a password is refused without being echoed."""
    if not isinstance(value, str):
        return value
    parts = split_url(value, SCHEMES, "one of " + ", ".join(s + "://" for s in SCHEMES))
    endpoints(value)  # raises a ValueError that says what is wrong
    if parts.scheme == "sentinel" and not parts.path.strip("/"):
        raise ValueError("a sentinel URL names the service: sentinel://HOST:26379,HOST2:26379/SERVICE[/DB]")
    return value


Url = Annotated[str, Parse(_valid_url)]


class Target(Model):
    """One cache endpoint to probe."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    url: Url
    slow_after: Duration = 0.1
    """A request slower than this counts as slow (what a user would notice)."""
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    probe: Literal["ping", "get"] = "ping"
    """ping: PING (redis) / version (memcached); get: GET of probe_key, a miss on purpose."""
    probe_key: str = "forewarn:probe"
    tls_ca_file: Path | None = None
    tls_verify: bool = True

    @model_check
    def _one_password_source(self) -> None:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if self.kind == "tcp" and (self.password_env or self.password_file or self.probe != "ping"):
            raise ValueError("tcp:// targets only measure the connect time: no password and no probe command")

    @property
    def kind(self) -> str:
        """redis (also rediss and sentinel), memcached or tcp."""
        return "redis" if self.scheme in ("rediss", "sentinel") else self.scheme

    @property
    def scheme(self) -> str:
        return urllib.parse.urlsplit(self.url).scheme

    def password(self) -> str | None:
        """Read at connect time, never kept in config objects or logs."""
        try:
            return read_secret("password", self.password_env, self.password_file)
        except ValueError as exc:
            raise CheckError(f"{self.name}: {exc}") from None

    def _path(self) -> list[str]:
        return [p for p in urllib.parse.urlsplit(self.url).path.split("/") if p]

    def db(self) -> int:
        index = self._path()[1:] if self.scheme == "sentinel" else self._path()
        return int(index[0]) if index else 0

    def service(self) -> str:
        """The Sentinel service name (sentinel:// URLs only)."""
        return self._path()[0]


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int


def endpoints(url: str) -> tuple[Endpoint, ...]:
    """host:port pairs of a URL; sentinel:// may list several, comma-separated."""
    parts = urllib.parse.urlsplit(url)
    found = []
    for item in parts.netloc.rpartition("@")[2].split(","):
        if item.startswith("["):  # [::1]:6379
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            host, _, port = item.partition(":")
        if not host:
            raise ValueError("the URL names no host")
        if not port:
            if parts.scheme not in DEFAULT_PORTS:
                raise ValueError("tcp:// URLs need a port, e.g. tcp://10.0.0.5:5432")
            port = str(DEFAULT_PORTS[parts.scheme])
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("the port must be a number between 1 and 65535")
        found.append(Endpoint(host, int(port)))
    return tuple(found)


class CacheConfig(DetectionConfig):
    interval: Duration = 30.0
    targets: tuple[Target, ...] = ()
    probes: int = Field(20, ge=5, le=2000)
    """Probes per target and run, spread over the run rather than sent in one burst."""
    window: Duration = 3.0
    """How long the first run of a fresh instance (e.g. `agent check`) spreads its probes."""
    spread: Percent = 0.5
    """Later runs spread their probes over this share of min(interval, timeout)."""
    probe_timeout: Duration = 2.0
    """A probe without an answer by then counts as failed (and slow)."""
    fresh_every: int = Field(10, ge=1)
    """Every n-th probe opens a new connection, so connect time is part of what is seen."""
    lookback: Duration = 600.0
    """The rolling window of probes that is judged (kept in memory, pooled from history after a restart)."""
    baseline: Duration = 7 * 86400.0
    """How old the stored server counters may be that a fresh process (`agent check`) takes rates from."""
    min_probes: int = Field(20, ge=1)
    min_slow: int = Field(3, ge=1)
    min_slow_share: Percent = 0.01
    hit_ratio_drop: Percent = 0.2
    """An unusually low hit ratio is a finding when it is at least this far below its usual value."""
    min_lookups: int = Field(200, ge=1)
    evictions_min: int = Field(100, ge=1)
    """Evictions in one run below this never count as a surge."""
    memory_warning: Percent = 0.9
    fragmentation_warning: float = Field(1.5, gt=1)
    fragmentation_min_waste: Size = 64e6
    """Fragmentation matters only when it wastes at least this much memory."""
    slowlog_entries: int = Field(128, ge=0, le=1024)
    """How many recent SLOWLOG entries to read (only their command names are kept)."""

    @model_check
    def _fits(self) -> None:
        names = [t.name for t in self.targets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"target names must be unique (repeated: {', '.join(duplicates)})")
        if self.window > self.budget:
            raise ValueError("timeout must leave room for window plus 4 x probe_timeout "
                             "(a late probe, a new connection and the server's statistics)")

    def match_keys(self) -> tuple[str, ...]:
        return ("target",)

    @property
    def budget(self) -> float:
        """The longest probing may take so that a run still ends within its timeout."""
        return self.timeout - 4 * self.probe_timeout

    def cycle_seconds(self, first: bool) -> float:
        """How long one run spreads its probes: short for a fresh instance, most of the interval later."""
        wanted = self.window if first else self.spread * min(self.interval, self.timeout)
        return max(0.0, min(wanted, self.budget))
