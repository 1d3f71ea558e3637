"""The cloud storage scenario on the first days of a month (issue 12.8), in a module of its own: its
moto server must not reset the one the mid-month module's tests still read."""

from typing import Iterator

import pytest

from tests.integration.servers import MotoServer
from tests.integration.test_cloud_storage import cloudwatch_scenario, euros, findings_of, monthly_euros, notice_for

MONTH_STARTS = (1796119200.0, 1796205600.0)  # 1 and 2 December 2026, 10:00 UTC: the month's first days


@pytest.fixture(scope="module", params=MONTH_STARTS, ids=("1st", "2nd"))
def month_start_run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
                    ) -> Iterator[tuple[dict, MotoServer]]:
    """The same scenario on the first days of a month, when little or nothing of the month is spent."""
    yield from cloudwatch_scenario(tmp_path_factory, request.param)


def test_month_start_notice_keeps_every_part_and_names_no_empty_spend(
        month_start_run: tuple[dict, MotoServer]) -> None:
    """Issue 12.8: on the 1st and 2nd, a budget overrun merged with cost growth keeps the cleanup offer and its
    saving, says nothing of "€0.00 already spent", and its subject names what matters, never "(and 1 more)"."""
    document, _ = month_start_run
    notice = notice_for(document, "finance")
    found = findings_of(document, "acme-reports")
    assert {"storage_cost_growth", "storage_budget_overrun"} <= set(found), sorted(found)
    facts = found["storage_budget_overrun"]["facts"]
    body = notice["body"]
    assert "€0.00" not in body, body
    assert "more)" not in notice["subject"], notice["subject"]
    assert notice["subject"].startswith("The storage bill for the Report exports bucket is heading over budget"), \
        notice["subject"]
    assert monthly_euros(facts["saving"]) in body and "Nothing is deleted until you agree" in body, body
    assert euros(facts["projected_bill"]) in body and euros(facts["budget"]) in body, body
    if facts["month_to_date"] >= 0.01:
        assert euros(facts["month_to_date"]) in body, body
