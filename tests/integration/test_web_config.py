"""One node_exporter web-config file, client certificates included, used unchanged by node_exporter and the agent.

openssl makes a CA, a server certificate, a client certificate from that CA
and one from a stranger's CA. node_exporter is started with the file first, to
prove it accepts it; then `agent run --web.config.file` with the same file.
Both must answer the same way: a scrape with the client certificate and the
password gets the metrics with the configured headers, one without a
certificate, with the stranger's, over TLS 1.1 or with a curve the file does
not list does not get past the handshake, and a wrong password is 401.
"""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Callable, Iterator

import bcrypt
import pytest

from tests.integration.servers import NodeExporter, free_port, wait_until

PASSWORD = "scrape-pw-7f3"
WEB_CONFIG = """\
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS12
  max_version: TLS13
  cipher_suites:
    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
  prefer_server_cipher_suites: true
  curve_preferences: [X25519, CurveP256]
http_server_config:
  headers:
    X-Frame-Options: deny
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  prometheus: '{hashed}'
"""


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(name: str, cwd: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=cwd)


def make_cert(name: str, ca: str, san: str, usage: str, cwd: Path) -> None:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=cwd)
    (cwd / f"{name}.ext").write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=cwd)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt, server.{crt,key} for 127.0.0.1, client.{crt,key} from ca, stranger.{crt,key} from another CA,
    and web.yml in node_exporter's format."""
    d = tmp_path_factory.mktemp("pki")
    make_ca("ca", d)
    make_ca("other-ca", d)
    make_cert("server", "ca", "IP:127.0.0.1", "serverAuth", d)
    make_cert("client", "ca", "DNS:prometheus.example.org", "clientAuth", d)
    make_cert("stranger", "other-ca", "DNS:prometheus.example.org", "clientAuth", d)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (d / "web.yml").write_text(WEB_CONFIG.format(hashed=hashed))
    return d


def client_context(pki: Path, cert: str | None, max_version: ssl.TLSVersion | None = None,
                   curve: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert:
        context.load_cert_chain(pki / f"{cert}.crt", pki / f"{cert}.key")
    if curve:  # a client that offers this one key exchange group only
        context.set_ecdh_curve(curve)
    if max_version:  # an old client: offers nothing newer than max_version
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = max_version
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def scrape(url: str, context: ssl.SSLContext, password: str | None = PASSWORD) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body); status 0 when the TLS handshake or the connection was refused."""
    request = urllib.request.Request(url)
    if password is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except (urllib.error.URLError, ssl.SSLError, ConnectionError):
        return 0, {}, b""


def behaves_like_the_file_says(url: str, pki: Path, metric: bytes) -> None:
    status, headers, body = scrape(url, client_context(pki, "client"))
    assert status == 200 and metric in body, (status, body[:200])
    assert headers.get("X-Frame-Options") == "deny" and headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Strict-Transport-Security") == "max-age=31536000"
    wrong, headers, _ = scrape(url, client_context(pki, "client"), password="wrong")
    assert wrong == 401 and headers.get("X-Frame-Options") == "deny"
    assert scrape(url, client_context(pki, None))[0] == 0, "no client certificate: refused in the handshake"
    assert scrape(url, client_context(pki, "stranger"))[0] == 0, "a certificate from another CA is refused"
    assert scrape(url, client_context(pki, "client", ssl.TLSVersion.TLSv1_1))[0] == 0, "min_version TLS12"
    assert scrape(url, client_context(pki, "client", curve="prime256v1"))[0] == 200, "CurveP256 is listed"
    assert scrape(url, client_context(pki, "client", curve="secp384r1"))[0] == 0, "CurveP384 is not listed"


class TlsNodeExporter(NodeExporter):
    """node_exporter with a web config: ready when a scrape with the client certificate answers."""

    def __init__(self, pki: Path) -> None:
        self.pki = pki
        super().__init__([f"--web.config.file={pki / 'web.yml'}"])

    def _ready(self, port: int) -> bool:
        return scrape(f"https://127.0.0.1:{port}/metrics", client_context(self.pki, "client"))[0] == 200


def test_node_exporter_accepts_the_file_and_enforces_it(pki: Path, start_server: Callable) -> None:
    exporter = start_server(TlsNodeExporter(pki))
    behaves_like_the_file_says(f"https://127.0.0.1:{exporter.port}/metrics", pki, b"node_exporter_build_info")


@pytest.fixture
def agent_with(pki: Path, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Starts `agent run --web.config.file FILE` on defaults; ready when a scrape with the client certificate
    answers `expect`; yields its /metrics URL."""
    processes: list[subprocess.Popen] = []

    def start(web_config: Path, expect: int = 200) -> str:
        port, home = free_port(), tmp_path / f"agent{len(processes)}"
        home.mkdir()
        (home / "forewarn.yaml").write_text(f"agent: {{state_dir: {home / 'state'}}}\n")
        with open(home / "agent.log", "ab") as log:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "agent.cli", "run", "-c", str(home / "forewarn.yaml"),
                 "--listen", f"127.0.0.1:{port}", "--web.config.file", str(web_config)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(home)}))
        url = f"https://127.0.0.1:{port}/metrics"
        ready = wait_until(lambda: scrape(url, client_context(pki, "client"))[0] == expect, timeout=30, interval=0.2)
        assert ready, (home / "agent.log").read_text()[-3000:]
        return url

    yield start
    for process in processes:
        process.terminate()
        assert process.wait(timeout=15) == 0


def test_the_agent_uses_the_same_file_with_the_same_meaning(pki: Path, agent_with: Callable[..., str]) -> None:
    behaves_like_the_file_says(agent_with(pki / "web.yml"), pki, b"forewarn_build_info")


def test_client_allowed_sans_admit_only_a_listed_name(pki: Path, agent_with: Callable[..., str],
                                                      tmp_path: Path) -> None:
    listed = tmp_path / "listed.yml"
    listed.write_text((pki / "web.yml").read_text().replace(
        "  client_ca_file: ca.crt\n", "  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.example.org]\n"))
    other = tmp_path / "other.yml"
    other.write_text(listed.read_text().replace("[prometheus.example.org]", "[grafana.example.org]"))
    for path in (listed, other):  # relative paths are relative to the file, as in the toolkit
        path.write_text(path.read_text().replace(": server.", f": {pki}/server.").replace(": ca.crt", f": {pki}/ca.crt"))
    status, _, body = scrape(agent_with(listed), client_context(pki, "client"))
    assert status == 200 and b"forewarn_build_info" in body
    status, _, body = scrape(agent_with(other, expect=403), client_context(pki, "client"))
    assert status == 403 and b"forewarn_build_info" not in body
