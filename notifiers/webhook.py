"""Chat and generic webhooks: one JSON POST per notice, shaped for each service.

Flavours (`type:`): `webhook` (generic JSON, documented below), `slack`
(incoming webhook, blocks), `teams` (workflow webhook, Adaptive Card), `wecom`
(WeCom group robot, markdown), `dingtalk` (DingTalk robot, markdown, optional
signing), `feishu` (Feishu/Lark bot, card, optional signing).

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
import time
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar

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


def fit(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, marked when cut (the chat services reject longer ones)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit - 4].decode("utf-8", "ignore") + " …"


def quoted(text: str) -> str:
    """Markdown block quote of every line, for appendices in robot markdown."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


class _Webhook:
    """One POST per notice; a flavour says how the payload looks and how the reply reports failure."""

    type: ClassVar[str]
    Config: ClassVar[type[WebhookConfig]] = WebhookConfig

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
        return url, self.payload(notice)

    def payload(self, notice: Notice) -> Any:
        return generic_payload(notice)

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

    def payload(self, notice: Notice) -> Any:
        blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": notice.subject[:150]}}]
        blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(p)[:3000]}}
                   for p in notice.body.split("\n\n") if p.strip()][:45]
        if notice.appendix:
            blocks += [{"type": "divider"},
                       {"type": "section", "text": {"type": "mrkdwn",
                                                    "text": f"```{_slack_escape(notice.appendix)[:2990]}```"}}]
        return {"text": notice.subject, "blocks": blocks}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class TeamsNotifier(_Webhook):
    """Microsoft Teams workflow webhook ("Post to a channel when a webhook request is received"): an Adaptive Card."""

    type: ClassVar[str] = "teams"

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
    rate_limited: ClassVar[frozenset[int]] = frozenset({-1, 45009})

    def payload(self, notice: Notice) -> Any:
        head = f"**{notice.subject}**\n\n{notice.body}"
        tail = f"\n\n{quoted(notice.appendix)}" if notice.appendix else ""
        return {"msgtype": "markdown", "markdown": {"content": fit(head + tail, 4096)}}


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
    rate_limited: ClassVar[frozenset[int]] = frozenset({-1, 130101})

    def request(self, url: str, notice: Notice, secrets: list[str]) -> tuple[str, Any]:
        if secrets:
            timestamp = str(int(time.time() * 1000))
            query = urllib.parse.urlencode({"timestamp": timestamp, "sign": dingtalk_sign(secrets[0], timestamp)})
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        return url, self.payload(notice)

    def payload(self, notice: Notice) -> Any:
        text = f"#### {notice.subject}\n\n{notice.body}"
        if notice.appendix:
            text += f"\n\n{quoted(notice.appendix)}"
        return {"msgtype": "markdown", "markdown": {"title": notice.subject[:64], "text": fit(text, 18000)}}


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key=secret, msg="timestamp\\nsecret")); the caller URL-encodes it."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FeishuNotifier(_Signed):
    """Feishu/Lark (飞书) custom bot, interactive card. With `secret_env`/`secret_file` the body is signed."""

    type: ClassVar[str] = "feishu"
    rate_limited: ClassVar[frozenset[int]] = frozenset({11232})

    def request(self, url: str, notice: Notice, secrets: list[str]) -> tuple[str, Any]:
        payload = self.payload(notice)
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
