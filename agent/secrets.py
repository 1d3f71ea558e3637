"""Secrets by reference: the value behind a `*_env` or `*_file` setting, read at the moment of use.

The config never holds a secret, so neither does anything built from it; a
problem names the reference (variable or file), never a value.
"""

from __future__ import annotations

import os
from pathlib import Path


def read_secret(what: str, env: str | None, file: Path | str | None) -> str | None:
    """The stripped value behind `{what}_env` or `{what}_file`; None when neither is given.

    Raises ValueError when the variable is unset or empty, or the file unreadable or empty.
    """
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ValueError(f"{what}_env: environment variable {env} is not set")
        return value
    if file is not None:
        try:
            value = Path(file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{what}_file {file}: cannot read it ({exc.strerror})") from None
        if not value:
            raise ValueError(f"{what}_file {file} is empty")
        return value
    return None
