"""Webhook flavours: payload shapes, signatures as the services document them, URLs shown by host only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


from agent.api import Finding, Notice, Severity
from notifiers._http import host_of, scrub
from notifiers.alertmanager import AlertmanagerConfig, alertname, alerts_for
from notifiers.webhook import (DingTalkNotifier, FeishuNotifier, SlackNotifier, TeamsNotifier, WebhookConfig,
                               WeComNotifier, dingtalk_sign, feishu_sign)

CONFIG = WebhookConfig(type="webhook", url_env="HOOK")
NOTICE = Notice("radiology", "zh-CN", "影像调阅偶尔变慢", "王主任您好：\n\n大约每 40 次中有 1 次需要等待 2 秒以上。",
                "技术附录：pacs-cache p97.5 2.1 s\nslowlog 12 <KEYS>", "<p>x</p>", Severity.WARNING, "inc9", "inc9",
                findings=(Finding("cache", "cache_latency_spikes", Severity.WARNING, "pacs-cache",
                                  {"target": "pacs-cache"}, "slow"),), department="放射科", created=1_700_000_000.0)


def test_dingtalk_signature_matches_the_documented_algorithm():
    secret, timestamp = "SEC0123456789abcdef", "1700000000000"
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert dingtalk_sign(secret, timestamp) == expected


def test_feishu_signature_matches_the_documented_algorithm():
    secret, timestamp = "feishu-secret", "1700000000"
    expected = base64.b64encode(hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
    assert feishu_sign(secret, timestamp) == expected


def test_slack_puts_the_business_text_first_and_the_appendix_in_a_code_block():
    payload = SlackNotifier("chat", CONFIG).payload(NOTICE)
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds[0] == "header" and kinds[-2:] == ["divider", "section"]
    assert payload["blocks"][-1]["text"]["text"].startswith("```") and "&lt;KEYS&gt;" in payload["blocks"][-1]["text"]["text"]
    assert "大约每 40 次" in payload["blocks"][2]["text"]["text"]


def test_teams_sends_an_adaptive_card():
    payload = TeamsNotifier("teams", CONFIG).payload(NOTICE)
    card = payload["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard" and card["content"]["body"][0]["text"] == NOTICE.subject


def test_robot_payloads_name_the_subject_and_colour():
    assert WeComNotifier("w", CONFIG).payload(NOTICE)["markdown"]["content"].startswith("**影像调阅偶尔变慢**")
    assert DingTalkNotifier("d", CONFIG).payload(NOTICE)["markdown"]["title"] == "影像调阅偶尔变慢"
    assert FeishuNotifier("f", CONFIG).payload(NOTICE)["card"]["header"]["template"] == "orange"


def test_urls_are_shown_by_host_only_and_replies_are_scrubbed_of_tokens():
    url = "https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789"
    assert host_of(url) == "https://oapi.dingtalk.com"
    assert "abcdef0123456789" not in scrub(f"bad request for {url} token abcdef0123456789", [url, "abcdef0123456789"])


def test_alertmanager_labels_identify_the_problem_and_annotations_carry_the_words():
    [alert] = alerts_for(NOTICE, "pacs-host", 1_700_000_100.0, 240.0)
    assert alert["labels"] == {"alertname": "ForewarnCacheLatencySpikes", "department": "放射科", "owner": "radiology",
                               "severity": "warning", "check": "cache", "resource": "pacs-cache",
                               "instance": "pacs-host"}
    assert alert["annotations"]["summary"] == NOTICE.subject and alert["annotations"]["description"] == NOTICE.body
    assert alert["endsAt"] > alert["startsAt"]
    assert alertname("disk_nearly_full") == "ForewarnDiskNearlyFull"


def test_alertmanager_accepts_a_cluster_and_posts_to_each_member_once():
    config = AlertmanagerConfig(type="alertmanager", url="http://a:9093/", urls=("http://a:9093", "http://b:9093"))
    assert config.endpoints == ("http://a:9093/api/v2/alerts", "http://b:9093/api/v2/alerts")
    json.dumps(alerts_for(NOTICE, "h", 1.0, 1.0))  # serialisable as sent
