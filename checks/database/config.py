"""What the database check is told: its targets, what counts as slow, how far it may look.

Passwords are accepted only by reference (`password_env`, `password_file`, or
libpq's own service file and `.pgpass`) and read at connect time; a URL
carrying a password is refused without echoing it.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

from agent.api import CheckError, DetectionConfig, Duration, Field, Model, Parse, model_check, read_secret, split_url

SCHEMES = ("postgresql", "postgres")


def _valid_url(value: object) -> object:
    """A PostgreSQL URL; one carrying a password is refused without being echoed."""
    if not isinstance(value, str):
        return value
    parts = split_url(value, SCHEMES, "postgresql://USER@HOST:PORT/DATABASE")
    if not parts.path.strip("/"):
        raise ValueError("the URL names no database: postgresql://USER@HOST:PORT/DATABASE")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError("the port must be a number between 1 and 65535") from None
    return value


Url = Annotated[str, Parse(_valid_url)]


class Target(Model):
    """One PostgreSQL database to watch, reached with a role that has `pg_monitor`."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    url: Url
    password_env: str | None = None
    password_file: Path | None = None
    slow_after: Duration = 30.0
    """A report run longer than this is slow, whatever its history (the business floor)."""
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    sslrootcert: Path | None = None
    explain: bool = False
    """Also show the plan of a slow query (EXPLAIN without ANALYZE; the role needs SELECT on its tables)."""

    @model_check
    def _one_password_source(self) -> None:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")

    @property
    def database(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).path.strip("/"))

    @property
    def where(self) -> str:
        """host:port/database, for the appendix (the URL has no password; the user name is left out too)."""
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}/{self.database}"

    def password(self) -> str | None:
        """Read at connect time, never kept in config objects or logs; None lets libpq use .pgpass."""
        try:
            return read_secret("password", self.password_env, self.password_file)
        except ValueError as exc:
            raise CheckError(f"{self.name}: {exc}") from None


class DatabaseConfig(DetectionConfig):
    interval: Duration = 60.0
    timeout: Duration = 30.0
    targets: tuple[Target, ...] = ()
    connect_timeout: Duration = 5.0
    statement_timeout: Duration = 5.0
    """No statistics query of the check may run longer than this on the server."""
    min_calls: int = Field(3, ge=1)
    """A period with fewer report runs than this is too thin to judge (and to feed the detector)."""
    long_transaction: Duration = 300.0
    """A transaction open longer than this is named in the evidence (it holds locks and blocks vacuum)."""
    large_table_rows: int = Field(100_000, ge=1)
    """A sequential scan matters on a table with at least this many rows."""

    @model_check
    def _unique_names(self) -> None:
        names = [t.name for t in self.targets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"target names must be unique (repeated: {', '.join(duplicates)})")
