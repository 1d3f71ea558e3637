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
