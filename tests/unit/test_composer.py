"""Notices read like NOTICE-STYLE.md: business words above, technical details below."""

import re
import time

import pytest

from agent.api import Finding, Forecast, Severity
from agent.composer import Composer, address
from agent.config import parse_config
from agent.registry import default_registry

JARGON = ("p99", "inode", "errno", "threshold", "statvfs", "ext4", "/dev/", "latency", "OOM")
NOW = 1_795_000_000.0

CONFIG = {
    "owners": {
        "finance": {"department": "Finance", "contact": "Marco Santino", "address_as": "Mr. Santino",
                    "tone": "formal", "language": "en", "timezone": "Europe/Rome"},
        "radiology": {"department": "放射科", "contact": "王磊", "address_as": "王主任", "tone": "formal",
                      "language": "zh-CN", "timezone": "Asia/Shanghai"},
    },
    "resources": [
        {"name": "Finance shared drive", "owner": "finance", "impact": "month-end closing reports can't be saved",
         "match": {"check": "disk", "mount": "/srv/finance"}},
        {"name": "影像归档盘", "owner": "radiology", "impact": "新的影像无法归档",
         "match": {"check": "disk", "mount": "/srv/pacs"}},
        {"name": "<script>alert(1)</script> drive", "owner": "finance", "match": {"check": "disk", "mount": "/x"}},
    ],
}


def disk_finding(mount, kind="disk_filling", severity=Severity.WARNING):
    facts = {"mount": mount, "used_ratio": 0.912, "used_bytes": 912e9, "free_bytes": 88e9, "size_bytes": 1e12,
             "inodes_used_ratio": 0.9, "rate_bytes_per_second": 13.4e9 / 86400, "window_seconds": 3 * 86400,
             "gained_bytes": 40e9}
    forecast = Forecast(NOW + 62 * 3600, NOW + 50 * 3600, NOW + 75 * 3600, "Theil-Sen over 3d")
    return Finding("disk", kind, severity, mount, {"mount": mount, "device": "/dev/sdb1", "fstype": "ext4"},
                   f"{mount} will be full in about 2d14h", facts,
                   {"mount": f"{mount} (ext4, /dev/sdb1)", "used": "91.2%", "rule": "forecast full within 72h"},
                   forecast if kind == "disk_filling" else None)


@pytest.fixture(scope="module")
def config():
    return parse_config(CONFIG, "test.yaml", default_registry())


def notices_for(config, findings):
    composer = Composer(config)
    return {owner: composer.compose(owner, items, NOW) for owner, items in address(findings, config).items()}


def test_english_formal_owner_is_greeted_by_address_as_and_hears_the_forecast_range(config):
    notice = notices_for(config, [disk_finding("/srv/finance")])["finance"]
    assert notice.body.startswith("Dear Mr. Santino,")
    assert "The Finance shared drive is filling up" in notice.body
    assert "month-end closing reports can't be saved" in notice.body
    assert "it will be full between " in notice.body  # 50-75 hours: a range, not a point
    assert notice.subject.startswith("Finance shared drive will be full")


def test_chinese_owner_gets_a_chinese_notice(config):
    notice = notices_for(config, [disk_finding("/srv/pacs")])["radiology"]
    assert notice.body.startswith("王主任您好：")
    assert "影像归档盘" in notice.body and "新的影像无法归档" in notice.body
    assert len(re.findall(r"[\u4e00-\u9fff]", notice.body)) > 40
    assert notice.locale == "zh-CN"


def test_no_jargon_above_the_appendix_and_the_details_below_it(config):
    for kind in ("disk_filling", "disk_full", "disk_nearly_full", "inodes_running_out", "disk_unresponsive"):
        for notice in notices_for(config, [disk_finding("/srv/finance", kind), disk_finding("/srv/pacs", kind)]).values():
            for word in JARGON:
                assert word not in notice.body, (kind, notice.owner, word)
            assert "/dev/sdb1" in notice.appendix


def test_it_hears_about_every_finding_and_business_owners_only_about_theirs(config):
    notices = notices_for(config, [disk_finding("/srv/finance"), disk_finding("/srv/pacs"), disk_finding("/")])
    assert set(notices) == {"finance", "radiology", "it"}
    assert len(notices["it"].findings) == 3
    assert [f.resource for f in notices["finance"].findings] == ["/srv/finance"]


def test_several_findings_for_one_owner_become_one_notice_led_by_the_worst(config):
    findings = [disk_finding("/srv/finance"), disk_finding("/srv/finance", "disk_full", Severity.CRITICAL)]
    notice = notices_for(config, findings)["finance"]
    assert notice.severity == Severity.CRITICAL
    assert notice.subject == "Finance shared drive is full"  # the one that matters most, never "(and 1 more)"
    assert "update within 20 minutes" in notice.body


def test_html_escapes_what_comes_from_config(config):
    notice = notices_for(config, [disk_finding("/x")])["finance"]
    assert "<script>alert(1)</script>" in notice.body  # plain text stays as written
    assert "<script>" not in notice.html and "&lt;script&gt;" in notice.html


def test_unmatched_finding_names_the_server_not_the_device(config):
    notice = notices_for(config, [disk_finding("/")])["it"]
    assert "main disk of server" in notice.body
    assert notice.body.startswith("Hi IT team,")


def test_resolution_says_how_long_it_lasted(config):
    composer = Composer(config)
    [item] = address([disk_finding("/srv/finance")], config)["finance"]
    notice = composer.compose("finance", [item], NOW, phase="resolution", lasted=2 * 3600)
    assert notice.subject.startswith("Resolved: ")
    assert "lasted about 2 hours" in notice.body


def test_every_kind_has_an_english_and_a_chinese_template():
    from importlib.resources import files

    def kinds(locale):
        return {p.name for p in files("templates").joinpath(locale).iterdir() if p.name.endswith(".txt.j2")}

    assert kinds("en") == kinds("zh-CN")
    assert {"disk_filling.txt.j2", "cache_latency_spikes.txt.j2", "storage_cost_growth.txt.j2",
            "check_failing.txt.j2"} <= kinds("en")
