"""A 300-finding notice fits every chat service's documented size limit, the appendix cut first, and says so.

The notices come from the real composer; each flavour's payload is measured
the way its service measures it (the JSON body as sent, WeCom's markdown
content in bytes, Slack's blocks and section texts).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.api import Finding, Notice, Severity
from agent.composer import Composer, address
from agent.config import parse_config
from agent.registry import default_registry
from notifiers.webhook import (DingTalkNotifier, FeishuNotifier, SlackNotifier, TeamsNotifier, WebhookConfig,
                               WebhookNotifier, WeComNotifier, fitted)

CONFIG = WebhookConfig(type="webhook", url_env="HOOK")
NOW = 1_795_000_000.0
OWNERS = {"it": ("IT", "On-call", "Team", "en"), "radiology": ("放射科", "王磊", "王主任", "zh-CN")}


def over(flavour: type, payload: dict) -> str:
    """What in the payload breaks the service's documented limit ("" when nothing)."""
    if flavour is WeComNotifier:
        size = len(payload["markdown"]["content"].encode())
        return f"markdown.content {size} > 4096 bytes" if size > 4096 else ""
    if flavour is SlackNotifier:
        longest = max(len(b["text"]["text"]) for b in payload["blocks"] if b["type"] == "section")
        blocks = len(payload["blocks"])
        return f"{blocks} blocks, longest section {longest}" if blocks > 50 or longest > 3000 else ""
    size = len(json.dumps(payload, ensure_ascii=False).encode())
    limit = {TeamsNotifier: 28_000, DingTalkNotifier: 20_000, FeishuNotifier: 20_000}[flavour]
    return f"body {size} > {limit} bytes" if size > limit else ""


def notice(owner: str, findings: int) -> Notice:
    department, contact, address_as, language = OWNERS[owner]
    config = parse_config({"agent": {"default_owner": owner}, "owners": {owner: {
        "department": department, "contact": contact, "address_as": address_as, "tone": "formal",
        "language": language}}}, "test.yaml", default_registry())
    items = [Finding("disk", "disk_nearly_full", Severity.WARNING, f"/srv/share{i:03d}",
                     {"mount": f"/srv/share{i:03d}", "device": f"/dev/sd{i}", "fstype": "ext4"},
                     f"/srv/share{i:03d} is 91.0% full",
                     {"mount": f"/srv/share{i:03d}", "used_ratio": 0.91, "used_bytes": 910e9, "free_bytes": 90e9,
                      "size_bytes": 1e12},
                     {"mount": f"/srv/share{i:03d} (ext4, /dev/sd{i})", "used": "91.0%", "rule": "used >= 85%"})
             for i in range(findings)]
    return Composer(config).compose(owner, address(items, config)[owner], NOW)


@pytest.fixture(scope="module", params=sorted(OWNERS))
def big(request: pytest.FixtureRequest) -> Notice:
    return notice(request.param, 300)


@pytest.mark.parametrize("flavour", [SlackNotifier, TeamsNotifier, WeComNotifier, DingTalkNotifier, FeishuNotifier],
                         ids=lambda f: f.type)
def test_a_300_finding_notice_fits_each_service_appendix_cut_first_and_said(big: Notice, flavour: type) -> None:
    notifier = flavour("chat", CONFIG)
    assert over(flavour, notifier.payload(big)), f"the uncut notice fits {flavour.type} already: not a test"
    payload = notifier.fitted_payload(big)
    assert not over(flavour, payload), over(flavour, payload)
    text = json.dumps(payload, ensure_ascii=False)
    note = "shortened to fit the message size limit of" if big.locale == "en" else "消息大小上限所限已截短"
    assert note in text, f"{flavour.type}: the cut is not said"
    first_line = big.body.split("\n")[0]
    assert first_line in text, "the greeting and the start of the business text are kept"
    kept = fitted(big, lambda n: notifier.fits(notifier.payload(n)), notifier.service)
    if note not in kept.body:  # the business text is cut only when the appendix alone was not enough
        assert kept.body == big.body and kept.appendix.startswith(big.appendix[:50]), flavour.type
    else:
        assert note in kept.appendix and len(kept.appendix) < 200, "the appendix went first"


@pytest.mark.parametrize("flavour", [SlackNotifier, TeamsNotifier, WeComNotifier, DingTalkNotifier, FeishuNotifier,
                                     WebhookNotifier], ids=lambda f: f.type)
def test_a_small_notice_goes_out_whole(flavour: type) -> None:
    small = notice("radiology", 2)
    notifier = flavour("chat", CONFIG)
    assert notifier.fitted_payload(small) == notifier.payload(small)


def test_the_generic_webhook_has_no_cap(big: Notice) -> None:
    assert WebhookNotifier("hook", CONFIG).fitted_payload(big)["appendix"] == big.appendix


@given(st.text(max_size=400), st.text(max_size=400), st.integers(min_value=60, max_value=600))
def test_fitted_keeps_within_the_limit_and_keeps_the_body_when_the_appendix_suffices(body: str, appendix: str,
                                                                                      limit: int) -> None:
    base = Notice("it", "en", "s", body, appendix, "", Severity.WARNING, "i", "i")
    fits = lambda n: len((n.body + n.appendix).encode()) <= limit  # noqa: E731
    try:
        cut = fitted(base, fits, "Test")
    except Exception as exc:  # only when not even the two cut notes fit
        assert not fits(Notice("it", "en", "s", "x" * 0, "", "", Severity.WARNING, "i", "i")) or "empty" in str(exc)
        return
    assert fits(cut)
    if fits(base):
        assert cut == base
    elif len(body.encode()) + 120 < limit:
        assert cut.body == body
