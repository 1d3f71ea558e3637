"""Cloud storage bills: see the growth coming, say why, and propose the cleanup rule that stops it.

Every few hours, for every bucket: a daily series of what its storage costs
(from CloudWatch's S3 storage metrics, Cost Explorer, or a listing of any
S3-compatible endpoint), kept in the agent's history; whether it grows faster
than its own past, the detection engine's call on that series (one detector
per bucket or cost scope, fed each complete day once); this month's bill
projected at the current pace; and, when it grows, the reasons (temporary
files nobody expires, unfinished uploads, old versions, a growing folder) with
their share and their monthly cost. `suggest_lifecycle` turns those reasons into a lifecycle
configuration for a person to review and apply; nothing is applied here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Annotated, Any, Callable, ClassVar, Literal, Mapping

from agent.api import (CheckError, CheckResult, Context, DetectionConfig, Duration, Field, Finding, Limit, Metric,
                       Observation, Percent, ResourceStatus, Severity, Status, field_check, format_bytes, model_check)
from checks.cloud_storage import aws
from checks.cloud_storage.aws import Clients, Denied, NoSuchBucket, make_clients
from checks.cloud_storage.causes import (DEFAULT_TEMP_PATTERNS, Cause, Findings, Inventory, InventoryBuilder, Lifecycle, Usage,
                                 causes, growth_per_month, is_prefix, lifecycle_configuration, temp_location)
from checks.cloud_storage.growth import (BASE, DAY, WEEK_DAYS, Growth, MonthBill, Pace, analyse, daily, follow, month_bill,
                                 unusual)
from checks.cloud_storage.prices import CLASSES, CLOUDWATCH_TYPES, DAYS_PER_MONTH, OTHER, PriceBook, class_of_usage_type

BYTES = Metric("cloud_storage_bytes", "bytes", "Bytes stored in a bucket per storage class, one value per day.")
OBJECTS = Metric("cloud_storage_objects", "", "Objects stored in a bucket, one value per day.")
DAILY_COST = Metric("cloud_storage_daily_cost_usd", "usd",
                    "What one day of S3 costs per cost scope and storage class, from Cost Explorer.")
COST_DAYS = Metric("cloud_storage_cost_days_fetched", "seconds",
                   "When each day was last fetched from Cost Explorer (unix time; each query is billed).")
FINAL = 3 * DAY
"""Cost Explorer revises a day's costs for this long after it ends; until then the day is fetched again."""
REFETCH = 6 * 3600.0
"""A day that is not final yet is fetched again at most this often."""
PROJECTED = Metric("cloud_storage_projected_month_cost", "currency",
                   "This month's projected storage bill at the current pace, in the configured currency.")
FIXABLE = ("expire", "abort_uploads", "expire_noncurrent")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
PositiveFloat = Annotated[float, Limit(gt=0)]


class CloudStorageConfig(DetectionConfig):
    interval: Duration = 6 * 3600.0
    timeout: Duration = 900.0
    for_: Duration = Field(0.0, alias="for")
    source: Literal["cloudwatch", "cost_explorer", "listing"] = "cloudwatch"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    buckets: tuple[str, ...] = ()
    """Buckets to watch; empty means every bucket the credentials can list."""
    currency: str = "USD"
    usd_rate: PositiveFloat | None = None
    """Units of `currency` per US dollar; required when currency is not USD."""
    monthly_budget: PositiveFloat | None = None
    """Per bucket (or per cost scope), in `currency`."""
    prices: dict[str, PositiveFloat] = {}
    """Storage class -> USD per GB-month, replacing the list price."""
    growth_warning: Percent | None = 0.5
    """Warn when the bill would grow by more than this share within a month at the last week's pace."""
    temp_patterns: tuple[str, ...] = DEFAULT_TEMP_PATTERNS
    prefix_depth: int = Field(1, ge=1, le=5)
    object_budget: int = Field(200_000, ge=1)
    """Most objects listed per bucket and cycle; the appendix says when it stopped a listing."""
    retention: Duration = 60 * 86400.0
    """How much history is fetched on the first run and judged after."""
    profile: str | None = None
    role_arn: str | None = None
    cost_tag: str | None = None
    """Cost-allocation tag (e.g. department) that groups Cost Explorer costs and buckets."""
    temp_days: int = Field(7, ge=1)
    abort_days: int = Field(7, ge=1)
    noncurrent_days: int = Field(30, ge=1)

    @field_check("currency")
    def _currency(cls, name: str, value: str, data: Mapping[str, Any]) -> str:
        if not _CURRENCY.match(value.upper()):
            raise ValueError("not a currency code like USD, EUR or CNY")
        return value.upper()

    @field_check("prices")
    def _prices(cls, name: str, value: dict[str, float], data: Mapping[str, Any]) -> dict[str, float]:
        unknown = sorted(set(k.upper() for k in value) - set(CLASSES))
        if unknown:
            raise ValueError(f"unknown storage class {unknown[0]} (known: {', '.join(CLASSES)})")
        return {k.upper(): v for k, v in value.items()}

    def match_keys(self) -> tuple[str, ...]:
        return ("bucket", self.cost_tag or "scope")

    @model_check
    def _rate(self) -> None:
        if self.currency != "USD" and self.usd_rate is None:
            raise ValueError(f"usd_rate (how many {self.currency} per US dollar) is required when currency is not USD")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A lifecycle configuration for one bucket and what it would save per month."""

    bucket: str
    configuration: Mapping[str, Any]
    saving: float
    """In the configured currency."""
    currency: str
    causes: tuple[Cause, ...]
    added: tuple[str, ...]
    """IDs of the rules this suggestion adds to the bucket's own."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What one judgement is about: a bucket, or a Cost Explorer scope and its buckets."""

    name: str
    labels: Mapping[str, str]
    buckets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Assessment:
    """The bill side of one judgement, before any bucket is inspected."""

    growth: Growth | None
    bill: MonthBill | None
    pace: Pace
    growth_rules: tuple[str, ...]
    """Why the growth is news (a `storage_cost_growth` finding); empty when it is not."""
    over_budget: bool


@dataclass
class _Cycle:
    """What one run collects; only lives for the run."""

    statuses: list[ResourceStatus] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


class CloudStorageCheck:
    name: ClassVar[str] = "cloud_storage"
    Config: ClassVar[type[CloudStorageConfig]] = CloudStorageConfig
    requires: ClassVar[dict[str, str]] = {"boto3": "boto3"}  # imported when the check runs
    metrics: ClassVar[tuple[Metric, ...]] = (BYTES, OBJECTS, DAILY_COST, COST_DAYS, PROJECTED)

    def __init__(self, config: CloudStorageConfig, clients: Callable[[CloudStorageConfig], Clients] = make_clients):
        self.config = config
        self.clients = clients
        self.prices = PriceBook.for_region(config.region, config.prices, config.currency, config.usd_rate or 1.0)

    # ---------------------------------------------------------------- run

    def run(self, ctx: Context) -> CheckResult:
        cycle = _Cycle()
        clients = self.clients(self.config)  # one set of clients for the whole cycle
        try:
            self._collect(ctx, clients, ctx.now(), cycle)
        finally:
            clients.close()
        return CheckResult(self.name, tuple(cycle.statuses), tuple(cycle.observations), tuple(cycle.findings))

    def _collect(self, ctx: Context, clients: Clients, now: float, cycle: _Cycle) -> None:
        try:
            buckets = self._buckets(ctx, clients)
        except Denied as denied:
            self._denied(cycle, "*", [denied])
            return
        if self.config.source == "cost_explorer":
            self._run_costs(ctx, clients, now, buckets, cycle)
            return
        types: dict[str, list[str]] = {}
        if self.config.source == "cloudwatch" and buckets:
            try:
                types = aws.storage_types(clients.cloudwatch)  # one listing for all buckets
            except Denied as denied:
                for bucket in buckets:
                    self._denied(cycle, bucket, [denied])
                return
        for bucket in buckets:
            self._run_bucket(ctx, clients, now, bucket, types.get(bucket, []), cycle)

    def _buckets(self, ctx: Context, clients: Clients) -> list[str]:
        if self.config.buckets:
            return list(self.config.buckets)
        wanted = sorted({w["bucket"] for w in ctx.wanted if "bucket" in w})
        return wanted or aws.list_buckets(clients.s3)

    def _run_bucket(self, ctx: Context, clients: Clients, now: float, bucket: str, types: list[str],
                    cycle: _Cycle) -> None:
        denied: list[Denied] = []
        inventory = None
        fresh: list[Observation] = []
        stored = self._stored_sizes(ctx, now, bucket)
        try:
            if self.config.source == "cloudwatch":
                fresh = self._cloudwatch(clients, now, bucket, types, stored)
            else:
                inventory = self._list(clients.s3, now, bucket)
                if not inventory.truncated:  # a partial total would look like a shrinking bucket
                    day = _day(now)
                    fresh = [BYTES.observe(size, {"bucket": bucket, "storage_class": cls}, day)
                             for cls, size in inventory.by_class.items()]
                    fresh.append(OBJECTS.observe(inventory.total.count, {"bucket": bucket}, day))
        except Denied as refused:
            denied.append(refused)
        except NoSuchBucket as missing:
            cycle.statuses.append(ResourceStatus(bucket, Status.UNKNOWN, str(missing), {"bucket": bucket}))
            return
        cycle.observations += fresh
        series, sizes = self._bucket_series(stored, fresh)
        subject = Subject(bucket, {"bucket": bucket}, (bucket,))
        self._judge(ctx, clients, now, subject, series, sizes, {bucket: inventory}, denied, cycle)

    # -------------------------------------------------------------- sources

    def _cloudwatch(self, clients: Clients, now: float, bucket: str, types: list[str],
                    stored: Mapping[str, list[tuple[float, float]]]) -> list[Observation]:
        """New daily points since the last stored day (the whole retention window on a first run)."""
        since = now - self.config.retention
        last = max((ts for points in stored.values() for ts, _ in points), default=None)
        start = _day(since if last is None else max(since, last - 2 * DAY))  # whole days, as CloudWatch keeps them
        by_class: dict[tuple[str, float], float] = {}
        for storage_type in types:
            cls = CLOUDWATCH_TYPES.get(storage_type)
            if cls is None:
                continue
            for day, size in aws.daily_metric(clients.cloudwatch, bucket, "BucketSizeBytes", storage_type, start, now):
                by_class[(cls, day)] = by_class.get((cls, day), 0.0) + size
        found = [BYTES.observe(size, {"bucket": bucket, "storage_class": cls}, day)
                 for (cls, day), size in sorted(by_class.items())]
        if types:
            found += [OBJECTS.observe(count, {"bucket": bucket}, day) for day, count in
                      aws.daily_metric(clients.cloudwatch, bucket, "NumberOfObjects", "AllStorageTypes", start, now)]
        return found

    def _stored_sizes(self, ctx: Context, now: float, bucket: str) -> dict[str, list[tuple[float, float]]]:
        """Storage class -> the bucket's stored (timestamp, bytes) within the retention window."""
        since = now - self.config.retention
        return {cls: ctx.history.series(BYTES.name, {"bucket": bucket, "storage_class": cls}, since)
                for cls in CLASSES}

    def _bucket_series(self, stored: Mapping[str, list[tuple[float, float]]],
                       fresh: list[Observation]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """(day, USD per day) and (day, bytes) of a bucket, stored history and fresh points together."""
        per_class: dict[str, list[tuple[float, float]]] = {}
        for cls, history in stored.items():
            points = dict(history)
            points.update((o.timestamp, o.value) for o in fresh
                          if o.name == BYTES.name and o.labels.get("storage_class") == cls)
            if points:
                per_class[cls] = daily(sorted(points.items()))
        cost: dict[float, float] = {}
        size: dict[float, float] = {}
        for cls, points in per_class.items():
            for day, value in points:
                cost[day] = cost.get(day, 0.0) + self.prices.usd_per_month(value, cls) / DAYS_PER_MONTH
                size[day] = size.get(day, 0.0) + value
        return sorted(cost.items()), sorted(size.items())

    def _run_costs(self, ctx: Context, clients: Clients, now: float, buckets: list[str], cycle: _Cycle) -> None:
        """Cost Explorer: one query for the days not fetched yet, then one judgement per cost scope."""
        tag = self.config.cost_tag
        scopes: dict[str, list[str]] = {}
        for bucket in buckets:
            value = ""
            if tag:
                try:
                    value = aws.bucket_tags(clients.s3, bucket).get(tag, "")
                except Denied as denied:
                    self._denied(cycle, bucket, [denied])
                except NoSuchBucket:
                    continue
            scopes.setdefault(value, []).append(bucket)
        if tag:
            for wanted in ctx.wanted:
                if tag in wanted:
                    scopes.setdefault(wanted[tag], [])
        fresh: list[Observation] = []
        try:
            fresh = self._fetch_costs(ctx, clients, now)
        except Denied as denied:
            self._denied(cycle, "*", [denied])
        cycle.observations += fresh
        since = now - self.config.retention
        for value, members in sorted(scopes.items()):
            labels = self._scope_labels(value)
            cost: dict[float, float] = {}
            for cls in CLASSES + (OTHER,):
                series_labels = {**labels, "storage_class": cls}
                points = dict(ctx.history.series(DAILY_COST.name, series_labels, since))
                points.update((o.timestamp, o.value) for o in fresh
                              if o.name == DAILY_COST.name and o.labels == series_labels)
                for day, usd in points.items():
                    cost[day] = cost.get(day, 0.0) + usd
            name = f"{tag}={value or 'untagged'}" if tag else "all S3 buckets"
            self._judge(ctx, clients, now, Subject(name, labels, tuple(members)), sorted(cost.items()), [],
                        {b: None for b in members}, [], cycle)

    def _scope_labels(self, value: str) -> dict[str, str]:
        tag = self.config.cost_tag
        return {tag: value or "untagged"} if tag else {"scope": "all"}

    def _fetch_costs(self, ctx: Context, clients: Clients, now: float) -> list[Observation]:
        """Days never fetched, and days fetched before they were final (again at most every REFETCH):
        each Cost Explorer request is billed, and a day fetched before its data exists must not stay empty."""
        today = _day(now)
        marker = {"cost_tag": self.config.cost_tag or ""}
        first = _day(now - self.config.retention)
        fetched = {_day(ts): at for ts, at in ctx.history.series(COST_DAYS.name, marker, first)}
        missing = [day for day in (first + i * DAY for i in range(int((today - first) // DAY)))
                   if day not in fetched or (fetched[day] < day + DAY + FINAL and now - fetched[day] >= REFETCH)]
        if not missing:
            return []
        costs = aws.daily_costs(clients.ce, missing[0], today, self.config.cost_tag)
        summed: dict[tuple[str, str, float], float] = {}
        for (value, usage_type), days in costs.items():
            cls = class_of_usage_type(usage_type)
            for day, usd in days.items():
                summed[(value, cls, day)] = summed.get((value, cls, day), 0.0) + usd
        found = [DAILY_COST.observe(usd, {**self._scope_labels(value), "storage_class": cls}, day)
                 for (value, cls, day), usd in sorted(summed.items())]
        found += [COST_DAYS.observe(now, marker, day) for day in missing]  # the value: when it was fetched
        return found

    # ----------------------------------------------------------- inspection

    def _builder(self, now: float) -> InventoryBuilder:
        return InventoryBuilder(self.config.temp_patterns, self.config.prefix_depth, now, WEEK_DAYS)

    def _list(self, s3: Any, now: float, bucket: str) -> Inventory:
        """A listing of the whole bucket, up to the object budget, with a progress bar on a terminal."""
        builder = self._builder(now)
        budget = self.config.object_budget
        _, truncated = aws.list_objects(s3, bucket, builder, budget, progress=aws.Progress(f"listing {bucket}", budget))
        return builder.build(truncated)

    def inspect(self, clients: Clients, now: float, bucket: str, inventory: Inventory | None, deep: bool,
                denied: list[Denied]) -> tuple[Findings, bool]:
        """What a bucket holds that explains growth; the bool says whether its lifecycle rules were read."""
        s3, recent_after, budget = clients.s3, now - WEEK_DAYS * DAY, self.config.object_budget
        rules_known = True
        try:
            rules = aws.lifecycle(s3, bucket)
        except Denied as refused:
            denied.append(refused)
            rules, rules_known = Lifecycle(()), False
        status = ""
        try:
            status = aws.versioning(s3, bucket)
        except Denied as refused:
            denied.append(refused)
        pending = Usage()
        try:
            pending = aws.uploads(s3, bucket, recent_after)
        except Denied as refused:
            denied.append(refused)
        temp: dict[str, Usage] = {}
        truncated = bool(inventory and inventory.truncated)
        try:
            if inventory is None and deep:
                inventory = self._list(s3, now, bucket)
                truncated = inventory.truncated
            elif inventory is None:
                for folder in aws.folders(s3, bucket, self.config.prefix_depth):
                    location = temp_location(folder + "x", self.config.temp_patterns)
                    if location == folder and is_prefix(folder):
                        builder = self._builder(now)
                        count, cut = aws.list_objects(s3, bucket, builder, budget, prefix=folder)
                        budget -= count
                        truncated = truncated or cut
                        temp[folder] = builder.build(cut).total
                        if budget <= 0:
                            break
        except Denied as refused:
            denied.append(refused)
        old = Usage()
        if status and not (rules_known and rules.expires_noncurrent()):
            try:
                old, cut = aws.noncurrent(s3, bucket, self.config.object_budget, recent_after)
                truncated = truncated or cut
            except Denied as refused:
                denied.append(refused)
        return Findings(rules, inventory, temp, pending, status, old, truncated), rules_known

    # ------------------------------------------------------------- judging

    def _judge(self, ctx: Context, clients: Clients, now: float, subject: Subject, series: list[tuple[float, float]],
               sizes: list[tuple[float, float]], inventories: Mapping[str, Inventory | None], denied: list[Denied],
               cycle: _Cycle) -> None:
        cfg, money = self.config, self.prices.money
        judged = self.assess(ctx, subject, series, now)
        growth, bill, rules, over = judged.growth, judged.bill, judged.growth_rules, judged.over_budget
        if bill:
            cycle.observations.append(PROJECTED.observe(money(bill.projected), {**subject.labels, "currency": cfg.currency}, now))

        explained: list[Cause] = []
        found_by_bucket: dict[str, tuple[Findings, bool]] = {}
        rise = growth_per_month(growth.recent_week) if growth else 0.0
        added = max(_week_added(sizes), 0.0)
        own_bucket = subject.buckets == (subject.name,)  # causes name a bucket only when the subject has several
        for bucket in subject.buckets:
            try:
                found = self.inspect(clients, now, bucket, inventories.get(bucket), bool(rules or over), denied)
            except NoSuchBucket:
                continue
            found_by_bucket[bucket] = found
            for cause in causes(found[0], self.prices, added):
                explained.append(cause if own_bucket else replace(cause, where=f"{bucket}/{cause.where}"))
        explained.sort(key=lambda c: (-c.share, -c.monthly_cost, c.where))

        facts = self._facts(subject, growth, bill, sizes, explained)
        evidence = self._evidence(subject, judged, sizes, explained, found_by_bucket)
        labels, name = dict(subject.labels), subject.name
        findings = []
        if rules:
            findings.append(Finding(self.name, "storage_cost_growth", Severity.WARNING, name, labels,
                                    f"{name}: storage bill grows faster than usual "
                                    f"(+{_usd(rise)}/month over 7 days)", facts,
                                    {**evidence, "rule": "; ".join(rules)}))
        if over and bill:
            findings.append(Finding(self.name, "storage_budget_overrun", Severity.WARNING, name, labels,
                                    f"{name}: this month's bill projected at {money(bill.projected):,.2f} "
                                    f"{cfg.currency}, budget {cfg.monthly_budget:,.2f}",
                                    {**facts, "causes": facts["causes"] if not rules else []},
                                    {**evidence, "rule": f"projected month-end bill > monthly_budget "
                                                         f"{cfg.monthly_budget:,.2f} {cfg.currency}"}))
        fixable = [c for c in explained if c.fix in FIXABLE]
        rules_known = all(known for _, known in found_by_bucket.values())
        if not findings and fixable and rules_known:
            saving = money(sum(c.saving for c in fixable))
            findings.append(Finding(self.name, "storage_cleanup_missing",
                                    Severity.WARNING if saving >= 1.0 else Severity.INFO, name, labels,
                                    f"{name}: {len(fixable)} kind(s) of leftovers without a cleanup rule",
                                    {**facts, "causes": [self._cause_fact(c) for c in fixable]},
                                    {**evidence, "rule": "temporary files, unfinished uploads or old versions "
                                                         "without a lifecycle rule that removes them"}))
        cycle.findings += findings
        if denied:
            self._denied(cycle, name, denied)
            return
        worst = max((f.severity.status for f in findings), default=Status.OK)
        summary = (f"{money(growth.level * DAYS_PER_MONTH):,.2f} {cfg.currency}/month now, "
                   f"{money(rise):+,.2f} over 7 days" if growth else "not enough history yet (needs 2 days)")
        cycle.statuses.append(ResourceStatus(name, worst, summary, labels, facts))

    def assess(self, ctx: Context, subject: Subject, series: list[tuple[float, float]], now: float) -> Assessment:
        """Feed the subject's detector its new complete days, then judge the growth and the month's bill."""
        cfg = self.config
        # A bill stepping back up after a cleanup is news: its records span its window only (horizon 0).
        detector = ctx.detectors.get(f"{subject.name}/{cfg.source}", cfg.detector_params(BASE._replace(horizon=0)))
        pace = follow(detector, series, _day(now))
        growth = analyse(series)
        bill = month_bill(series, growth, now) if growth else None
        rules = []
        if unusual(pace, growth):
            rules.append(self._pace_rule(pace))
        if growth and cfg.growth_warning is not None and growth.recent_week > 0 \
                and growth.monthly_growth_ratio >= cfg.growth_warning and _faster_than_usual(growth):
            rules.append(f"growth at the last week's pace >= {cfg.growth_warning:.0%} per month")
        over = bool(bill and cfg.monthly_budget is not None and self.prices.money(bill.projected) > cfg.monthly_budget)
        return Assessment(growth, bill, pace, tuple(rules), over)

    def _pace_rule(self, pace: Pace) -> str:
        """The engine's reason, in the words of its parameters (as this check's sensitivity set them)."""
        params, since = pace.params, _date(pace.since)
        if pace.episode == "trend":
            seen = (f"growth rate (median daily rise of the last {params.trend_span} days) at least "
                    f"{params.trend_threshold:g} robust spreads above its own past daily growth for "
                    f"{params.trend_persistence} days, since {since}")
        else:
            what = "daily cost" if pace.episode == "spike" else f"{params.smooth}-day mean of the daily cost"
            seen = (f"{what} rose beyond all of its past days (up to {params.window}), at least {params.threshold:g} "
                    f"robust spreads above their median ({pace.episode}), and stayed up {pace.days} days, since {since}")
        return (f"{seen}; the last 7 days added more than a usual week "
                f"(detection engine, sensitivity {self.config.sensitivity})")

    def _denied(self, cycle: _Cycle, name: str, denied: list[Denied]) -> None:
        """IT only: the labels match no business resource, so no department hears about permissions.
        Missing or rejected credentials are said as such: no permission needs granting then."""
        actions = sorted({d.action for d in denied})
        problem = next((d.problem for d in denied if d.problem != "denied"), "denied")
        what = {"denied": f"missing permission {', '.join(actions)}", "no_credentials": "no AWS credentials found",
                "rejected": "the AWS credentials were rejected"}[problem]
        cycle.statuses.append(ResourceStatus(name, Status.UNKNOWN, f"not allowed: {what}", {"bucket": name}))
        rule = ("every call the check needs must be allowed (grant the actions above to the agent's role)"
                if problem == "denied" else "the agent needs valid AWS credentials (environment, profile or role)")
        cycle.findings.append(Finding(
            self.name, "storage_check_denied", Severity.WARNING, name, {"audience": "it", "denied_bucket": name},
            f"{name}: {what}", {"bucket": name, "actions": actions, "problem": problem},
            {"bucket": name, "refused": "; ".join(sorted({str(d) for d in denied})), "rule": rule}))

    # ----------------------------------------------------------- the notice

    def _cause_fact(self, cause: Cause) -> dict[str, Any]:
        return {"kind": cause.kind, "where": cause.where, "share": round(cause.share, 4),
                "monthly_cost": round(self.prices.money(cause.monthly_cost), 2),
                "saving": round(self.prices.money(cause.saving), 2), "bytes": cause.bytes, "count": cause.count,
                "fix": cause.fix}

    def _facts(self, subject: Subject, growth: Growth | None, bill: MonthBill | None,
               sizes: list[tuple[float, float]], explained: list[Cause]) -> dict[str, Any]:
        money, cfg = self.prices.money, self.config
        fixable = [c for c in explained if c.fix in FIXABLE]
        facts: dict[str, Any] = {
            "bucket": subject.name, "buckets": list(subject.buckets), "currency": cfg.currency,
            "budget": cfg.monthly_budget, "causes": [self._cause_fact(c) for c in explained],
            "saving": round(money(sum(c.saving for c in fixable)), 2),
            "cleanup_rules": len(fixable),  # leftovers `agent suggest lifecycle` has a rule for: offered in the body
            "suggest_commands": [f"agent suggest lifecycle {b}" for b in subject.buckets],
            "bytes_now": sizes[-1][1] if sizes else None,
        }
        if growth:
            usual = growth_per_month(growth.usual_week) if growth.usual_week is not None else None
            facts.update({
                "monthly_now": round(money(growth.level * DAYS_PER_MONTH), 2),
                "monthly_week_ago": round(money(growth.level_week_ago * DAYS_PER_MONTH), 2),
                "weekly_rise": round(money(growth_per_month(growth.recent_week)), 2),
                "usual_weekly_rise": round(money(usual), 2) if usual is not None else None,
                "times_usual": round(growth.recent_week / growth.usual_week, 1)
                if growth.usual_week and growth.usual_week > 0 else None,
                "monthly_growth_ratio": round(growth.monthly_growth_ratio, 4),
            })
        if bill:
            facts.update({"projected_bill": round(money(bill.projected), 2),
                          "next_month_bill": round(money(bill.next_month), 2),
                          "month_to_date": round(money(bill.month_to_date), 2), "month_start": bill.month_start,
                          "month_end": bill.month_end})
        return facts

    def _evidence(self, subject: Subject, judged: Assessment, sizes: list[tuple[float, float]],
                  explained: list[Cause], found: Mapping[str, tuple[Findings, bool]]) -> dict[str, str]:
        cfg, growth, bill = self.config, judged.growth, judged.bill
        where = f"source {cfg.source}, region {cfg.region}" + (f", endpoint {cfg.endpoint_url}" if cfg.endpoint_url else "")
        evidence = {"bucket": f"{subject.name} ({where})"}
        if sizes:
            evidence["size"] = (f"{format_bytes(sizes[-1][1])} now, {_signed_bytes(_week_added(sizes))} "
                                f"over the last {min(WEEK_DAYS, len(sizes) - 1)} days ({len(sizes)} days of history)")
        if growth:
            usual = "n/a (history too short)" if growth.usual_week is None else \
                (f"{_usd(growth_per_month(growth.usual_week))}/month per week "
                 f"(median of {growth.baseline_weeks} earlier 7-day windows)")
            evidence["cost"] = (f"{_usd(growth.level * DAYS_PER_MONTH)}/month now, "
                                f"{_usd(growth.level_week_ago * DAYS_PER_MONTH)}/month 7 days ago; usual weekly rise {usual}")
        evidence["detector"] = self._detector_evidence(judged.pace)
        if bill:
            evidence["bill"] = (f"month to date {_usd(bill.month_to_date)}, projected {_usd(bill.projected)}, "
                                f"next month {_usd(bill.next_month)}"
                                + (f" = {self.prices.money(bill.projected):,.2f} {cfg.currency} at {cfg.usd_rate} per USD"
                                   if cfg.currency != "USD" else "")
                                + (f" (budget {cfg.monthly_budget:,.2f} {cfg.currency})" if cfg.monthly_budget else ""))
        if explained:
            evidence["causes"] = "; ".join(
                f"{c.kind} {c.where or '(whole bucket)'}: {format_bytes(c.bytes)} in {c.count:,}, "
                f"{c.share:.0%} of growth, {_usd(c.monthly_cost)}/month" for c in explained)
        for bucket, (bucket_found, rules_known) in found.items():
            prefix = "" if len(found) == 1 else f"{bucket} "
            rules = bucket_found.lifecycle.rules
            evidence[f"{prefix}lifecycle".strip()] = (
                "not readable" if not rules_known else
                ", ".join(f"{r.get('ID', '?')} ({r.get('Status')}: {', '.join(k for k in r if k not in ('ID', 'Status', 'Filter', 'Prefix'))})"
                          for r in rules) or "no rules")
            evidence[f"{prefix}versioning".strip()] = bucket_found.versioning or "never enabled"
            if bucket_found.listing_truncated:
                evidence[f"{prefix}listing".strip()] = (f"stopped at the object budget ({cfg.object_budget:,} objects): "
                                                        "shares are of the listed part only")
            elif bucket_found.inventory:
                evidence[f"{prefix}listing".strip()] = f"{bucket_found.inventory.total.count:,} objects listed"
        evidence["prices"] = self.prices.source
        evidence["fix"] = "; ".join(f"agent suggest lifecycle {b}" for b in subject.buckets) + \
            " (prints the rules; review, then apply with aws s3api put-bucket-lifecycle-configuration)"
        return evidence

    def _detector_evidence(self, pace: Pace) -> str:
        """What the detection engine saw, for the next engineer."""
        newest, params = pace.newest, pace.params
        seen = "no new complete day since the last run"
        if newest:
            seen = f"{pace.fed} new day(s) learnt, the newest scored {newest.score:.2f}" + \
                (f" ({newest.kind})" if newest.kind else "")
        usual = "no day learnt yet"
        if pace.usual is not None:
            usual = f"usual daily cost {_usd(pace.usual)} (median of up to {params.window} days learnt)"
        episode = f"{pace.episode} episode since {_date(pace.since)}" if pace.episode else "no open episode"
        return (f"{seen}; {episode}; {usual}; sensitivity {self.config.sensitivity}, "
                f"warm-up {params.warmup} days")

    # ------------------------------------------------------------ suggest

    def suggest_lifecycle(self, bucket: str, ctx: Context) -> Suggestion:
        """The lifecycle configuration that fixes what a fresh look at `bucket` finds; never applied."""
        now = ctx.now()
        clients = self.clients(self.config)
        try:
            denied: list[Denied] = []
            found, rules_known = self.inspect(clients, now, bucket, None, True, denied)
        finally:
            clients.close()
        if denied or not rules_known:
            reasons = ", ".join(sorted({d.reason for d in denied} - {"not allowed"}))
            actions = ", ".join(sorted({d.action for d in denied}))
            raise CheckError(f"{bucket}: cannot inspect the bucket, " +
                             (reasons if reasons else f"missing permission {actions}"))
        added = 0.0
        if self.config.source != "cost_explorer":  # the stored size history says how much was added
            _, sizes = self._bucket_series(self._stored_sizes(ctx, now, bucket), [])
            added = _week_added(sizes)
        reasons = tuple(c for c in causes(found, self.prices, max(added, 0.0)) if c.fix in FIXABLE)
        document = lifecycle_configuration(found, reasons, temp_days=self.config.temp_days,
                                           abort_days=self.config.abort_days,
                                           noncurrent_days=self.config.noncurrent_days)
        saving = self.prices.money(sum(c.saving for c in reasons))
        existing = {rule.get("ID") for rule in found.lifecycle.rules}
        new_rules = tuple(rule["ID"] for rule in document["Rules"] if rule.get("ID") not in existing)
        return Suggestion(bucket, document, saving, self.config.currency, reasons, new_rules)


FASTER = 1.5
"""A week that adds less than this many usual weeks is the bucket's own pace, however fast (README)."""


def _faster_than_usual(growth: Growth) -> bool:
    return growth.usual_week is None or growth.usual_week <= 0 or growth.recent_week >= FASTER * growth.usual_week


def _day(ts: float) -> float:
    return (ts // DAY) * DAY


def _date(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d") if ts is not None else "?"


def _week_added(sizes: list[tuple[float, float]]) -> float:
    """Bytes added over the last 7 days of a daily size series (fewer when the history is shorter)."""
    return sizes[-1][1] - sizes[max(0, len(sizes) - 1 - WEEK_DAYS)][1] if len(sizes) > 1 else 0.0


def _usd(amount: float) -> str:
    return f"USD {amount:,.2f}"


def _signed_bytes(value: float) -> str:
    return ("+" if value >= 0 else "-") + format_bytes(abs(value))
