"""Every database finding reads as a plain-language notice in English and Chinese: which report, how much
slower than usual and since when, the month-end close, and nothing of the query's data."""

from datetime import datetime, timezone

import pytest

from agent.api import Finding, Severity
from agent.composer import Composer, address
from agent.config import parse_config
from agent.registry import default_registry

JARGON = ("p99", "latency", "threshold", "sequential", "index", "pg_stat", "query id", "seq scan")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc).timestamp()  # a Tuesday, the first day of the month
MATCH = {"check": "database", "target": "finance-db", "query": "report:month-end"}
CONFIG = {
    "owners": {
        "finance": {"department": "Finance", "address_as": "Mr. Santino", "language": "en",
                    "timezone": "Europe/Rome"},
        "finance_cn": {"department": "财务部", "address_as": "王主任", "language": "zh-CN",
                       "timezone": "Asia/Shanghai"},
    },
    "resources": [
        {"name": "Month-end reports", "owner": "finance", "operation": "report runs",
         "impact": "the month-end close is delayed", "match": MATCH},
        {"name": "月末报表", "owner": "finance_cn", "impact": "月末结账延误", "match": MATCH},
    ],
    "checks": {"database": {"targets": [{"name": "finance-db", "url": "postgresql://forewarn@db1/finance"}]}},
}


def slow(since: float, month_end: float, usual: float | None = 0.2) -> Finding:
    return Finding("database", "database_query_slow", Severity.WARNING, "finance-db/report:month-end",
                   {"target": "finance-db", "query": "report:month-end"}, "summary",
                   {"target": "finance-db", "query": "report:month-end", "database": "finance", "calls": 12,
                    "mean_seconds": 4.2, "usual_seconds": usual, "slow_after_seconds": 2.0, "slow_share": 0.25,
                    "period_seconds": 60.0, "since": since, "month_end": month_end, "tables": ["public.ledger"],
                    "index": "CREATE INDEX CONCURRENTLY ledger_account_id_idx ON public.ledger (account_id);"},
                   {"query": "/* report:month-end */ SELECT sum(amount) FROM ledger WHERE account_id = $1"})


def setup(kind: str, facts: dict) -> Finding:
    return Finding("database", kind, Severity.WARNING, "finance-db", {"audience": "it", "setup_target": "finance-db"},
                   "summary", {"target": "finance-db", "database": "finance", **facts}, {})


@pytest.fixture(scope="module")
def config():
    return parse_config(CONFIG, "cfg.yaml", default_registry())


def notices(config, finding, now=NOW):
    composer = Composer(config)
    return {owner: composer.compose(owner, items, now) for owner, items in address([finding], config).items()}


def test_slow_report_says_how_much_slower_since_when_and_the_month_end_close(config):
    sent = notices(config, slow(NOW - 26 * 3600, datetime(2026, 12, 31, 12, tzinfo=timezone.utc).timestamp()))
    assert set(sent) == {"finance", "finance_cn", "it"}
    en, zh = sent["finance"].body, sent["finance_cn"].body
    assert ("Since 30 November around 8 am, report runs of the Month-end reports have taken 4.2 seconds on average, "
            "where 0.2 seconds is usual: about 1 in 4 of the 12 runs in the last minute took longer than "
            "2.0 seconds.") in en
    assert "If it stays like this, the month-end close is delayed. The next month-end close is on 31 December, " \
           "in 30 days." in en
    assert "从11月30日下午3点左右起，月末报表的每次运行平均需要 4.2 秒（平时只需 0.2 秒）" \
        in zh
    assert "下一次月末结账在12月31日，还有 30 天。" in zh
    for body in (en, sent["finance_cn"].body):
        assert not any(word in body.lower() for word in JARGON), body
    assert "agent suggest index finance-db report:month-end" in sent["it"].body


def test_a_report_slow_only_in_this_period_says_no_since_and_on_the_last_day_the_close_is_today(config):
    last_day = datetime(2027, 1, 31, 8, tzinfo=timezone.utc).timestamp()
    sent = notices(config, slow(last_day - 60, datetime(2027, 1, 31, 12, tzinfo=timezone.utc).timestamp(), None),
                   now=last_day)
    assert sent["finance"].body.split("\n\n")[1].startswith(
        "Report runs of the Month-end reports have taken 4.2 seconds on average: about 1 in 4 of the 12 runs")
    assert "The month-end close is today." in sent["finance"].body
    assert "今天就是月末结账日。" in sent["finance_cn"].body


@pytest.mark.parametrize("finding, words", [
    (setup("database_permission_missing", {"role": "forewarn", "grant": "GRANT pg_monitor TO forewarn;"}),
     "GRANT pg_monitor TO forewarn;"),
    (setup("database_stats_missing", {"reason": "the pg_stat_statements extension is not installed in database "
                                                "finance"}), "CREATE EXTENSION pg_stat_statements;"),
])
def test_setup_problems_go_to_it_only_and_say_the_fix(config, finding, words):
    sent = notices(config, finding)
    assert list(sent) == ["it"] and words in sent["it"].body
    assert "The departments have not been told about this." in sent["it"].body
