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
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allows(self, authorization: str | None) -> bool:
        """True when no users are configured, or the Basic credentials match one."""
        if not self.users:
            return True
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        with self._lock:
            if any(hmac.compare_digest(key, known) for known in self._verified):
                return True
        import bcrypt  # only when basic auth is configured

        if not bcrypt.checkpw(password.encode(), hashed):
            return False
        with self._lock:
            self._verified.add(key)
        return True


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
