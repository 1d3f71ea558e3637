"""The database check's pure logic: periods from two readings, which statements are a report, the texts that
may leave the database, the month-end date, the evidence lines and the index proposal."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from agent.api import Invalid

from checks.database.causes import ServerState, TableStats, describe_server, full_reads, scans, suggest_index
from checks.database.check import DatabaseCheck
from checks.database.config import DatabaseConfig
from checks.database.stats import (Statement, Totals, filter_columns, month_end, period, select, shorten, since,
                                   tables, totals)

TAGGED = Statement(11, "/* report:month-end */ SELECT sum(amount) FROM ledger WHERE account_id = $1", 10, 2.0, 0.1, 10)
OTHER = Statement(22, "SELECT * FROM accounts WHERE id = $1", 100, 0.1, 0.0, 100)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_a_period_is_the_difference_of_two_readings_never_the_totals():
    before = Totals(0, 1000, 10.0, 0.2, 5000)  # a year of 10 ms runs
    after = Totals(60, 1010, 15.0, 0.2 + 10 * 0.5 ** 2, 5050)  # then ten runs of half a second
    seen = period(before, after)
    assert seen.calls == 10 and seen.mean == pytest.approx(0.5) and seen.spread == pytest.approx(0, abs=1e-6)
    assert seen.seconds == 60 and seen.rows == 50


def test_no_period_without_an_earlier_reading_new_runs_or_after_a_statistics_reset():
    reading = Totals(60, 10, 1.0, 0.1, 10)
    assert period(None, reading) is None
    assert period(reading, Totals(120, 10, 1.0, 0.1, 10)) is None
    assert period(reading, Totals(120, 3, 0.3, 0.03, 3)) is None  # pg_stat_statements_reset()


def test_squares_come_back_from_each_statements_mean_and_spread():
    reading = totals([Statement(1, "x", 4, 2.0, 0.1, 4)], 0)  # mean 0.5, stddev 0.1
    assert reading.squares == pytest.approx(4 * (0.1 ** 2 + 0.5 ** 2))


def test_slow_share_is_an_estimate_from_mean_and_spread():
    seen = period(Totals(0, 0, 0, 0, 0), Totals(60, 100, 10.0, 100 * (0.1 ** 2 + 0.1 ** 2), 0))  # mean 0.1, sd 0.1
    assert seen.slow_share(0.1) == pytest.approx(0.5)
    assert seen.slow_share(0.3) == pytest.approx(0.0228, abs=1e-3)
    steady = period(Totals(0, 0, 0, 0, 0), Totals(60, 10, 5.0, 10 * 0.25, 0))
    assert steady.slow_share(0.1) == 1.0 and steady.slow_share(1.0) == 0.0


def test_a_resource_names_its_report_by_tag_then_application_then_query_id():
    statements = [TAGGED, OTHER]
    assert select(statements, "report:month-end", ()) == [TAGGED]
    assert select(statements, "report:month", ()) == []  # a tag matches whole, not as a prefix
    assert select(statements, "ledger-app", {22}) == [OTHER]
    assert select(statements, "22", ()) == [OTHER]


def test_texts_leave_the_database_without_literal_values_and_short():
    text = "SELECT * FROM t WHERE name = 'Maria Rossi' AND iban = 'IT60 X054' AND n > 42 AND t2.x = $1"
    assert shorten(text) == "SELECT * FROM t WHERE name = ? AND iban = ? AND n > ? AND t2.x = $1"
    assert len(shorten("SELECT " + "a, " * 200 + "b FROM t")) == 160


def test_tables_and_filter_columns_are_read_from_the_normalised_text():
    text = ('/* r */ SELECT 1 FROM public.ledger l JOIN "Accounts" a ON a.id = l.account_id '
            "WHERE l.account_id = $1 AND booked BETWEEN $2 AND $3 AND kind IN ($4, $5)")
    assert tables(text) == ["public.ledger", "Accounts"]
    assert filter_columns(text) == ["account_id", "booked", "kind"]


@pytest.mark.parametrize("now, close", [
    ("2026-12-01T09:00:00", "2026-12-31T12:00:00"),  # the first day of a month: its own end, not the last one's
    ("2027-01-31T23:00:00", "2027-01-31T12:00:00"),  # on the last day it is today
    ("2027-02-10T00:00:00", "2027-02-28T12:00:00"),
    ("2028-02-10T00:00:00", "2028-02-29T12:00:00"),
])
def test_month_end_is_the_last_day_of_the_current_month(now, close):
    assert month_end(ts(now)) == ts(close)


def test_slow_since_the_start_of_the_last_stretch_above_the_floor():
    means = [(0, 0.01), (60, 0.5), (120, 0.02), (180, 0.4), (240, 0.3)]
    assert since(means, 0.1, 300) == 180
    assert since([(0, 0.01)], 0.1, 300) == 300


def table(rows: int, seq: int = 0, read: int = 0) -> TableStats:
    return TableStats("public", "ledger", rows, 0, seq, read, 0, rows * 75, None)


def test_only_large_tables_read_in_full_count_as_a_cause():
    big, small = scans(table(3_000_000, 20, 60_000_000), table(3_000_000, 5, 15_000_000), (0, 20_000), 60), \
        scans(TableStats("public", "codes", 50, 0, 100, 5000, 0, 8192, None), None, None, 60)
    assert big.seq_scans == 15 and big.seq_rows_read == 45_000_000 and big.grown == 2_980_000
    assert full_reads([small, big], 100_000) == [big]
    assert full_reads([scans(table(3_000_000, 5, 1), table(3_000_000, 5, 1), None, 60)], 100_000) == []


def test_index_proposal_on_the_filter_columns_the_table_has_unless_one_leads_with_them():
    widths = {"id": 8, "account_id": 4, "booked": 4, "amount": 32}
    proposal = suggest_index(table(3_000_000), ["account_id", "l"], widths, ["id"])
    assert proposal.statement == "CREATE INDEX CONCURRENTLY ledger_account_id_idx ON public.ledger (account_id);"
    assert 60e6 < proposal.size_bytes < 75e6 and "account_id" in proposal.why
    assert suggest_index(table(3_000_000), ["account_id"], widths, ["id", "account_id"]) is None
    assert suggest_index(table(3_000_000), ["nope"], widths, []) is None


def test_server_evidence_names_what_is_unusual_only_when_it_is():
    calm = ServerState(5, 100, 0, 0, 0.0, None)
    busy = ServerState(95, 100, 3, 2, 4000.0, 12.5)
    assert describe_server(calm, 300) == ("5 of 100 connections in use, no lock waits, no transaction open longer "
                                          "than 5m, no replication")
    assert "3 lock waits" in describe_server(busy, 300) and "oldest 1h6m" in describe_server(busy, 300)
    assert "replication 12.5 s behind" in describe_server(busy, 300)


@pytest.mark.parametrize("url, message", [
    ("postgresql://forewarn:Hunter2@db1/finance", "a password in the URL is not accepted"),
    ("mysql://db1/finance", "unsupported scheme"),
    ("postgresql://db1", "names no database"),
])
def test_bad_target_urls_are_refused_without_echoing_a_password(url, message):
    with pytest.raises(Invalid) as caught:
        DatabaseConfig.parse({"targets": [{"name": "f", "url": url}]})
    assert message in str(caught.value) and "Hunter2" not in str(caught.value)


def test_detector_base_judges_no_trend_and_leaves_warm_up_to_the_config():
    check = DatabaseCheck(DatabaseConfig.parse({"detector": {"warmup": 10}}))
    assert check.params.trend_persistence == 0 and check.params.warmup == 10
    assert math.isclose(check.params.threshold, 5.0)
