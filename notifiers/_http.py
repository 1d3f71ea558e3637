"""What the HTTP notifiers share: secrets read at the last moment, one POST, errors without tokens.

Webhook URLs carry their token in the path or query, so every message built
here names the host only, and any text a server sends back is scrubbed of
the secrets before it is shown.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from agent.api import NotifyError
from agent.api import read_secret as read_reference

TEMPORARY_STATUS = frozenset({408, 425, 429})
MAX_REPLY_SHOWN = 160


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


def read_secret(what: str, env: str | None, file: Path | None) -> str:
    """The secret behind `*_env` or `*_file`; a missing one is a permanent failure naming the reference only."""
    try:
        value = read_reference(what, env, file)
    except ValueError as exc:
        raise NotifyError(str(exc), permanent=True) from None
    if value is None:
        raise NotifyError(f"neither {what}_env nor {what}_file is set", permanent=True)
    return value


def host_of(url: str) -> str:
    """What logs may show of a URL: scheme and host, never the path or query."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` without any of the secrets (or their URL-encoded forms), cut to a readable length."""
    for secret in secrets:
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            if len(form) >= 4:
                text = text.replace(form, "***")
    text = " ".join(text.split())
    return text if len(text) <= MAX_REPLY_SHOWN else text[:MAX_REPLY_SHOWN - 3] + "..."


def post_json(url: str, payload: Any, timeout: float, secrets: Iterable[str] = ()) -> Reply:
    """POSTs `payload` once. 2xx is returned; 408/425/429, 5xx and network errors are temporary, other 4xx permanent."""
    secrets = [url, *secrets, *_url_parts(url)]
    where = host_of(url)
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "forewarn"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.read())
    except urllib.error.HTTPError as exc:
        body = _read_quietly(exc)
        temporary = exc.code in TEMPORARY_STATUS or exc.code >= 500
        shown = scrub(body.decode("utf-8", "replace"), secrets)
        raise NotifyError(f"{where} answered HTTP {exc.code}" + (f": {shown}" if shown else ""),
                          permanent=not temporary) from None
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, str) else getattr(exc.reason, "strerror", None) or type(exc.reason).__name__
        raise NotifyError(f"{where} could not be reached ({scrub(str(reason), secrets)})") from None
    except (TimeoutError, OSError) as exc:
        raise NotifyError(f"{where} could not be reached ({type(exc).__name__})") from None


def _url_parts(url: str) -> list[str]:
    """The secret-bearing parts of a URL: its path, its long path segments and each query value."""
    parts = urllib.parse.urlsplit(url)
    values = [v for _, v in urllib.parse.parse_qsl(parts.query)]
    segments = [s for s in parts.path.split("/") if len(s) >= 8]
    return [p for p in (parts.path.strip("/"), parts.query, *values, *segments) if p]


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read() or b""
    except OSError:
        return b""
