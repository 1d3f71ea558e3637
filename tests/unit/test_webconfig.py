import base64

import bcrypt
import pytest

from agent.api import ConfigError
from agent.webconfig import load_web_config


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_no_web_config_means_open_plain_http():
    web = load_web_config(None)
    assert web.tls is None and web.allows(None)


def test_basic_auth_accepts_only_the_right_password(tmp_path):
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users: {{prom: '{bcrypt.hashpw(b'pw', bcrypt.gensalt(4)).decode()}'}}\n")
    web = load_web_config(str(path))
    assert web.allows(basic("prom", "pw")) and web.allows(basic("prom", "pw"))
    assert not web.allows(basic("prom", "nope"))
    assert not web.allows(basic("eve", "pw"))
    assert not web.allows(None) and not web.allows("Basic !!!")


@pytest.mark.parametrize("text, expected", [
    ("basic_auth_users: {prom: hunter2}\n", "basic_auth_users.prom: must be a bcrypt hash"),
    ("tls_server_config: {cert_file: a.pem}\n", "tls_server_config.key_file"),
    ("colour: red\n", "colour"),
    ("tls_server_config: {cert_file: missing.pem, key_file: missing.pem}\n", "cannot load"),
])
def test_bad_web_config_is_a_one_line_error_without_the_secret(tmp_path, text, expected):
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_web_config(str(path))
    [line] = caught.value.problems
    assert line.startswith(f"{path}: ") and expected in line and "hunter2" not in line


def test_every_problem_of_a_web_config_is_one_line_naming_its_key(tmp_path):
    path = tmp_path / "web.yml"
    path.write_text("tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n  min_version: TLS14\n"
                    "  cipher_suites: [TLS_FAKE]\n  curve_preferences: [CurveP999]\n"
                    "  client_auth_type: RequireAnyClientCert\n"
                    "http_server_config: {headers: {X-Frame-Options: allow, X-Powered-By: me}}\n"
                    "rate_limit: {interval: 5 minutes, burst: -1}\n")
    with pytest.raises(ConfigError) as caught:
        load_web_config(str(path))
    lines = caught.value.problems
    for key in ("tls_server_config.min_version", "tls_server_config.cipher_suites",
                "tls_server_config.curve_preferences", "tls_server_config.client_auth_type",
                "http_server_config.headers.X-Frame-Options", "http_server_config.headers.X-Powered-By",
                "rate_limit.interval", "rate_limit.burst"):
        assert sum(line.startswith(f"{path}: {key}: ") for line in lines) == 1, (key, lines)
    assert any("RequireAndVerifyClientCert" in line for line in lines)


def test_client_ca_without_a_client_auth_policy_is_refused_as_the_toolkit_does(tmp_path):
    path = tmp_path / "web.yml"
    path.write_text("tls_server_config: {cert_file: a.pem, key_file: a.key, client_ca_file: ca.pem}\n")
    with pytest.raises(ConfigError) as caught:
        load_web_config(str(path))
    assert any("client auth policy" in line for line in caught.value.problems)


def test_rate_limit_is_a_token_bucket():
    from agent.webconfig import RateLimit, _go_duration

    assert _go_duration("1m30s") == 90 and _go_duration("100ms") == 0.1 and _go_duration("5 minutes") is None
    bucket = RateLimit(interval=3600.0, burst=2)
    assert [bucket.allow() for _ in range(3)] == [True, True, False]


@pytest.fixture
def counted(tmp_path, monkeypatch):
    """A web config with one user, and a count of the bcrypt checks it makes."""
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users: {{prom: '{bcrypt.hashpw(b'pw', bcrypt.gensalt(4)).decode()}'}}\n")
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda password, hashed: calls.append(hashed[:7]) or real(password, hashed))
    return load_web_config(str(path)), calls


def test_an_unknown_user_costs_the_same_bcrypt_work_as_a_wrong_password(counted):
    web, calls = counted
    assert not web.allows(basic("eve", "pw"))
    assert not web.allows(basic("prom", "nope"))
    assert calls == [b"$2b$04$", b"$2b$04$"]  # one check each, at the configured cost


def test_a_repeated_wrong_password_costs_no_bcrypt_work(counted):
    web, calls = counted
    for _ in range(50):
        assert not web.allows(basic("prom", "nope"))
        assert not web.allows(basic("eve", "nope"))
    assert len(calls) == 2
    assert web.allows(basic("prom", "pw")) and web.allows(basic("prom", "pw")) and len(calls) == 3
