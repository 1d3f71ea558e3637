"""Email messages: one thread per incident, stable ids, readable UTF-8 headers, no header injection."""

from __future__ import annotations

import email
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from agent.api import Invalid

from agent.api import Notice, Severity
from notifiers.email import EmailConfig, build_message

CONFIG = EmailConfig.parse({"type": "email", "to": ["王磊 <wang@example.com>", "it@example.com"],
                                     "from": "Forewarn 信息科 <forewarn@example.com>", "smtp": {"host": "127.0.0.1"}})


def notice(subject: str = "Finance shared drive is almost full", phase: str = "opening", sequence: int = 0,
           incident: str = "ab12cd34", html: str = "<p>Dear Mr. Santino,</p>") -> Notice:
    return Notice("finance", "en", subject, "Dear Mr. Santino,\n\nThe drive is filling.", "Technical details: /srv",
                  html, Severity.WARNING, incident, incident, phase, sequence, "Finance", (), 1_700_000_000.0)


def parsed(n: Notice, config: EmailConfig = CONFIG) -> email.message.EmailMessage:
    return email.message_from_bytes(build_message(n, config).as_bytes(), policy=email.policy.default)


def test_updates_and_the_resolution_reply_to_the_opening_message():
    opening = parsed(notice())
    update = parsed(notice(phase="update", sequence=1))
    resolution = parsed(notice(phase="resolution", sequence=2))
    assert "In-Reply-To" not in opening and "References" not in opening
    for reply in (update, resolution):
        assert reply["In-Reply-To"] == opening["Message-ID"]
        assert reply["References"] == opening["Message-ID"]
    assert len({opening["Message-ID"], update["Message-ID"], resolution["Message-ID"]}) == 3


def test_the_first_notice_of_a_thread_refers_to_nothing_whatever_its_phase():
    escalation = parsed(notice(phase="update", sequence=0))  # an escalation opens a thread with an update
    assert "In-Reply-To" not in escalation and "References" not in escalation


def test_a_resent_notice_carries_the_same_message_id():
    assert parsed(notice())["Message-ID"] == parsed(notice())["Message-ID"]
    assert parsed(notice())["Message-ID"].endswith("@example.com>")


def test_chinese_subject_and_names_decode_back_to_the_same_text():
    msg = parsed(notice(subject="影像调阅偶尔变慢，已在处理"))
    assert msg["Subject"] == "影像调阅偶尔变慢，已在处理"
    assert msg["From"].addresses[0].display_name == "Forewarn 信息科"
    assert msg["To"].addresses[0].display_name == "王磊"
    raw = build_message(notice(subject="影像调阅偶尔变慢"), CONFIG).as_bytes()
    assert raw.isascii()  # every header and body encoded: any relay passes it through


def test_message_has_text_and_html_parts():
    msg = parsed(notice())
    assert msg.get_content_type() == "multipart/alternative"
    assert "Technical details: /srv" in msg.get_body(("plain",)).get_content()
    assert "Dear Mr. Santino" in msg.get_body(("html",)).get_content()


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=120)
       .map(lambda s: s + "\r\nBcc: victim@example.org\nX-Injected: yes"))
def test_no_subject_can_add_a_header(subject):
    msg = parsed(notice(subject=subject))
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]


@pytest.mark.parametrize("field,value", [
    ("from", "forewarn@example.com\r\nBcc: victim@example.org"),
    ("to", ["it@example.com\nBcc: victim@example.org"]),
    ("to", ["not an address"]),
    ("to", []),
])
def test_addresses_that_could_inject_headers_are_refused_in_the_config(field, value):
    data = {"type": "email", "to": ["it@example.com"], "from": "forewarn@example.com", "smtp": {"host": "h"}}
    data[field] = value
    with pytest.raises(Invalid):
        EmailConfig.parse(data)


def test_smtp_settings_default_ports_and_refuse_half_a_login():
    implicit = EmailConfig.parse({"type": "email", "to": "a@example.com", "from": "b@example.com",
                                           "smtp": {"host": "h", "tls": True}})
    assert implicit.smtp.effective_port == 465 and implicit.to == ("a@example.com",)
    assert CONFIG.smtp.effective_port == 25
    with pytest.raises(Invalid, match="both a username"):
        EmailConfig.parse({"type": "email", "to": "a@example.com", "from": "b@example.com",
                                    "smtp": {"host": "h", "password_env": "SMTP_PASSWORD"}})
    with pytest.raises(Invalid, match="not both"):
        EmailConfig.parse({"type": "email", "to": "a@example.com", "from": "b@example.com",
                                    "smtp": {"host": "h", "tls": True, "starttls": True}})
