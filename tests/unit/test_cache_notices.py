"""Every cache finding reads as a plain-language notice in English and Chinese, with no jargon."""

import re

import pytest

from agent.api import Finding, Severity
from agent.composer import Composer, address
from agent.config import parse_config
from agent.registry import default_registry

JARGON = r"\b(p99|p95|latency|threshold|median|evict\w*|slowlog|redis|memcached|OOM)\b"
FACTS = {
    "cache_latency_spikes": {"probes": 400, "slow_probes": 10, "slow_share": 0.025, "slow_after_seconds": 0.5,
                             "median_seconds": 0.0003, "worst_seconds": 2.1, "span_seconds": 1800,
                             "usual_median_seconds": None},
    "cache_slow": {"probes": 400, "slow_probes": 300, "slow_share": 0.75, "slow_after_seconds": 0.1,
                   "median_seconds": 0.4, "worst_seconds": 2.0, "span_seconds": 30,
                   "usual_median_seconds": 0.0004},
    "cache_unreachable": {"probes": 20},
    "cache_hit_ratio_drop": {"hit_ratio": 0.55, "usual_hit_ratio": 0.95, "lookups": 5000},
    "cache_evictions_surge": {"evicted": 6000, "period_seconds": 60, "per_minute": 6000,
                              "usual_per_minute": 10, "hit_ratio": 0.7},
    "cache_memory_near_limit": {"memory_ratio": 0.97, "used_bytes": 970e6, "limit_bytes": 1e9, "evicts": False},
    "cache_fragmentation_high": {"fragmentation": 2.0, "wasted_bytes": 2e9, "used_bytes": 2e9},
}
CONFIG = {
    "owners": {
        "radiology": {"department": "放射科", "address_as": "王主任", "language": "zh-CN", "timezone": "Asia/Shanghai"},
        "clinic": {"department": "Clinic", "address_as": "Dr. Reyes", "language": "en"},
    },
    "resources": [
        {"name": "影像缓存", "owner": "radiology", "operation": "影像调阅", "impact": "医生调阅影像变慢",
         "match": {"check": "cache", "target": "pacs-cache"}},
        {"name": "PACS cache", "owner": "clinic", "operation": "image loads",
         "impact": "doctors wait for their images", "match": {"check": "cache", "target": "pacs-cache"}},
    ],
    "checks": {"cache": {"targets": [{"name": "pacs-cache", "url": "redis://10.1.2.3:6379/0"}]}},
}


def finding(kind):
    severity = Severity.CRITICAL if kind == "cache_unreachable" else Severity.WARNING
    return Finding("cache", kind, severity, "pacs-cache", {"target": "pacs-cache"}, "summary",
                   {"target": "pacs-cache", "kind": "redis", **FACTS[kind]}, {"endpoint": "pacs-cache"})


@pytest.fixture(scope="module")
def config():
    return parse_config(CONFIG, "cfg.yaml", default_registry())


@pytest.mark.parametrize("kind", sorted(FACTS))
def test_each_cache_kind_is_told_in_both_languages_without_jargon(config, kind):
    composer = Composer(config)
    notices = {owner: composer.compose(owner, items, 1_700_000_000.0)
               for owner, items in address([finding(kind)], config).items()}
    assert set(notices) == {"radiology", "clinic", "it"}
    for notice in notices.values():
        assert notice.subject and notice.body
        assert not re.search(JARGON, notice.body, re.IGNORECASE), notice.body
        resolved = composer.compose(notice.owner, address([finding(kind)], config)[notice.owner], 1_700_000_000.0,
                                    phase="resolution")
        assert resolved.body
    assert "王主任" in notices["radiology"].body and "影像缓存" in notices["radiology"].body
    assert "Dr. Reyes" in notices["clinic"].body and "PACS cache" in notices["clinic"].body


def test_intermittent_slowness_is_told_as_a_frequency(config):
    composer = Composer(config)
    items = address([finding("cache_latency_spikes")], config)
    english = composer.compose("clinic", items["clinic"], 1_700_000_000.0).body
    chinese = composer.compose("radiology", items["radiology"], 1_700_000_000.0).body
    assert "about 1 in 40 image loads from the PACS cache waited more than half a second" in english
    assert "In the last 30 minutes" in english
    assert "大约每 40 次中有 1 次需要等待半秒以上" in chinese
    assert "最近 30 分钟内" in chinese
