"""Why a bucket grows, and the lifecycle rules that would stop it — from what a bucket holds.

Pure logic: the facts come in as plain data (what a listing found, the bucket's
lifecycle rules, its unfinished uploads and old versions) and go out as causes,
each with its share of the recent growth and what it costs per month, and as
a lifecycle configuration in the shape PutBucketLifecycleConfiguration takes.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from checks.cloud_storage.prices import DAYS_PER_MONTH, STANDARD, PriceBook

DEFAULT_TEMP_PATTERNS = ("tmp/", "temp/", "cache/", "scratch/", "*.tmp", "*.part")
IA_MIN_OBJECT = 128 * 1024
"""Smaller objects are billed as 128 KB in Standard-IA: moving them saves nothing."""
COLD_AFTER_DAYS = 30
MIN_SHARE = 0.05
"""A growing prefix is named as a cause only if it brought at least this share of the growth."""
MAX_GROWING_PREFIXES = 3
MAX_RULES = 50
RULE_ID = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Usage:
    """Bytes held, bytes added within the recent window, and how many items."""

    bytes: float = 0.0
    recent: float = 0.0
    count: int = 0

    def plus(self, size: float, recent: bool) -> "Usage":
        return Usage(self.bytes + size, self.recent + (size if recent else 0.0), self.count + 1)


@dataclass(frozen=True, slots=True)
class Inventory:
    """What a listing of a bucket found (up to its object budget)."""

    by_class: Mapping[str, float] = field(default_factory=dict)
    by_prefix: Mapping[str, Usage] = field(default_factory=dict)
    """Prefixes at the configured depth, temporary-looking objects excluded."""
    temp: Mapping[str, Usage] = field(default_factory=dict)
    """Temporary-looking prefix (or 'folder/*.tmp' pattern) -> what it holds."""
    cold_standard: float = 0.0
    """Standard bytes in objects of 128 KB or more untouched for 30 days or more."""
    total: Usage = Usage()
    truncated: bool = False


class InventoryBuilder:
    """Adds listed objects one by one; `build()` returns the frozen Inventory."""

    def __init__(self, temp_patterns: Iterable[str], prefix_depth: int, now: float, window_days: float):
        self.patterns = tuple(temp_patterns)
        self.depth = prefix_depth
        self.recent_after = now - window_days * 86400.0
        self.cold_before = now - COLD_AFTER_DAYS * 86400.0
        self.by_class: dict[str, float] = {}
        self.by_prefix: dict[str, Usage] = {}
        self.temp: dict[str, Usage] = {}
        self.cold_standard = 0.0
        self.total = Usage()

    def add(self, key: str, size: float, storage_class: str, modified: float) -> None:
        recent = modified >= self.recent_after
        self.total = self.total.plus(size, recent)
        self.by_class[storage_class] = self.by_class.get(storage_class, 0.0) + size
        temp = temp_location(key, self.patterns)
        if temp is not None:
            self.temp[temp] = self.temp.get(temp, Usage()).plus(size, recent)
            return
        prefix = prefix_of(key, self.depth)
        self.by_prefix[prefix] = self.by_prefix.get(prefix, Usage()).plus(size, recent)
        if storage_class == STANDARD and size >= IA_MIN_OBJECT and modified < self.cold_before:
            self.cold_standard += size

    def build(self, truncated: bool) -> Inventory:
        return Inventory(dict(self.by_class), dict(self.by_prefix), dict(self.temp), self.cold_standard,
                         self.total, truncated)


def prefix_of(key: str, depth: int) -> str:
    """'a/b/c.txt' at depth 1 -> 'a/'; a key with fewer folders -> its folder ('' at the top)."""
    parts = key.split("/")[:-1][:depth]
    return "".join(part + "/" for part in parts)


def temp_location(key: str, patterns: Iterable[str]) -> str | None:
    """Where a temporary-looking key lives: 'reports/tmp/' for a folder, 'exports/*.part' for a name."""
    parts = key.split("/")
    for pattern in patterns:
        if pattern.endswith("/"):
            wanted = pattern[:-1].lower()
            for index, part in enumerate(parts[:-1]):
                if fnmatch.fnmatchcase(part.lower(), wanted):
                    return "/".join(parts[: index + 1]) + "/"
        elif fnmatch.fnmatchcase(parts[-1].lower(), pattern.lower()):
            return "/".join(parts[:-1] + [pattern]) if len(parts) > 1 else pattern
    return None


def is_prefix(location: str) -> bool:
    """Lifecycle rules select by prefix: a folder can be expired, a '*.tmp' name pattern cannot."""
    return location.endswith("/") and "*" not in location


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A bucket's lifecycle rules as GetBucketLifecycleConfiguration returns them."""

    rules: tuple[Mapping[str, Any], ...] = ()

    def _active(self, prefix: str) -> list[Mapping[str, Any]]:
        return [r for r in self.rules if r.get("Status") == "Enabled" and _covers(r, prefix)]

    def expires(self, prefix: str) -> bool:
        return any("Expiration" in r for r in self._active(prefix))

    def aborts_uploads(self) -> bool:
        return any("AbortIncompleteMultipartUpload" in r for r in self._active(""))

    def expires_noncurrent(self) -> bool:
        return any("NoncurrentVersionExpiration" in r for r in self._active(""))


def _covers(rule: Mapping[str, Any], prefix: str) -> bool:
    """A rule applies to every key under `prefix` (rules that select by tag or size do not count)."""
    selector = rule.get("Filter")
    if selector is None:
        return prefix.startswith(rule.get("Prefix") or "")
    if "And" in selector:
        selector = selector["And"]
    if any(key in selector for key in ("Tag", "Tags", "ObjectSizeGreaterThan", "ObjectSizeLessThan")):
        return False
    return prefix.startswith(selector.get("Prefix") or "")


@dataclass(frozen=True, slots=True)
class Findings:
    """Everything one inspection of a bucket found, as input to `causes()`."""

    lifecycle: Lifecycle
    inventory: Inventory | None = None
    temp: Mapping[str, Usage] = field(default_factory=dict)
    """Temporary-looking locations sized without a full listing (when `inventory` is None)."""
    uploads: Usage = Usage()
    versioning: str = ""
    """'Enabled', 'Suspended' or '' (never enabled)."""
    noncurrent: Usage = Usage()
    listing_truncated: bool = False


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason for the growth; money in USD per month."""

    kind: str
    """temp_files | incomplete_uploads | old_versions | growing_prefix | storage_class"""
    where: str
    bytes: float
    count: int
    share: float
    """Of the bytes added within the recent window, 0..1."""
    monthly_cost: float
    saving: float
    """What the suggested fix would save per month; 0 when no lifecycle rule can fix it."""
    fix: str
    """expire | abort_uploads | expire_noncurrent | transition | '' (nothing automatic)."""


def causes(found: Findings, prices: PriceBook, added_bytes: float = 0.0) -> tuple[Cause, ...]:
    """The reasons, largest share of the growth first.

    `added_bytes`: the bytes added recently by the size history, used for the shares when there
    was no full listing. A cause's cost is what its bytes cost a month now, never a share of the rise.
    """
    temp = found.inventory.temp if found.inventory else found.temp
    raw: list[tuple[str, str, Usage, str]] = []
    for where, usage in temp.items():
        if not (is_prefix(where) and found.lifecycle.expires(where)):
            raw.append(("temp_files", where, usage, "expire" if is_prefix(where) else ""))
    if found.uploads.count and not found.lifecycle.aborts_uploads():
        raw.append(("incomplete_uploads", "", found.uploads, "abort_uploads"))
    if found.versioning and found.noncurrent.count and not found.lifecycle.expires_noncurrent():
        raw.append(("old_versions", "", found.noncurrent, "expire_noncurrent"))
    if found.inventory:
        growing = sorted(found.inventory.by_prefix.items(), key=lambda item: -item[1].recent)
        raw += [("growing_prefix", where, usage, "") for where, usage in growing[:MAX_GROWING_PREFIXES]]
    added = added_bytes
    if found.inventory:
        added = found.inventory.total.recent + found.uploads.recent + found.noncurrent.recent
    result = []
    for kind, where, usage, fix in raw:
        share = min(1.0, usage.recent / added) if added > 0 else 0.0
        if kind == "growing_prefix" and share < MIN_SHARE:
            continue
        cost = prices.usd_per_month(usage.bytes, STANDARD)  # what these bytes cost a month now, by the price list
        result.append(Cause(kind, where, usage.bytes, usage.count, share, cost, cost if fix else 0.0, fix))
    if found.inventory and found.inventory.cold_standard:
        cold = found.inventory.cold_standard
        saving = prices.usd_per_month(cold, STANDARD) - prices.usd_per_month(cold, "STANDARD_IA")
        if saving >= 1.0:
            result.append(Cause("storage_class", "", cold, 0, 0.0, prices.usd_per_month(cold, STANDARD), saving,
                                "transition"))
    return tuple(sorted(result, key=lambda c: (-c.share, -c.monthly_cost, c.where)))


def growth_per_month(recent_week_usd_per_day: float) -> float:
    """How much a month's bill rose over the last week, from the change of a day's cost."""
    return recent_week_usd_per_day * DAYS_PER_MONTH


def lifecycle_configuration(found: Findings, found_causes: Iterable[Cause], *, temp_days: int,
                            abort_days: int, noncurrent_days: int) -> dict[str, list[dict[str, Any]]]:
    """The bucket's rules plus the ones that fix the causes: the whole document, since a put replaces all."""
    rules: list[dict[str, Any]] = [_clean(rule) for rule in found.lifecycle.rules]
    taken = {rule.get("ID") for rule in rules}

    def add(rule_id: str, rule: dict[str, Any]) -> None:
        rule_id = RULE_ID.sub("-", rule_id)[:255]
        if rule_id not in taken and len(rules) < MAX_RULES:
            taken.add(rule_id)
            rules.append({"ID": rule_id, "Status": "Enabled", **rule})

    for cause in found_causes:
        if cause.fix == "expire":
            add(f"forewarn-expire-{cause.where.strip('/')}", {"Filter": {"Prefix": cause.where},
                                                              "Expiration": {"Days": temp_days}})
    if not found.lifecycle.aborts_uploads():
        add("forewarn-abort-incomplete-uploads",
            {"Filter": {"Prefix": ""}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort_days}})
    if found.versioning and not found.lifecycle.expires_noncurrent():
        add("forewarn-expire-noncurrent-versions",
            {"Filter": {"Prefix": ""}, "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days}})
    return {"Rules": rules}


def _clean(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A rule as read back, minus empty values a put would refuse."""
    return {key: value for key, value in rule.items() if value not in (None, [], {}) or key == "Filter"}
