"""Money, not bytes: list prices per class and region, config overrides, the owner's currency."""

import pytest
from agent.api import Invalid

from checks.cloud_storage.prices import GB, PRICES_AS_OF, PriceBook, class_of_listing, class_of_usage_type
from checks.cloud_storage.check import CloudStorageConfig


def test_a_terabyte_of_standard_costs_the_list_price():
    assert PriceBook.for_region("us-east-1").usd_per_month(1024 * GB, "STANDARD") == pytest.approx(23.552)


def test_overrides_and_exchange_rate_apply():
    book = PriceBook.for_region("eu-central-1", {"standard": 0.02}, currency="CNY", usd_rate=7.0)
    assert book.usd_per_month(100 * GB, "STANDARD") == pytest.approx(2.0)
    assert book.money(2.0) == pytest.approx(14.0)
    assert book.usd_per_month(100 * GB, "STANDARD_IA") == pytest.approx(1.35)


def test_unknown_region_falls_back_and_says_so():
    book = PriceBook.for_region("mars-north-1")
    assert book.usd_per_month(GB, "STANDARD") == pytest.approx(0.023)
    assert "no table for mars-north-1" in book.source and PRICES_AS_OF in book.source


def test_usage_types_and_listing_classes_map_to_priced_classes():
    assert class_of_usage_type("USE1-TimedStorage-SIA-ByteHrs") == "STANDARD_IA"
    assert class_of_usage_type("TimedStorage-ByteHrs") == "STANDARD"
    assert class_of_usage_type("EUC1-Requests-Tier1") == "OTHER"
    assert class_of_listing(None) == "STANDARD" and class_of_listing("GLACIER") == "GLACIER"


def test_config_needs_an_exchange_rate_for_other_currencies():
    with pytest.raises(Invalid, match="usd_rate"):
        CloudStorageConfig(currency="EUR")
    assert CloudStorageConfig(currency="eur", usd_rate=0.9).currency == "EUR"


def test_config_refuses_unknown_storage_classes_and_sources():
    with pytest.raises(Invalid, match="unknown storage class"):
        CloudStorageConfig(prices={"GOLD": 1.0})
    with pytest.raises(Invalid):
        CloudStorageConfig(source="ftp")


def test_config_defaults_look_every_six_hours():
    config = CloudStorageConfig()
    assert config.interval == 6 * 3600 and config.source == "cloudwatch" and config.growth_warning == 0.5
