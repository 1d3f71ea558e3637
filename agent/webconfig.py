"""TLS and basic auth for /metrics, read from the web-config file Prometheus exporters use.

Same format as the exporter toolkit (`--web.config.file`), so one file serves
node_exporter and Forewarn alike:

    tls_server_config: {cert_file: server.crt, key_file: server.key}
    basic_auth_users: {prometheus: $2y$10$...}   # bcrypt hashes, never plain passwords

bcrypt is deliberately slow, so a verified (user, password) pair is remembered
by its SHA-256 for the life of the process: scrapes stay fast.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from agent.api import ConfigError, Invalid, Model


class _Tls(Model):
    cert_file: Path
    key_file: Path


class _WebConfig(Model):
    tls_server_config: _Tls | None = None
    basic_auth_users: dict[str, str] = {}


@dataclass
class WebConfig:
    tls: ssl.SSLContext | None
    users: dict[str, bytes]
    _verified: set[bytes] = field(default_factory=set)
    _refused: set[bytes] = field(default_factory=set)
    _dummy: bytes = b""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def known(self, authorization: str | None) -> bool | None:
        """The answer without bcrypt when there is one: no users, a malformed header, or credentials seen
        before (right or wrong). None: only `allows` can tell."""
        if not self.users:
            return True
        credentials = _credentials(authorization)
        if credentials is None:
            return False
        key = hashlib.sha256(f"{credentials[0]}\0{credentials[1]}".encode()).digest()
        with self._lock:
            if any(hmac.compare_digest(key, known) for known in self._verified):
                return True
            if key in self._refused:
                return False
        return None

    def allows(self, authorization: str | None) -> bool:
        """True when no users are configured, or the Basic credentials match one. An unknown user costs the
        same bcrypt work as a known one (a dummy hash of the same cost), so timing does not reveal user names;
        outcomes are remembered, so a repeated guess costs no bcrypt work at all."""
        answer = self.known(authorization)
        if answer is not None:
            return answer
        import bcrypt  # only when basic auth is configured

        user, password = _credentials(authorization)
        key = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        hashed = self.users.get(user)
        if hashed is None:
            with self._lock:
                if not self._dummy:
                    cost = next(iter(self.users.values()))[:7]  # "$2b$10$"
                    self._dummy = bcrypt.hashpw(b"not a password", cost + bcrypt.gensalt()[7:])
            bcrypt.checkpw(password.encode(), self._dummy)
            ok = False
        else:
            ok = bcrypt.checkpw(password.encode(), hashed)
        with self._lock:
            if ok:
                self._verified.add(key)
            else:
                if len(self._refused) >= REFUSED_KEPT:
                    self._refused.clear()
                self._refused.add(key)
        return ok


REFUSED_KEPT = 4096
"""Wrong credentials remembered (by hash) so that repeating one costs no bcrypt work; bounded."""


def _credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def load_web_config(path: str | None) -> WebConfig:
    if not path:
        return WebConfig(None, {})
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        model = _WebConfig.parse(data)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the web config ({exc.strerror})"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    except Invalid as exc:
        raise ConfigError([f"{path}: {line}" for line in exc.problems]) from None
    users = {}
    for user, hashed in model.basic_auth_users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError([f"{path}: basic_auth_users.{user}: must be a bcrypt hash (htpasswd -nBC 10 USER)"])
        users[user] = hashed.replace("$2y$", "$2b$", 1).encode()
    context = None
    if model.tls_server_config:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        base = Path(path).parent
        cert, key = (base / model.tls_server_config.cert_file, base / model.tls_server_config.key_file)
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError([f"{path}: tls_server_config: cannot load {cert} / {key} ({exc})"]) from None
    return WebConfig(context, users)
