"""TLS, client certificates, headers, rate limit and basic auth for /metrics, from the exporters' web-config file.

The format is the Prometheus exporter toolkit's (`--web.config.file`,
docs/web-configuration.md in prometheus/exporter-toolkit), read with the same
meaning, so one file serves node_exporter and Forewarn alike:

    tls_server_config:
      cert_file: server.crt          # or cert: PEM text; paths are relative to this file
      key_file: server.key           # or key: PEM text
      client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven, NoClientCert
      client_ca_file: clients-ca.crt # or client_ca: PEM text
      client_allowed_sans: [prometheus.example.org]
      min_version: TLS12             # TLS10..TLS13; default TLS12 .. TLS13
      max_version: TLS13
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]   # Go's names; TLS 1.2 and below only
      prefer_server_cipher_suites: true
      curve_preferences: [X25519, CurveP256]
    http_server_config:
      http2: true                    # accepted; the agent speaks HTTP/1.1, which every scraper does too
      headers: {X-Frame-Options: deny, Strict-Transport-Security: max-age=31536000}
    basic_auth_users: {prometheus: $2y$10$...}    # bcrypt hashes, never plain passwords
    rate_limit: {interval: 100ms, burst: 10}      # token bucket; 429 beyond it

Two client_auth_type values are refused rather than approximated:
RequestClientCert and RequireAnyClientCert accept a certificate nobody
verified (the toolkit calls them insecure), which Python's ssl module cannot do.
bcrypt is deliberately slow, so a verified (user, password) pair is remembered
by its SHA-256 for the life of the process: scrapes stay fast.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.api import ConfigError

TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1, "TLS12": ssl.TLSVersion.TLSv1_2,
                "TLS13": ssl.TLSVersion.TLSv1_3}
# Go's cipher suite names (crypto/tls) -> OpenSSL's. TLS 1.3 suites are accepted and, as in Go, not configurable.
CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
TLS13_CIPHERS = frozenset({"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"})
CURVES = {"CurveP256": "P-256", "CurveP384": "P-384", "CurveP521": "P-521", "X25519": "X25519"}
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
UNVERIFIED_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
# Headers the toolkit lets a file set, and the values it accepts (None: any).
HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None, "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": None, "Content-Security-Policy": None}
SECTIONS = {
    "tls_server_config": {"cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file",
                          "client_allowed_sans", "min_version", "max_version", "cipher_suites",
                          "prefer_server_cipher_suites", "curve_preferences"},
    "http_server_config": {"http2", "headers"},
    "basic_auth_users": None,
    "rate_limit": {"interval", "burst"},
}
GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class RateLimit:
    """A token bucket like Go's rate.Limiter: one token every `interval`, at most `burst` saved up."""

    interval: float
    burst: int
    _tokens: float = 0.0
    _last: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)

    def allow(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) / self.interval)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


@dataclass
class WebConfig:
    tls: ssl.SSLContext | None
    users: dict[str, bytes]
    headers: dict[str, str] = field(default_factory=dict)
    allowed_sans: frozenset[str] | None = None
    rate_limit: RateLimit | None = None
    _verified: set[bytes] = field(default_factory=set)
    _refused: set[bytes] = field(default_factory=set)
    _dummy: bytes = b""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def peer_allowed(self, cert: dict | None) -> bool:
        """True without client_allowed_sans, else when a SAN of the client certificate is in the list."""
        if self.allowed_sans is None:
            return True
        return any(value in self.allowed_sans for _, value in (cert or {}).get("subjectAltName", ()))

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


class _Problems:
    """Every problem of the file, as `FILE: key.path: what is wrong (got VALUE)` lines."""

    def __init__(self, source: str):
        self.source, self.lines = source, []

    def add(self, key: str, message: str, got: Any = None) -> None:
        self.lines.append(f"{self.source}: {key}: {message}" + (f" (got {got!r})" if got is not None else ""))


def load_web_config(path: str | None) -> WebConfig:
    if not path:
        return WebConfig(None, {})
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the web config ({exc.strerror})"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    problems = _Problems(path)
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the web config must be a mapping (got {type(data).__name__})"])
    sections = {name: _section(data, name, problems) for name in SECTIONS}
    for key in data.keys() - SECTIONS.keys():
        problems.add(key, f"unknown key (expected one of {', '.join(SECTIONS)})")
    users = _users(sections["basic_auth_users"], problems)
    headers = _headers(sections["http_server_config"], problems)
    limit = _rate_limit(sections["rate_limit"], problems)
    tls, sans = _tls(sections["tls_server_config"], Path(path).parent, problems)
    if problems.lines:
        raise ConfigError(problems.lines)
    return WebConfig(tls, users, headers, sans, limit)


def _section(data: dict, name: str, problems: _Problems) -> dict:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        problems.add(name, "must be a mapping", type(value).__name__)
        return {}
    allowed = SECTIONS[name]
    for key in value.keys() - (allowed or value.keys()):
        problems.add(f"{name}.{key}", f"unknown key (expected one of {', '.join(sorted(allowed or ()))})")
    return value


def _users(section: dict, problems: _Problems) -> dict[str, bytes]:
    users = {}
    for user, hashed in section.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            problems.add(f"basic_auth_users.{user}", "must be a bcrypt hash (htpasswd -nBC 10 USER)")
            continue  # the value may be a password: never echoed
        users[str(user)] = hashed.replace("$2y$", "$2b$", 1).encode()
    return users


def _headers(section: dict, problems: _Problems) -> dict[str, str]:
    if not isinstance(section.get("http2", True), bool):
        problems.add("http_server_config.http2", "must be true or false", section["http2"])
    headers = section.get("headers") or {}
    if not isinstance(headers, dict):
        problems.add("http_server_config.headers", "must be a mapping of header: value", headers)
        return {}
    for name, value in headers.items():
        key = f"http_server_config.headers.{name}"
        if name not in HEADERS:
            problems.add(key, f"this header can not be configured (expected one of {', '.join(HEADERS)})")
        elif HEADERS[name] and value not in HEADERS[name]:
            problems.add(key, f"expected one of {', '.join(HEADERS[name])}", value)
    return {str(k): str(v) for k, v in headers.items() if v not in (None, "")}


def _rate_limit(section: dict, problems: _Problems) -> RateLimit | None:
    if not section:
        return None
    interval = _go_duration(section.get("interval", "0s"))
    burst = section.get("burst", 0)
    if interval is None:
        problems.add("rate_limit.interval", "must be a duration such as 100ms, 1s or 1m", section.get("interval"))
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
        problems.add("rate_limit.burst", "must be a whole number, 0 or more", burst)
        return None
    return RateLimit(interval, burst) if interval else None


def _go_duration(value: Any) -> float | None:
    text = str(value)
    if text == "0":
        return 0.0
    parts = GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * DURATION_UNITS[u] for n, u in parts)


def _tls(section: dict, base: Path, problems: _Problems) -> tuple[ssl.SSLContext | None, frozenset[str] | None]:
    """The server's SSL context (None when the section sets nothing), and the allowed client SANs."""
    if not any(section.get(k) for k in ("cert", "key", "cert_file", "key_file", "client_ca", "client_ca_file",
                                         "client_auth_type")):
        return None, None
    before = len(problems.lines)
    for text, path in (("cert", "cert_file"), ("key", "key_file")):
        if not section.get(text) and not section.get(path):
            problems.add(f"tls_server_config.{path}", f"missing: give {path} or {text}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _versions(context, section, problems)
    _ciphers(context, section, problems)
    _curves(context, section, problems)
    sans = _client_auth(context, section, base, problems)
    if len(problems.lines) == before:
        _load_certificate(context, section, base, problems)
    return context, sans


def _versions(context: ssl.SSLContext, section: dict, problems: _Problems) -> None:
    for key, default, attribute in (("min_version", "TLS12", "minimum_version"),
                                    ("max_version", "TLS13", "maximum_version")):
        name = section.get(key, default)
        if name not in TLS_VERSIONS:
            problems.add(f"tls_server_config.{key}", f"expected one of {', '.join(TLS_VERSIONS)}", name)
            continue
        try:
            setattr(context, attribute, TLS_VERSIONS[name])
        except (ValueError, ssl.SSLError) as exc:
            problems.add(f"tls_server_config.{key}", f"not available in this OpenSSL ({exc})", name)
    if context.minimum_version > context.maximum_version:
        problems.add("tls_server_config.min_version", "is above max_version")
    if section.get("prefer_server_cipher_suites", True) is True:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE


def _ciphers(context: ssl.SSLContext, section: dict, problems: _Problems) -> None:
    names = section.get("cipher_suites") or []
    unknown = [n for n in names if n not in CIPHERS and n not in TLS13_CIPHERS]
    for name in unknown:
        problems.add("tls_server_config.cipher_suites", "unknown cipher (expected Go names such as "
                     "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)", name)
    chosen = [CIPHERS[n] for n in names if n in CIPHERS]
    if chosen and not unknown:
        try:
            context.set_ciphers(":".join(chosen))
        except ssl.SSLError:
            problems.add("tls_server_config.cipher_suites", "none of them is available in this OpenSSL", names)


def _curves(context: ssl.SSLContext, section: dict, problems: _Problems) -> None:
    names = section.get("curve_preferences") or []
    unknown = [n for n in names if n not in CURVES]
    for name in unknown:
        problems.add("tls_server_config.curve_preferences", f"unknown curve (expected {', '.join(CURVES)})", name)
    if names and not unknown and not _set_groups(context, [CURVES[n] for n in names]):
        problems.add("tls_server_config.curve_preferences", "not accepted by this OpenSSL", names)


def _set_groups(context: ssl.SSLContext, groups: list[str]) -> bool:
    """SSL_CTX_set1_groups_list: the key exchange groups in preference order. Python's ssl sets one curve
    only (set_ecdh_curve), so a list goes to OpenSSL directly; the SSLContext object holds its SSL_CTX* first."""
    if len(groups) == 1:
        context.set_ecdh_curve({"P-256": "prime256v1", "P-384": "secp384r1", "P-521": "secp521r1"}.get(
            groups[0], groups[0]))
        return True
    import ctypes

    import _ssl

    ssl_ctx = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    ctrl = ctypes.CDLL(_ssl.__file__).SSL_CTX_ctrl
    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    ctrl.restype = ctypes.c_long
    set_groups_list = 92  # SSL_CTRL_SET_GROUPS_LIST in openssl/ssl.h
    return ctrl(ssl_ctx, set_groups_list, 0, ":".join(groups).encode()) == 1


def _client_auth(context: ssl.SSLContext, section: dict, base: Path, problems: _Problems) -> frozenset[str] | None:
    key = "tls_server_config.client_auth_type"
    auth = section.get("client_auth_type") or "NoClientCert"
    has_ca = bool(section.get("client_ca_file") or section.get("client_ca"))
    if auth in UNVERIFIED_AUTH:
        problems.add(key, "accepts client certificates nobody verified, which Forewarn does not do: use "
                     "RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file", auth)
        return None
    if auth not in CLIENT_AUTH:
        problems.add(key, f"expected one of {', '.join(CLIENT_AUTH)}", auth)
        return None
    if has_ca and auth == "NoClientCert":
        problems.add(key, "client CAs are configured without a client auth policy (set RequireAndVerifyClientCert)")
    context.verify_mode = CLIENT_AUTH[auth]
    if context.verify_mode != ssl.CERT_NONE:
        try:
            if section.get("client_ca_file"):
                context.load_verify_locations(cafile=str(base / section["client_ca_file"]))
            elif section.get("client_ca"):
                context.load_verify_locations(cadata=section["client_ca"])
            else:
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (OSError, ssl.SSLError) as exc:
            problems.add("tls_server_config.client_ca_file", f"cannot load the client CA ({exc})")
    sans = section.get("client_allowed_sans")
    if sans is None:
        return None
    if auth != "RequireAndVerifyClientCert":
        problems.add("tls_server_config.client_allowed_sans", "needs client_auth_type RequireAndVerifyClientCert")
    return frozenset(map(str, sans))


def _load_certificate(context: ssl.SSLContext, section: dict, base: Path, problems: _Problems) -> None:
    """cert_file/key_file relative to the web config's directory, or cert/key given inline (PEM)."""
    with tempfile.TemporaryDirectory() as scratch:
        paths, shown = [], []
        for text, path in (("cert", "cert_file"), ("key", "key_file")):
            if section.get(path):
                paths.append(base / section[path])
                shown.append(str(base / section[path]))
                continue
            inline = Path(scratch) / text
            inline.touch(mode=0o600)
            inline.write_text(section[text])
            paths.append(inline)
            shown.append(f"{text} (inline)")
        try:
            context.load_cert_chain(*paths)
        except (OSError, ssl.SSLError) as exc:
            problems.add("tls_server_config", f"cannot load the certificate and key {' / '.join(shown)} ({exc})")
