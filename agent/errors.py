"""The error hierarchy. Kept free of heavy imports: the CLI needs it before anything else."""

from __future__ import annotations

from typing import Sequence


class ForewarnError(Exception):
    """Anything the CLI reports as one line and a non-zero exit, never a traceback."""


class ConfigError(ForewarnError):
    """The configuration is invalid; `problems` holds one line per problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StateError(ForewarnError):
    """The state database cannot be used (locked, corrupt, not writable)."""


class CheckError(ForewarnError):
    """A check could not measure: its resources become UNKNOWN."""


class NotifyError(ForewarnError):
    """A delivery failed. `permanent` failures are not retried (bad address, 4xx)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent
