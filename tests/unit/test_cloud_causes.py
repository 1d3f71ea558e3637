"""Why a bucket grows, and the lifecycle rules that would stop it."""

import pytest

from checks.cloud_storage.causes import (DEFAULT_TEMP_PATTERNS, Findings, InventoryBuilder, Lifecycle, Usage, causes,
                                 lifecycle_configuration, prefix_of, temp_location)
from checks.cloud_storage.prices import GB, PriceBook

NOW = 1_800_000_000.0
DAY = 86400.0
PRICES = PriceBook.for_region("us-east-1")


def inventory(objects, depth=1):
    builder = InventoryBuilder(DEFAULT_TEMP_PATTERNS, depth, NOW, 7)
    for key, size, age_days in objects:
        builder.add(key, size, "STANDARD", NOW - age_days * DAY)
    return builder.build(False)


def test_temporary_folders_and_names_are_recognised_at_any_depth():
    assert temp_location("reports/tmp/a.csv", DEFAULT_TEMP_PATTERNS) == "reports/tmp/"
    assert temp_location("Cache/x", DEFAULT_TEMP_PATTERNS) == "Cache/"
    assert temp_location("exports/big.zip.part", DEFAULT_TEMP_PATTERNS) == "exports/*.part"
    assert temp_location("reports/final/tmp.csv", DEFAULT_TEMP_PATTERNS) is None
    assert temp_location("reports/temperature/a.csv", DEFAULT_TEMP_PATTERNS) is None


def test_prefix_of_stops_at_the_configured_depth():
    assert prefix_of("a/b/c.txt", 1) == "a/"
    assert prefix_of("a/b/c.txt", 2) == "a/b/"
    assert prefix_of("top.txt", 2) == ""


def test_temp_files_without_expiry_are_the_main_cause_with_their_share():
    found = Findings(Lifecycle(()), inventory([("reports/tmp/a", 3 * GB, 1), ("reports/final/b", 1 * GB, 2),
                                               ("reports/old/c", 5 * GB, 90)]))
    result = causes(found, PRICES)
    assert [(c.kind, c.where) for c in result] == [("temp_files", "reports/tmp/"), ("growing_prefix", "reports/")]
    temp = result[0]
    assert temp.share == pytest.approx(0.75) and temp.fix == "expire"
    assert temp.monthly_cost == pytest.approx(3 * 0.023)  # what the files cost beats a share of a small rise
    assert result[1].saving == 0.0  # new business data is named, never proposed for deletion


def test_temp_prefix_already_expired_by_a_rule_is_not_a_cause():
    rules = Lifecycle(({"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "reports/"},
                        "Expiration": {"Days": 3}},))
    found = Findings(rules, inventory([("reports/tmp/a", GB, 1)]))
    assert [c.kind for c in causes(found, PRICES)] == []


def test_rules_that_select_by_tag_or_are_disabled_do_not_count():
    rules = Lifecycle((
        {"ID": "t", "Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Expiration": {"Days": 1}},
        {"ID": "d", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}))
    assert not rules.expires("tmp/") and not rules.aborts_uploads()


def test_unfinished_uploads_and_old_versions_are_causes_unless_a_rule_handles_them():
    found = Findings(Lifecycle(()), None, uploads=Usage(2 * GB, 2 * GB, 3), versioning="Enabled",
                     noncurrent=Usage(6 * GB, 2 * GB, 40))
    kinds = {c.kind: c for c in causes(found, PRICES, added_bytes=8 * GB)}
    assert kinds["incomplete_uploads"].share == pytest.approx(0.25)
    assert kinds["old_versions"].saving == pytest.approx(6 * 0.023)  # what its 6 GB cost a month, never a share of the rise
    handled = Lifecycle(({"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""},
                          "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                          "NoncurrentVersionExpiration": {"NoncurrentDays": 30}},))
    assert causes(Findings(handled, None, uploads=found.uploads, versioning="Enabled",
                           noncurrent=found.noncurrent), PRICES) == ()


def test_cold_standard_data_is_a_saving_by_class_not_a_share_of_growth():
    found = Findings(Lifecycle(()), inventory([("archive/a", 500 * GB, 120), ("archive/small", 1000, 120)]))
    cold = [c for c in causes(found, PRICES) if c.kind == "storage_class"]
    assert len(cold) == 1 and cold[0].bytes == 500 * GB and cold[0].share == 0.0
    assert cold[0].saving == pytest.approx(500 * (0.023 - 0.0125))


def test_lifecycle_keeps_existing_rules_and_adds_one_per_fix():
    existing = {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 90}}
    found = Findings(Lifecycle((existing,)), inventory([("data/scratch/x", GB, 1), ("exports/y.part", GB, 1)]),
                     uploads=Usage(GB, 0, 1), versioning="Enabled", noncurrent=Usage(GB, 0, 1))
    document = lifecycle_configuration(found, causes(found, PRICES), temp_days=5, abort_days=7, noncurrent_days=30)
    rules = {r["ID"]: r for r in document["Rules"]}
    assert rules["logs"] == existing
    assert rules["forewarn-expire-data-scratch"]["Filter"] == {"Prefix": "data/scratch/"}
    assert rules["forewarn-expire-data-scratch"]["Expiration"] == {"Days": 5}
    assert rules["forewarn-abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rules["forewarn-expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert len(rules) == 4  # '*.part' names cannot be selected by a lifecycle rule
