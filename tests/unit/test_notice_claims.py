"""The claims check (issue 13): every number and date in a notice's body comes from a named fact of its finding.

Every notice kind is rendered in en and zh-CN from fixtures at the edges (0, tiny, huge, month start and
end, narrow and wide forecast ranges, several findings merged, every phase). Each number in the body must
be one the humanizer makes from a fact (or the configured update interval, or IT's note): a number the
templates wrote themselves, or one made from the wrong fact, fails. Then the main claims of each kind are
asserted against the facts they came from.
"""

from __future__ import annotations

import re
from itertools import product
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import pytest

from agent.api import Finding, Forecast, Severity
from agent.composer import Composer, Item, Note, PastFix, address
from agent.config import parse_config
from agent.humanize import Humanizer
from agent.registry import default_registry
from tests.unit.test_cache_notices import FACTS as CACHE_FACTS

DAY = 86400.0
MID_MONTH = 1_794_909_600.0            # Tuesday 17 November 2026, 10:00 UTC
MONTH_START = 1_796_083_200.0          # 1 December 2026, 00:00 UTC
MONTH_END = MONTH_START - 60           # 30 November 2026, 23:59 UTC
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
CONFIG = {
    "owners": {
        "it": {"department": "IT", "address_as": "Team", "tone": "friendly"},
        "finance": {"department": "Finance", "address_as": "Mr. Santino", "timezone": "Europe/Rome"},
        "radiology": {"department": "放射科", "address_as": "王主任", "language": "zh-CN", "timezone": "Asia/Shanghai"},
    },
    "resources": [
        {"name": "Finance shared drive", "owner": "finance", "impact": "month-end reports can't be saved",
         "match": {"check": "disk", "mount": "/srv/x"}},
        {"name": "财务共享盘", "owner": "radiology", "match": {"check": "disk", "mount": "/srv/x"}},
        {"name": "PACS cache", "owner": "finance", "operation": "image loads", "match": {"check": "cache"}},
        {"name": "影像缓存", "owner": "radiology", "operation": "影像调阅", "match": {"check": "cache"}},
        {"name": "Report exports bucket", "owner": "finance", "response": "IT moves old exports on Thursdays",
         "match": {"check": "cloud_storage", "bucket": "acme"}},
        {"name": "报表导出存储", "owner": "radiology", "match": {"check": "cloud_storage", "bucket": "acme"}},
    ],
    "checks": {"disk": {}},
}


@pytest.fixture(scope="module")
def config():
    return parse_config(CONFIG, "claims.yaml", default_registry())


# ---------------------------------------------------------------- fixtures at the edges


def disk(kind: str, now: float, free: float, size: float, *, hours: tuple[float, float] | None = None,
         **facts: Any) -> Finding:
    used = size - free
    base = {"mount": "/srv/x", "used_ratio": used / size if size else 0.0, "used_bytes": used,
            "free_bytes": free, "size_bytes": size}
    forecast = None
    if hours:
        low, high = hours
        forecast = Forecast(now + (low + high) / 2 * 3600, now + low * 3600, now + high * 3600, "Theil-Sen")
        base.update(rate_bytes_per_second=free / ((low + high) / 2 * 3600), window_seconds=3 * DAY,
                    gained_bytes=free / 7)
    severity = Severity.CRITICAL if kind == "disk_full" else Severity.WARNING
    return Finding("disk", kind, severity, "/srv/x", {"mount": "/srv/x"}, "summary", {**base, **facts},
                   {"mount": "/srv/x"}, forecast, incident="disk_space")


def cache(kind: str, **facts: Any) -> Finding:
    return Finding("cache", kind, Severity.CRITICAL if kind == "cache_unreachable" else Severity.WARNING,
                   "pacs", {"target": "pacs"}, "summary",
                   {"target": "pacs", "kind": "redis", **CACHE_FACTS[kind], **facts}, {"endpoint": "pacs"})


def storage(kind: str, now: float, scale: float, *, month_to_date: float, **facts: Any) -> Finding:
    start = MONTH_START if now >= MONTH_START else MONTH_START - 30 * DAY
    base = {"bucket": "acme", "buckets": ["acme"], "currency": "EUR", "budget": 60.0 * scale,
            "causes": [{"kind": "temp_files", "where": "reports/tmp/", "share": 0.68, "monthly_cost": 12.0 * scale,
                        "saving": 12.0 * scale, "bytes": 520e9 * scale, "count": 4000, "fix": "expire"},
                       {"kind": "incomplete_uploads", "where": "", "share": 0.05, "monthly_cost": 0.004,
                        "saving": 0.004, "bytes": 40e6, "count": 3, "fix": "abort_uploads"}],
            "saving": round(12.004 * scale, 2), "cleanup_rules": 2, "suggest_commands": ["agent suggest lifecycle acme"],
            "bytes_now": 1.8e12 * scale, "monthly_now": 81.34 * scale, "monthly_week_ago": 70.0 * scale,
            "weekly_rise": 11.32 * scale, "usual_weekly_rise": 0.74 * scale, "times_usual": 15.3,
            "monthly_growth_ratio": 0.6, "projected_bill": 71.25 * scale, "next_month_bill": 111.0 * scale,
            "month_to_date": month_to_date, "month_start": start, "month_end": start + 30 * DAY}
    return Finding("cloud_storage", kind, Severity.WARNING, "acme", {"bucket": "acme"}, "summary",
                   {**base, **facts}, {"bucket": "acme"})


def cases() -> Iterator[tuple[str, float, list[Finding]]]:
    for now in (MID_MONTH, MONTH_START, MONTH_END):
        yield "disk nearly full, no trend", now, [disk("disk_nearly_full", now, 48e9, 530e9)]
        yield "disk nearly full, wide range", now, [disk("disk_nearly_full", now, 48e9, 530e9, hours=(80, 200))]
        yield "disk filling, minutes left", now, [disk("disk_filling", now, 5e6, 1e12, hours=(0.02, 0.03))]
        yield "disk filling, narrow range", now, [disk("disk_filling", now, 88e9, 1e12, hours=(50, 51))]
        yield "disk full, zero left", now, [disk("disk_full", now, 0.0, 1e12)]
        yield "disk full, tiny and huge", now, [disk("disk_full", now, 3.0, 9e15, hours=(1, 3))]
        yield "inodes", now, [disk("inodes_running_out", now, 88e9, 1e12, inodes_used_ratio=0.999,
                                   files_free=12)]
        for variant in ({"hung": True}, {"hung": False, "missing": True}, {"hung": False, "missing": False}):
            yield f"disk unresponsive {variant}", now, [Finding("disk", "disk_unresponsive", Severity.WARNING,
                                                                "/srv/x", {"mount": "/srv/x"}, "s",
                                                                {"mount": "/srv/x", **variant})]
        for kind in sorted(CACHE_FACTS):
            yield kind, now, [cache(kind)]
        yield "cache spikes, tiny share", now, [cache("cache_latency_spikes", slow_share=0.0004, worst_seconds=31.0)]
        for scale, spent in ((1.0, 0.0), (1.0, 0.004), (0.001, 0.0), (1000.0, 20000.0)):
            for kind in ("storage_cost_growth", "storage_budget_overrun", "storage_cleanup_missing"):
                yield f"{kind} x{scale} spent {spent}", now, [storage(kind, now, scale, month_to_date=spent)]
            yield f"merged overrun and growth x{scale}", now, [
                storage("storage_budget_overrun", now, scale, month_to_date=spent, causes=[]),
                storage("storage_cost_growth", now, scale, month_to_date=spent)]
        yield "merged disk and cache", now, [disk("disk_full", now, 1e9, 1e12, hours=(2, 9)),
                                             cache("cache_slow")]
        yield "storage denied", now, [Finding("cloud_storage", "storage_check_denied", Severity.WARNING, "acme",
                                              {"audience": "it"}, "s",
                                              {"bucket": "acme", "actions": ["s3:ListBucket"]})]
        yield "check failing", now, [Finding("agent", "check_failing", Severity.WARNING, "disk", {}, "s",
                                             {"check_name": "disk"})]


CASES = list(cases())


# ---------------------------------------------------------------- what the facts allow


def allowed(h: Humanizer, finding: Finding, now: float, interval: float) -> set[str]:
    """Every number the humanizer can make from the finding's facts, their sums and differences (a
    template may say "€11 over budget" from projected_bill - budget), and its forecast."""
    texts: list[str] = [h.duration(interval)]
    values = list(_numbers(finding.facts))
    top = [float(v) for v in finding.facts.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    derived = [a + b for a in top for b in top] + [a - b for a in top for b in top]  # e.g. over budget
    for value in values:
        texts += [h.bytes(value), h.percent(value), h.number(value), h.number(value, 1), h.number(value, 2),
                  h.duration(value), h.money(value, "EUR"), h.frequency(value), h.number(value * 100)]
    texts += [text for value in derived for text in (h.bytes(value), h.money(value, "EUR"))]
    for key in ("month_start", "month_end"):
        if key in finding.facts:
            texts.append(str(h.local(finding.facts[key] + 14 * DAY).month))
    if finding.forecast:
        f = finding.forecast
        texts += [h.span(f.earliest, f.latest), h.moment(f.eta)]
    texts += [str(v) for v in _strings(finding.facts)]  # names such as "s3:ListBucket"
    texts += ["0.01", "1", "2", "7"]  # "less than €0.01", "about 1 in N", the templates' own words for a week
    return {token for text in texts for token in NUMBER.findall(text)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)


@pytest.mark.parametrize("name,now,findings", CASES, ids=[f"{c[0]}@{int(c[1])}" for c in CASES])
def test_every_number_in_every_body_comes_from_a_fact(config, name, now, findings):
    composer = Composer(config)
    for owner_id, items in address(findings, config).items():
        owner = config.owners[owner_id]
        h = Humanizer(owner.language, ZoneInfo(owner.timezone), now)
        extra = {t for text in (h.duration(1800.0), h.duration(5400.0)) for t in NUMBER.findall(text)}
        numbers = set().union(*(allowed(h, i.finding, now, config.agent.update_interval) for i in items)) | extra
        for phase in ("opening", "update", "escalation", "resolution"):
            notice = composer.compose(owner_id, items, now, phase=phase, previous_severity="warning",
                                      escalated_after=1800.0, lasted=5400.0)
            for token in NUMBER.findall(notice.subject + "\n" + notice.body):
                assert token in numbers, f"{name}/{owner_id}/{phase}: {token!r} comes from no fact\n{notice.body}"
            assert "(and " not in notice.subject and "另有" not in notice.subject
            assert "20789" not in notice.body and not re.search(r"\bnan\b", notice.body.lower())


# ---------------------------------------------------------------- claims against their facts


def compose(config, owner: str, findings: list[Finding], now: float, **kw):
    items = address(findings, config)[owner]
    return Composer(config).compose(owner, items, now, **kw)


@pytest.mark.parametrize("owner", ["finance", "radiology"])
def test_every_disk_notice_says_by_when_whenever_a_trend_is_known(config, owner):
    for kind in ("disk_nearly_full", "disk_full", "disk_filling"):
        finding = disk(kind, MID_MONTH, 48e9, 530e9, hours=(100, 130))
        h = Humanizer(config.owners[owner].language, ZoneInfo(config.owners[owner].timezone), MID_MONTH)
        notice = compose(config, owner, [finding], MID_MONTH)
        assert h.span(finding.forecast.earliest, finding.forecast.latest) in notice.body, (kind, notice.body)
        assert h.bytes(finding.facts["gained_bytes"]) in notice.body
        assert h.bytes(finding.facts["free_bytes"]) in notice.body


def test_minutes_before_full_read_as_minutes_not_days(config):
    finding = disk("disk_filling", MID_MONTH, 5e6, 1e12, hours=(0.02, 0.03))
    notice = compose(config, "finance", [finding], MID_MONTH)
    assert notice.subject.endswith("will be full in 1 to 2 minutes"), notice.subject
    zh = compose(config, "radiology", [finding], MID_MONTH)
    assert "1 到 2 分钟后" in zh.subject, zh.subject


def test_same_day_range_says_this_afternoon_and_small_hours_belong_to_their_day():
    rome = ZoneInfo("Europe/Rome")
    h = Humanizer("en", rome, MID_MONTH)                       # 11:00 in Rome
    assert h.span(MID_MONTH + 3 * 3600, MID_MONTH + 6 * 3600) == "this afternoon"
    tuesday_0003 = MID_MONTH + 7 * DAY - 11 * 3600 + 3 * 60    # 00:03 on the next Tuesday, Rome time
    assert h.day_part(tuesday_0003) == "early Tuesday morning" or h.day_part(tuesday_0003).startswith("early on")
    assert "night" not in h.day_part(tuesday_0003)


def test_merged_notice_keeps_each_findings_offer_and_names_the_worst(config):
    findings = [storage("storage_budget_overrun", MONTH_START, 1.0, month_to_date=0.0, causes=[]),
                storage("storage_cost_growth", MONTH_START, 1.0, month_to_date=0.0)]
    notice = compose(config, "finance", findings, MONTH_START + 3600)
    assert notice.subject.startswith("The storage bill for the Report exports bucket is heading over budget")
    assert "€0.00" not in notice.body
    assert "would save about €12.00 a month" in notice.body and "Nothing is deleted until you agree" in notice.body
    assert notice.body.count("Nothing is deleted until you agree") == 1  # said once, not once per finding
    assert "runs at about" not in notice.body                           # one bill figure in the body
    assert "If it keeps growing as it did in the last week" in notice.body


def test_no_comparison_that_contradicts_the_claim(config):
    notice = compose(config, "finance", [storage("storage_cost_growth", MID_MONTH, 1.0, month_to_date=5.0,
                                                 times_usual=1.0)], MID_MONTH)
    assert "times its usual" not in notice.body


def test_what_is_being_done_is_only_what_is_certain(config):
    bare = compose(config, "finance", [disk("disk_nearly_full", MID_MONTH, 48e9, 530e9)], MID_MONTH)
    assert "IT has been told; they will decide what to do and write to you when they have." in bare.body
    assert "in time" not in bare.body and "will add space" not in bare.body
    response = compose(config, "finance", [storage("storage_cleanup_missing", MID_MONTH, 1.0, month_to_date=5.0)],
                       MID_MONTH)
    assert "IT has been told. IT moves old exports on Thursdays." in response.body
    finding = disk("disk_nearly_full", MID_MONTH, 48e9, 530e9)
    item = address([finding], config)["finance"][0]
    noted = Item(item.finding, item.resource, notes=(Note("Old archives move tonight", "ana", MID_MONTH - 3600),
                                                     Note("Moving archives to tape tonight", "ana", MID_MONTH - 600)),
                 last_fix=PastFix("moved the 2024 archives to tape", MID_MONTH - 20 * DAY, 5 * 3600))
    notice = Composer(config).compose("finance", [noted], MID_MONTH)
    assert "IT wrote this morning: “Moving archives to tape tonight”" in notice.body
    assert "Old archives move tonight" not in notice.body and "Old archives move tonight" in notice.appendix
    assert "on 28 October it was fixed like this: “moved the 2024 archives to tape”, about 5 hours" in notice.body
    assert "note by ana" in notice.appendix and "last fix" in notice.appendix


@pytest.mark.parametrize("owner,prefixes", [("finance", ("Update: ", "Escalated: ", "Resolved: ")),
                                            ("radiology", ("进展：", "升级提醒：", "已解决："))])
def test_thread_keeps_its_opening_subject_with_a_prefix_per_phase(config, owner, prefixes):
    opening = compose(config, owner, [disk("disk_filling", MID_MONTH, 88e9, 1e12, hours=(50, 75))], MID_MONTH)
    later = disk("disk_full", MID_MONTH + DAY, 1e9, 1e12)
    for phase, prefix in zip(("update", "escalation", "resolution"), prefixes):
        notice = compose(config, owner, [later], MID_MONTH + DAY, phase=phase, thread_subject=opening.subject,
                         previous_severity="warning", escalated_after=1800.0)
        assert notice.subject == prefix + opening.subject


def test_update_says_it_got_worse_and_escalation_says_why_you_are_told(config):
    full = disk("disk_full", MID_MONTH, 1e9, 1e12)
    worse = compose(config, "finance", [full], MID_MONTH, phase="update", previous_severity="warning")
    assert "This has become more urgent since our last message." in worse.body
    same = compose(config, "finance", [full], MID_MONTH, phase="update", previous_severity="critical")
    assert "more urgent" not in same.body and "less urgent" not in same.body
    escalated = compose(config, "radiology", [full], MID_MONTH, phase="escalation", escalated_after=1800.0)
    assert "此事在30 分钟内无人确认，因此也通知您。" in escalated.body


def test_resolution_appendix_says_its_values_are_those_at_resolution(config):
    notice = compose(config, "finance", [disk("disk_nearly_full", MID_MONTH, 52e6, 530e9)], MID_MONTH,
                     phase="resolution", lasted=3600.0)
    assert "values at resolution" in notice.appendix and "52 MB free" in notice.body


def test_missing_mount_is_not_called_a_hung_server(config):
    finding = Finding("disk", "disk_unresponsive", Severity.WARNING, "/srv/x", {"mount": "/srv/x"}, "s",
                      {"mount": "/srv/x", "hung": False, "missing": True})
    notices = {o: Composer(config).compose(o, items, MID_MONTH) for o, items in address([finding], config).items()}
    assert "cannot be found" in notices["finance"].subject and "not answering" not in notices["finance"].body
    assert "找不到" in notices["radiology"].subject
    assert "mount in the configuration" in notices["it"].body and "storage server" not in notices["it"].body


@pytest.mark.parametrize("locale,tz", product(("en", "zh-CN"), ("UTC", "Asia/Shanghai")))
def test_spans_are_never_absurd(locale, tz):
    h = Humanizer(locale, ZoneInfo(tz), MID_MONTH)
    for low, high in ((1, 2), (60, 61), (600, 4000), (3600, 7000), (50 * 3600, 51 * 3600), (3600, 30 * DAY)):
        text = h.span(MID_MONTH + low, MID_MONTH + high)
        assert all(int(n.replace(",", "")) < 400 for n in NUMBER.findall(text) if "." not in n), text


def test_parts_that_say_nothing_leave_no_gap(config):
    for owner in ("finance", "radiology", "it"):
        notice = compose(config, owner, [disk("disk_nearly_full", MID_MONTH, 48e9, 530e9)], MID_MONTH)
        assert "  " not in notice.body, notice.body

