"""Email delivery through the outbox against a real SMTP server: threads, encodings, faults, crashes, secrets."""

from __future__ import annotations

import json
import os
from dataclasses import replace
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agent.api import Finding, Notice, Severity
from agent.commands.notify_test import notify_test
from agent.composer import Composer, address
from agent.config import parse_config
from agent.outbox import Outbox, RetryPolicy, notice_to_dict
from agent.registry import default_registry
from agent.store import Store
from tests.integration.servers import SmtpServer, wait_until

NOW = 1_700_000_000.0
FAST = RetryPolicy(initial=0.5, factor=2.0, max_delay=3.0, jitter=0.2, dead_letter_after=120.0)
PASSWORD = "pw-S3cr3t-4f9a1c"


def document(smtp_port: int, tmp_path: Path, smtp_extra: dict | None = None) -> dict:
    smtp = {"host": "127.0.0.1", "port": smtp_port, "timeout": "5s", **(smtp_extra or {})}
    mail = {"type": "email", "from": "Forewarn 信息科 <forewarn@example.com>", "smtp": smtp}
    return {
        "agent": {"state_dir": str(tmp_path / "state"), "hostname": "fin-fs01"},
        "owners": {
            "it": {"department": "IT", "address_as": "Team", "tone": "friendly", "notify": ["it-file"]},
            "finance": {"department": "Finance", "address_as": "Mr. Santino", "timezone": "Europe/Rome",
                        "notify": ["finance-mail"]},
            "radiology": {"department": "放射科", "address_as": "王主任", "language": "zh-CN",
                          "timezone": "Asia/Shanghai", "notify": ["radiology-mail"]},
        },
        "resources": [
            {"name": "Finance shared drive <script>alert(1)</script>", "owner": "finance",
             "impact": "month-end closing reports can't be saved", "match": {"check": "disk", "mount": "/srv/finance"}},
            {"name": "影像存储盘", "owner": "radiology", "impact": "医生无法保存新的影像",
             "match": {"check": "disk", "mount": "/srv/pacs"}},
        ],
        "checks": {"disk": {}},
        "notifiers": {
            "it-file": {"type": "file", "path": str(tmp_path / "it-notices.jsonl")},
            "finance-mail": {**mail, "to": ["Marco Santino <marco.santino@example.com>"]},
            "radiology-mail": {**mail, "to": ["王磊 <wang.lei@example.com>"]},
        },
    }


def config_for(smtp_port: int, tmp_path: Path, smtp_extra: dict | None = None):
    return parse_config(document(smtp_port, tmp_path, smtp_extra), "test.yaml", default_registry())


def disk_finding(mount: str, severity: Severity = Severity.WARNING) -> Finding:
    kind = "disk_full" if severity is Severity.CRITICAL else "disk_nearly_full"
    return Finding("disk", kind, severity, mount, {"mount": mount, "device": "/dev/sdb1", "fstype": "ext4"},
                   f"{mount} is 91.2% full", facts={"mount": mount, "used_ratio": 0.912, "free_bytes": 88e9},
                   evidence={"used": "912 GB of 1 TB"}, incident="disk_space")


def compose(config, owner: str, mount: str, phase: str = "opening", sequence: int = 0, now: float = NOW) -> Notice:
    items = address([disk_finding(mount)], config)[owner]
    first = Composer(config).compose(owner, items, NOW)
    return Composer(config).compose(owner, items, now, phase=phase, incident=first.incident_id,
                                    thread=first.thread_id, sequence=sequence, lasted=now - NOW or None)


def drain(outbox: Outbox, done, timeout: float, pause: float = 0.1) -> None:
    """Delivery passes until `done()` (bounded), as the daemon's loop would run them."""
    def one_pass() -> bool:
        outbox.deliver_due()
        return done()

    assert wait_until(one_pass, timeout, interval=pause), f"not done within {timeout}s; pending={outbox.pending()}"


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "state")
    yield store
    store.close()


def test_opening_update_and_resolution_arrive_as_one_thread(smtp_server: SmtpServer, tmp_path, store):
    config = config_for(smtp_server.port, tmp_path)
    outbox = Outbox(store, config, policy=FAST)
    for phase, sequence in (("opening", 0), ("update", 1), ("resolution", 2)):
        outbox.enqueue(compose(config, "finance", "/srv/finance", phase, sequence, NOW + 1200 * sequence))
    outbox.deliver_due()
    opening, update, resolution = smtp_server.wait_for_messages(3)
    assert "References" not in opening
    assert update["References"] == opening["Message-ID"] == resolution["In-Reply-To"]
    assert resolution["References"] == opening["Message-ID"]
    assert resolution["Subject"].startswith("Resolved: ")
    assert [m.rcpt_tos for m in smtp_server.received] == [["marco.santino@example.com"]] * 3
    assert outbox.pending() == 0 and len(smtp_server.messages) == 3


def test_chinese_subject_decodes_to_the_same_text_with_text_and_html_parts(smtp_server: SmtpServer, tmp_path, store):
    config = config_for(smtp_server.port, tmp_path)
    notice = compose(config, "radiology", "/srv/pacs")
    assert "影像存储盘" in notice.subject
    Outbox(store, config, policy=FAST).send_now([notice])
    [msg] = smtp_server.wait_for_messages(1)
    assert msg["Subject"] == notice.subject
    assert msg["To"].addresses[0].display_name == "王磊"
    assert msg["From"].addresses[0].display_name == "Forewarn 信息科"
    assert "王主任您好" in msg.get_body(("plain",)).get_content()
    assert "影像存储盘" in msg.get_body(("html",)).get_content()


def test_html_part_escapes_markup_in_a_resource_name(smtp_server: SmtpServer, tmp_path, store):
    config = config_for(smtp_server.port, tmp_path)
    Outbox(store, config, policy=FAST).send_now([compose(config, "finance", "/srv/finance")])
    [msg] = smtp_server.wait_for_messages(1)
    html = msg.get_body(("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "<script>alert(1)</script>" in msg.get_body(("plain",)).get_content()  # plain text stays as written


def test_notice_arrives_exactly_once_when_smtp_is_down_for_twenty_seconds(smtp_server: SmtpServer, tmp_path, store):
    config = config_for(smtp_server.port, tmp_path)
    outbox = Outbox(store, config, policy=FAST)
    smtp_server.stop()
    outbox.enqueue(compose(config, "finance", "/srv/finance"))
    restart = threading.Timer(20.0, smtp_server.start)
    restart.start()
    try:
        failures = []
        deadline = time.monotonic() + 40
        while not smtp_server.received and time.monotonic() < deadline:
            failures += [a for a in outbox.deliver_due() if a.result == "failed"]
            time.sleep(0.2)
    finally:
        restart.join()
    smtp_server.wait_for_messages(1)
    for _ in range(10):  # later passes must not send it again
        outbox.deliver_due(now=time.time() + 3600)
    assert len(smtp_server.messages) == 1
    assert failures and all("could not be reached" in a.error for a in failures)
    assert len(failures) < 20  # backoff, not a hot loop
    assert outbox.pending() == 0 and outbox.dead() == []


ENQUEUE_THEN_DIE = """
import json, os, signal, sys
from agent.config import load_config
from agent.outbox import Outbox, notice_from_dict
from agent.store import Store
config = load_config(sys.argv[1])
outbox = Outbox(Store(config.state_dir()), config)
outbox.enqueue(notice_from_dict(json.loads(open(sys.argv[2]).read())))
os.kill(os.getpid(), signal.SIGKILL)  # between the outbox write and any send
"""

DELIVER = """
import json, sys
from agent.config import load_config
from agent.outbox import Outbox
from agent.store import Store
config = load_config(sys.argv[1])
outbox = Outbox(Store(config.state_dir()), config)
print(json.dumps([a.result for a in outbox.deliver_due()]))
"""


def test_a_notice_written_before_a_kill_9_is_delivered_once_by_the_next_process(smtp_server: SmtpServer, tmp_path):
    config_file = tmp_path / "forewarn.yaml"
    config_file.write_text(yaml.safe_dump(document(smtp_server.port, tmp_path), allow_unicode=True))
    config = config_for(smtp_server.port, tmp_path)
    notice_file = tmp_path / "notice.json"
    notice_file.write_text(json.dumps(notice_to_dict(compose(config, "finance", "/srv/finance")), ensure_ascii=False))
    killed = subprocess.run([sys.executable, "-c", ENQUEUE_THEN_DIE, str(config_file), str(notice_file)],
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9, killed.stderr
    assert smtp_server.received == []
    results = []
    for _ in range(2):  # a second process finds nothing left to send
        run = subprocess.run([sys.executable, "-c", DELIVER, str(config_file)], capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 0, run.stderr
        results.append(json.loads(run.stdout))
    assert results == [["sent"], []]
    assert len(smtp_server.wait_for_messages(1)) == 1


def test_a_refused_mailbox_is_dead_lettered_and_it_hears_through_another_channel(smtp_server: SmtpServer, tmp_path,
                                                                                  store):
    config = config_for(smtp_server.port, tmp_path)
    outbox = Outbox(store, config, policy=FAST)
    smtp_server.respond_with = "550 5.1.1 mailbox unavailable"
    [attempt] = outbox.send_now([compose(config, "finance", "/srv/finance")])
    assert attempt.result == "dead" and "550" in attempt.error
    outbox.deliver_due()
    lines = [json.loads(line) for line in (tmp_path / "it-notices.jsonl").read_text().splitlines()]
    [operator] = [line for line in lines if line["phase"] == "operator"]
    assert operator["owner"] == "it" and "finance-mail" in operator["body"] and "550" in operator["body"]
    for _ in range(5):
        assert outbox.deliver_due(now=time.time() + 7200) == []
    [dead] = outbox.dead()
    assert dead["channel"] == "finance-mail" and dead["attempts"] == 1
    assert smtp_server.received == []


def test_no_smtp_password_in_logs_errors_dead_letters_or_the_outbox(start_server, tmp_path, store, monkeypatch, caplog,
                                                                    capfd):
    server = start_server(SmtpServer(login=("forewarn", PASSWORD)))
    monkeypatch.setenv("SMTP_USER", "forewarn")
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    config = config_for(server.port, tmp_path, {"username_env": "SMTP_USER", "password_env": "SMTP_PASSWORD"})
    outbox = Outbox(store, config, policy=FAST)
    assert [a.result for a in outbox.send_now([compose(config, "finance", "/srv/finance")])] == ["sent"]
    server.wait_for_messages(1)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD + "-rotated")  # the server now refuses the login: 535
    [refused] = outbox.send_now([compose(config, "finance", "/srv/finance", "update", 1)])
    assert refused.result == "dead" and "535" in refused.error
    outbox.deliver_due()
    rows = json.dumps(store.execute("SELECT * FROM outbox").fetchall(), ensure_ascii=False)
    seen = "\n".join([caplog.text, *capfd.readouterr(), refused.error, json.dumps(outbox.dead()), rows,
                      (tmp_path / "it-notices.jsonl").read_text()])
    assert PASSWORD not in seen


def test_notify_test_reports_each_channel(smtp_server: SmtpServer, tmp_path):
    config_file = tmp_path / "forewarn.yaml"
    doc = document(smtp_server.port, tmp_path)
    doc["owners"]["finance"]["notify"] = ["finance-mail", "radiology-mail"]
    config_file.write_text(yaml.safe_dump(doc, allow_unicode=True))
    result = CliRunner().invoke(notify_test, ["--owner", "finance", "-c", str(config_file)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["finance-mail: sent", "radiology-mail: sent"]
    first, _ = smtp_server.wait_for_messages(2)
    assert first["Subject"].startswith("[Test]")
    assert "This is a test message" in first.get_body(("plain",)).get_content()
    smtp_server.stop()
    down = CliRunner().invoke(notify_test, ["--owner", "finance", "--channel", "finance-mail", "-c", str(config_file)])
    assert down.exit_code == 1
    assert down.output.startswith("finance-mail: failed: SMTP 127.0.0.1:") and "could not be reached" in down.output
    unknown = CliRunner().invoke(notify_test, ["--owner", "nobody", "-c", str(config_file)])
    assert unknown.exit_code == 2 and "unknown owner 'nobody'" in unknown.output


SEND_THEN_DIE = """
import os, signal, sys
from agent.config import load_config
from agent.outbox import Outbox
from agent.store import Store
import notifiers.email
notifiers.email.EmailNotifier.send = lambda self, notice: os.kill(os.getpid(), signal.SIGKILL)  # mid-send
config = load_config(sys.argv[1])
Outbox(Store(config.state_dir()), config).deliver_due()
"""


def test_a_kill_9_during_a_send_does_not_stall_that_owners_later_notices(smtp_server: SmtpServer, tmp_path, store):
    config_file = tmp_path / "forewarn.yaml"
    config_file.write_text(yaml.safe_dump(document(smtp_server.port, tmp_path), allow_unicode=True))
    config = config_for(smtp_server.port, tmp_path)
    outbox = Outbox(store, config, policy=FAST)
    outbox.enqueue(compose(config, "finance", "/srv/finance"))
    killed = subprocess.run([sys.executable, "-c", SEND_THEN_DIE, str(config_file)], capture_output=True, text=True,
                            timeout=60)
    assert killed.returncode == -9, killed.stderr
    assert smtp_server.received == []
    first = compose(config, "finance", "/srv/finance")
    outbox.enqueue(replace(first, incident_id="other", thread_id="other", subject="another incident"))
    run = subprocess.run([sys.executable, "-c", DELIVER, str(config_file)], capture_output=True, text=True,
                         timeout=60)  # the restarted agent's first pass
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == ["sent", "sent"]
    assert len(smtp_server.wait_for_messages(2)) == 2
