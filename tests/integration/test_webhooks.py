"""Webhook flavours against a real HTTP server on 127.0.0.1: payload shapes, signatures, faults, secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from agent.api import Finding, Notice, Severity
from agent.composer import Composer, address
from agent.config import parse_config
from agent.outbox import Outbox, RetryPolicy
from agent.registry import default_registry
from agent.store import Store

TOKEN = "tok-9f8e7d6c5b4a39281706"
SECRET = "SECa1b2c3d4e5f60718293a4b5c6d7e8f9"
FAST = RetryPolicy(initial=0.2, factor=2.0, max_delay=1.0, jitter=0.2, dead_letter_after=60.0)


@dataclass
class Request:
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """An HTTP server that records each POST and answers from a script (default 200 with `ok_body`)."""

    ok_body: bytes = b"ok"
    script: list[tuple[int, bytes]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = f"/hook/{TOKEN}") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                parts = urllib.parse.urlsplit(self.path)
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Request(parts.path, dict(urllib.parse.parse_qsl(parts.query)),
                                                 json.loads(data)))
                status, body = receiver.script.pop(0) if receiver.script else (200, receiver.ok_body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(5)


def config_for(tmp_path: Path, flavour: str, extra: dict | None = None):
    return parse_config({
        "agent": {"state_dir": str(tmp_path / "state"), "hostname": "pacs01"},
        "owners": {"it": {"department": "IT", "notify": ["it-file"]},
                   "radiology": {"department": "放射科", "address_as": "王主任", "language": "zh-CN",
                                 "timezone": "Asia/Shanghai", "notify": ["chat"]}},
        "resources": [{"name": "影像存储盘", "owner": "radiology", "impact": "医生无法保存新的影像",
                       "match": {"check": "disk", "mount": "/srv/pacs"}}],
        "notifiers": {"it-file": {"type": "file", "path": str(tmp_path / "it.jsonl")},
                      "chat": {"type": flavour, "url_env": "CHAT_URL", "timeout": "5s", **(extra or {})}},
    }, "test.yaml", default_registry())


def radiology_notice(config) -> Notice:
    finding = Finding("disk", "disk_nearly_full", Severity.WARNING, "/srv/pacs", {"mount": "/srv/pacs"},
                      "/srv/pacs is 91% full", facts={"mount": "/srv/pacs", "used_ratio": 0.91, "free_bytes": 4e10},
                      evidence={"used": "910 GB of 1 TB"}, incident="disk_space")
    return Composer(config).compose("radiology", address([finding], config)["radiology"], 1_700_000_000.0)


@pytest.fixture
def deliver(tmp_path, receiver, monkeypatch):
    """Sends one composed notice through channel `chat` of the given flavour; returns the attempts and outbox."""
    stores = []

    def run(flavour: str, extra: dict | None = None, url: str | None = None) -> tuple[list, Outbox, Notice]:
        monkeypatch.setenv("CHAT_URL", url or receiver.url())
        config = config_for(tmp_path, flavour, extra)
        store = Store(tmp_path / "state")
        stores.append(store)
        outbox = Outbox(store, config, policy=FAST)
        notice = radiology_notice(config)
        return outbox.send_now([notice]), outbox, notice

    yield run
    for store in stores:
        store.close()


def test_generic_webhook_posts_the_documented_payload(deliver, receiver):
    [attempt], _, notice = deliver("webhook")
    assert attempt.result == "sent"
    [request] = receiver.requests
    assert request.path == f"/hook/{TOKEN}"
    assert set(request.body) >= {"owner", "department", "severity", "phase", "subject", "body", "appendix",
                                 "incident_id", "thread_id", "sequence"}
    assert request.body["owner"] == "radiology" and request.body["department"] == "放射科"
    assert request.body["subject"] == notice.subject and request.body["body"] == notice.body
    assert request.body["severity"] == "warning" and request.body["phase"] == "opening"


def test_slack_gets_blocks_with_the_business_text_before_the_appendix(deliver, receiver):
    [attempt], _, notice = deliver("slack")
    assert attempt.result == "sent"
    body = receiver.requests[0].body
    assert body["text"] == notice.subject
    texts = [b.get("text", {}).get("text", "") for b in body["blocks"]]
    assert texts[0] == notice.subject and "王主任您好" in texts[1] and texts[-1].startswith("```")


def test_teams_gets_an_adaptive_card(deliver, receiver):
    receiver.ok_body = b""
    [attempt], _, notice = deliver("teams")
    assert attempt.result == "sent"
    content = receiver.requests[0].body["attachments"][0]["content"]
    assert content["type"] == "AdaptiveCard" and content["body"][0]["text"] == notice.subject


def test_wecom_gets_markdown_and_a_rate_limit_is_retried(deliver, receiver):
    receiver.ok_body = b'{"errcode":0,"errmsg":"ok"}'
    receiver.script = [(200, b'{"errcode":45009,"errmsg":"api freq out of limit"}')]
    [attempt], outbox, notice = deliver("wecom")
    assert attempt.result == "failed" and "45009" in attempt.error
    time.sleep(FAST.max_delay * 1.3)
    assert [a.result for a in outbox.deliver_due()] == ["sent"]
    body = receiver.requests[-1].body
    assert body["msgtype"] == "markdown" and notice.subject in body["markdown"]["content"]


def test_dingtalk_signs_the_url_as_documented(deliver, receiver, monkeypatch):
    monkeypatch.setenv("DING_SECRET", SECRET)
    receiver.ok_body = b'{"errcode":0,"errmsg":"ok"}'
    [attempt], _, notice = deliver("dingtalk", {"secret_env": "DING_SECRET"},
                                   url=receiver.url(f"/robot/send?access_token={TOKEN}"))
    assert attempt.result == "sent"
    [request] = receiver.requests
    timestamp = request.query["timestamp"]
    assert abs(int(timestamp) / 1000 - time.time()) < 60  # milliseconds
    expected = base64.b64encode(hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest())
    assert request.query["sign"] == expected.decode()  # parse_qsl undid the URL encoding
    assert request.query["access_token"] == TOKEN
    assert request.body["msgtype"] == "markdown" and request.body["markdown"]["title"] == notice.subject


def test_feishu_signs_the_body_as_documented(deliver, receiver, monkeypatch):
    monkeypatch.setenv("FEISHU_SECRET", SECRET)
    receiver.ok_body = b'{"code":0,"msg":"success"}'
    [attempt], _, notice = deliver("feishu", {"secret_env": "FEISHU_SECRET"})
    assert attempt.result == "sent"
    body = receiver.requests[0].body
    timestamp = body["timestamp"]
    assert abs(int(timestamp) - time.time()) < 60  # seconds
    expected = base64.b64encode(hmac.new(f"{timestamp}\n{SECRET}".encode(), b"", hashlib.sha256).digest())
    assert body["sign"] == expected.decode()
    assert body["msg_type"] == "interactive" and body["card"]["header"]["title"]["content"] == notice.subject


def test_a_500_then_200_delivers_exactly_once(deliver, receiver):
    receiver.script = [(500, b"upstream trouble")]
    [attempt], outbox, _ = deliver("webhook")
    assert attempt.result == "failed" and "HTTP 500" in attempt.error
    deadline = time.monotonic() + 10
    while outbox.pending() and time.monotonic() < deadline:
        outbox.deliver_due()
        time.sleep(0.05)
    for _ in range(5):
        outbox.deliver_due(now=time.time() + 3600)
    assert len(receiver.requests) == 2 and outbox.pending() == 0 and outbox.dead() == []


def test_a_bad_signature_is_dead_lettered_and_it_hears_through_its_own_channel(deliver, receiver, monkeypatch,
                                                                                  tmp_path):
    monkeypatch.setenv("DING_SECRET", SECRET)
    receiver.script = [(200, json.dumps({"errcode": 310000, "errmsg": f"sign not match, token {TOKEN}"}).encode())]
    [attempt], outbox, _ = deliver("dingtalk", {"secret_env": "DING_SECRET"})
    assert attempt.result == "dead" and "310000" in attempt.error
    outbox.deliver_due()
    operator = [json.loads(line) for line in (tmp_path / "it.jsonl").read_text().splitlines()]
    assert [n["phase"] for n in operator] == ["operator"] and "310000" in operator[0]["body"]
    for _ in range(5):
        assert outbox.deliver_due(now=time.time() + 7200) == []
    assert len(receiver.requests) == 1


def test_a_4xx_is_permanent_and_no_token_or_secret_leaks_anywhere(deliver, receiver, monkeypatch, caplog, capfd,
                                                                  tmp_path):
    monkeypatch.setenv("FEISHU_SECRET", SECRET)
    receiver.script = [(404, f"no such hook /hook/{TOKEN}".encode())]
    [attempt], outbox, _ = deliver("feishu", {"secret_env": "FEISHU_SECRET"})
    assert attempt.result == "dead" and "HTTP 404" in attempt.error
    assert f"127.0.0.1:{receiver.port}" in attempt.error
    outbox.deliver_due()
    rows = json.dumps(outbox.store.execute("SELECT * FROM outbox").fetchall(), ensure_ascii=False)
    seen = "\n".join([caplog.text, *capfd.readouterr(), attempt.error, json.dumps(outbox.dead()), rows,
                      (tmp_path / "it.jsonl").read_text()])
    assert TOKEN not in seen and SECRET not in seen and "/hook/" not in seen


def test_an_unreachable_webhook_is_temporary_and_names_the_host_only(deliver, receiver):
    [attempt], outbox, _ = deliver("slack", url=f"http://127.0.0.1:9/hook/{TOKEN}")
    assert attempt.result == "failed" and "127.0.0.1:9" in attempt.error and TOKEN not in attempt.error
    assert outbox.pending() == 1
