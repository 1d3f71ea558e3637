"""Chat and generic webhooks: one JSON POST per notice, shaped for each service.

Flavours (`type:`): `webhook` (generic JSON, documented below), `slack`
(incoming webhook, blocks), `teams` (workflow webhook, Adaptive Card), `wecom`
(WeCom group robot, markdown), `dingtalk` (DingTalk robot, markdown, optional
signing), `feishu` (Feishu/Lark bot, card, optional signing).

Each chat service caps a message (Slack: 50 blocks, 3000 characters a
section; Teams: 28 KB; WeCom: 4096 bytes of markdown; DingTalk: a 20000-byte
body; Feishu: a 20 KB body): a notice that would not fit loses the end of its
technical appendix first, then, only if that is not enough, the end of its
business text, and says so where it was cut. The generic webhook has no cap.

Webhook URLs embed their token, so they are accepted only as `url_env` or
`url_file`, read at send time, and never shown beyond their host. DingTalk,
WeCom and Feishu answer HTTP 200 with an error code in the body: a rate limit
is a temporary failure, anything else (bad token, bad signature, keyword
mismatch) a permanent one.

The generic `webhook` payload is one JSON object:
`{"owner", "department", "severity", "phase", "subject", "body", "appendix",
"incident_id", "thread_id", "sequence", "locale", "created"}` where `body` is
the business text, `appendix` the technical details, `phase` one of
opening|update|resolution|test|operator and `created` unix seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
import urllib.parse
from pathlib import Path
from typing import Any, Callable, ClassVar

from agent.api import Delivery, Duration, Notice, NotifierConfig, NotifyError, model_check
from notifiers._http import Reply, host_of, post_json, read_secret, scrub


class WebhookConfig(NotifierConfig):
    url_env: str | None = None
    url_file: Path | None = None
    timeout: Duration = 10.0
    refused_keys = {"url": "webhook URLs contain a token: give url_env or url_file instead of url"}

    @model_check
    def _one_url(self) -> None:
        if (self.url_env is None) == (self.url_file is None):
            raise ValueError("set exactly one of url_env or url_file")


class SignedWebhookConfig(WebhookConfig):
    """DingTalk and Feishu robots with "signature" security: the signing secret by reference."""

    secret_env: str | None = None
    secret_file: Path | None = None

    @model_check
    def _one_secret(self) -> None:
        if self.secret_env is not None and self.secret_file is not None:
            raise ValueError("set at most one of secret_env or secret_file")


def generic_payload(notice: Notice) -> dict[str, Any]:
    return {"owner": notice.owner, "department": notice.department, "severity": str(notice.severity),
            "phase": notice.phase, "subject": notice.subject, "body": notice.body, "appendix": notice.appendix,
            "incident_id": notice.incident_id, "thread_id": notice.thread_id, "sequence": notice.sequence,
            "locale": notice.locale, "created": notice.created}


CUT_NOTE = {
    "en": "[shortened to fit the message size limit of {service}: {shown} of {total} characters shown]",
    "zh-CN": "[受{service}消息大小上限所限已截短：显示 {shown}/{total} 个字符]",
}


def shortened(text: str, keep: int, service: str, locale: str) -> str:
    """The first `keep` characters of `text`, and a line that says it was cut."""
    note = CUT_NOTE.get(locale, CUT_NOTE["en"]).format(service=service, shown=keep, total=len(text))
    return f"{text[:keep].rstrip()}\n{note}".lstrip("\n")


def fitted(notice: Notice, fits: Callable[[Notice], bool], service: str) -> Notice:
    """`notice` as is when it fits; else with as much of its appendix as fits; else with the appendix reduced
    to its cut note and as much of the business text as fits."""
    if fits(notice):
        return notice
    cut = longest(lambda k: replace(notice, appendix=shortened(notice.appendix, k, service, notice.locale)),
                  len(notice.appendix), fits)
    if cut is None:
        bare = replace(notice, appendix=shortened(notice.appendix, 0, service, notice.locale))
        cut = longest(lambda k: replace(bare, body=shortened(notice.body, k, service, notice.locale)),
                      len(notice.body), fits)
    if cut is None:
        raise NotifyError(f"{service}: even an empty notice does not fit its message size limit", permanent=True)
    return cut


def longest(make: Callable[[int], Notice], total: int, fits: Callable[[Notice], bool]) -> Notice | None:
    """make(k) for the largest k in 0..total that fits (a binary search: fewer characters never grow the
    message), or None when not even make(0) fits."""
    low, high, best = 0, total, None
    while low <= high:
        middle = (low + high) // 2
        candidate = make(middle)
        if fits(candidate):
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best


def body_bytes(payload: Any) -> int:
    """Size of the request body as post_json sends it."""
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def quoted(text: str) -> str:
    """Markdown block quote of every line, for appendices in robot markdown."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


class _Webhook:
    """One POST per notice; a flavour says how the payload looks and how the reply reports failure."""

    type: ClassVar[str]
    Config: ClassVar[type[WebhookConfig]] = WebhookConfig
    service: ClassVar[str] = "the webhook"
    limit: ClassVar[int] = 0
    """Largest request body in bytes the service documents (0: none)."""

    def __init__(self, name: str, config: WebhookConfig):
        self.name, self.config = name, config

    def send(self, notice: Notice) -> Delivery:
        url = read_secret("url", self.config.url_env, self.config.url_file)
        secrets = self._secrets()
        url, payload = self.request(url, notice, secrets)
        reply = post_json(url, payload, self.config.timeout, secrets)
        where = host_of(url)
        self.check(reply, where, secrets)
        return Delivery(self.name, where)

    def _secrets(self) -> list[str]:
        return []

    def request(self, url: str, notice: Notice, secrets: list[str]) -> tuple[str, Any]:
        return url, self.fitted_payload(notice)

    def fitted_payload(self, notice: Notice) -> Any:
        """The payload of the notice, cut (appendix first) to what the service accepts."""
        return self.payload(fitted(notice, lambda n: self.fits(self.payload(n)), self.service))

    def payload(self, notice: Notice) -> Any:
        return generic_payload(notice)

    def fits(self, payload: Any) -> bool:
        return not self.limit or body_bytes(payload) <= self.limit

    def check(self, reply: Reply, where: str, secrets: list[str]) -> None:
        """Any 2xx is success: the generic webhook, Slack and Teams report every failure by HTTP status."""


class _Robot(_Webhook):
    """A chat robot that answers HTTP 200 with an error code in the body when it refuses a message."""

    rate_limited: ClassVar[frozenset[int]]
    """Error codes in a 200 reply that mean "later", not "never"."""

    def check(self, reply: Reply, where: str, secrets: list[str]) -> None:
        answer = reply.json()
        if not isinstance(answer, dict):
            return
        code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
        if code in (0, None):
            return
        message = scrub(str(answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""), secrets)
        raise NotifyError(f"{where} refused the message: code {code} {message}".rstrip(),
                          permanent=code not in self.rate_limited)


class WebhookNotifier(_Webhook):
    """Generic JSON webhook (payload in the module docstring); any 2xx is success."""

    type: ClassVar[str] = "webhook"


class SlackNotifier(_Webhook):
    """Slack incoming webhook: subject as header, business text first, appendix in a code block."""

    type: ClassVar[str] = "slack"
    service: ClassVar[str] = "Slack"
    MAX_BLOCKS: ClassVar[int] = 50
    MAX_SECTION: ClassVar[int] = 3000
    """Characters of a section's text (header: 150), per Slack's Block Kit reference."""

    def payload(self, notice: Notice) -> Any:
        blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": notice.subject[:150]}}]
        blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": piece}}
                   for p in notice.body.split("\n\n") if p.strip()
                   for piece in _pieces(_slack_escape(p), self.MAX_SECTION)]
        if notice.appendix:
            blocks += [{"type": "divider"},
                       {"type": "section", "text": {"type": "mrkdwn", "text": f"```{_slack_escape(notice.appendix)}```"}}]
        return {"text": notice.subject, "blocks": blocks}

    def fits(self, payload: Any) -> bool:
        texts = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]
        return len(payload["blocks"]) <= self.MAX_BLOCKS and all(len(t) <= self.MAX_SECTION for t in texts)


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class TeamsNotifier(_Webhook):
    """Microsoft Teams workflow webhook ("Post to a channel when a webhook request is received"): an Adaptive Card."""

    type: ClassVar[str] = "teams"
    service: ClassVar[str] = "Microsoft Teams"
    limit: ClassVar[int] = 28_000  # "The message size limit is 28 KB" (Teams webhook documentation)

    def payload(self, notice: Notice) -> Any:
        colour = {"critical": "Attention", "warning": "Warning"}.get(str(notice.severity), "Default")
        body: list[dict[str, Any]] = [{"type": "TextBlock", "text": notice.subject, "weight": "Bolder",
                                       "size": "Medium", "wrap": True, "color": colour}]
        body += [{"type": "TextBlock", "text": p, "wrap": True} for p in notice.body.split("\n\n") if p.strip()]
        if notice.appendix:
            body.append({"type": "TextBlock", "text": notice.appendix, "wrap": True, "fontType": "Monospace",
                         "isSubtle": True, "size": "Small", "separator": True, "spacing": "Large"})
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "body": body}
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


class WeComNotifier(_Robot):
    """WeCom (企业微信) group robot, markdown message (at most 4096 bytes)."""

    type: ClassVar[str] = "wecom"
    service: ClassVar[str] = "WeCom"
    rate_limited: ClassVar[frozenset[int]] = frozenset({-1, 45009})
    MAX_CONTENT: ClassVar[int] = 4096
    """Bytes of markdown.content (errcode 40058 beyond)."""

    def payload(self, notice: Notice) -> Any:
        head = f"**{notice.subject}**\n\n{notice.body}"
        tail = f"\n\n{quoted(notice.appendix)}" if notice.appendix else ""
        return {"msgtype": "markdown", "markdown": {"content": head + tail}}

    def fits(self, payload: Any) -> bool:
        return len(payload["markdown"]["content"].encode("utf-8")) <= self.MAX_CONTENT


class _Signed(_Robot):
    """A robot that may have a signing secret; it is read at send time like the URL."""

    Config: ClassVar[type[SignedWebhookConfig]] = SignedWebhookConfig

    def _secrets(self) -> list[str]:
        if self.config.secret_env is None and self.config.secret_file is None:
            return []
        return [read_secret("secret", self.config.secret_env, self.config.secret_file)]


class DingTalkNotifier(_Signed):
    """DingTalk (钉钉) custom robot, markdown. With `secret_env`/`secret_file` the URL is signed (加签)."""

    type: ClassVar[str] = "dingtalk"
    service: ClassVar[str] = "DingTalk"
    limit: ClassVar[int] = 20_000  # errcode 460101 "请保持大小在 20000bytes 以内"
    rate_limited: ClassVar[frozenset[int]] = frozenset({-1, 130101})

    def request(self, url: str, notice: Notice, secrets: list[str]) -> tuple[str, Any]:
        if secrets:
            timestamp = str(int(time.time() * 1000))
            query = urllib.parse.urlencode({"timestamp": timestamp, "sign": dingtalk_sign(secrets[0], timestamp)})
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        return url, self.fitted_payload(notice)

    def payload(self, notice: Notice) -> Any:
        text = f"#### {notice.subject}\n\n{notice.body}"
        if notice.appendix:
            text += f"\n\n{quoted(notice.appendix)}"
        return {"msgtype": "markdown", "markdown": {"title": notice.subject[:64], "text": text}}


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key=secret, msg="timestamp\\nsecret")); the caller URL-encodes it."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FeishuNotifier(_Signed):
    """Feishu/Lark (飞书) custom bot, interactive card. With `secret_env`/`secret_file` the body is signed."""

    type: ClassVar[str] = "feishu"
    service: ClassVar[str] = "Feishu"
    limit: ClassVar[int] = 20_000 - 100  # a 20 KB request body, less the signature fields added after
    rate_limited: ClassVar[frozenset[int]] = frozenset({11232})

    def request(self, url: str, notice: Notice, secrets: list[str]) -> tuple[str, Any]:
        payload = self.fitted_payload(notice)
        if secrets:
            timestamp = str(int(time.time()))
            payload = {"timestamp": timestamp, "sign": feishu_sign(secrets[0], timestamp), **payload}
        return url, payload

    def payload(self, notice: Notice) -> Any:
        colour = {"critical": "red", "warning": "orange"}.get(str(notice.severity), "blue")
        elements: list[dict[str, Any]] = [{"tag": "div", "text": {"tag": "lark_md", "content": notice.body}}]
        if notice.appendix:
            elements += [{"tag": "hr"}, {"tag": "note", "elements": [{"tag": "plain_text", "content": notice.appendix}]}]
        return {"msg_type": "interactive", "card": {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": notice.subject}, "template": colour},
            "elements": elements}}


def feishu_sign(secret: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key="timestamp\\nsecret", msg=b"")), as Feishu documents it."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
