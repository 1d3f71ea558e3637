"""The one place that talks to AWS or an S3-compatible server.

`make_clients` is the single factory of boto3 clients (credentials from the
standard chain, a named profile, or an assumed role); every call below takes
the client it needs, so tests and benchmarks point them at a local endpoint.
A refused permission becomes `Denied` naming the IAM action to grant. boto3
is imported inside the functions: `agent check` on disks never loads it.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Protocol

from agent.api import CheckError
from checks.cloud_storage.causes import InventoryBuilder, Lifecycle, Usage
from checks.cloud_storage.prices import class_of_listing

DAY = 86400.0
MAX_UPLOADS = 200
"""Unfinished uploads whose parts are sized; beyond that they are counted, not sized."""
IAM_ACTIONS = {
    "ListBuckets": "s3:ListAllMyBuckets",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListParts": "s3:ListMultipartUploadParts",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "GetBucketTagging": "s3:GetBucketTagging",
    "ListMetrics": "cloudwatch:ListMetrics",
    "GetMetricStatistics": "cloudwatch:GetMetricStatistics",
    "GetCostAndUsage": "ce:GetCostAndUsage",
    "AssumeRole": "sts:AssumeRole",
}
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
                          "Forbidden", "403", "AllAccessDisabled"})
CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "InvalidClientTokenId", "SignatureDoesNotMatch",
                              "ExpiredToken", "UnrecognizedClientException", "InvalidToken"})
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
"""At debug level botocore logs response bodies, which for AssumeRole hold temporary secrets."""


class Denied(Exception):
    """The credentials may not perform `operation`; `action` is the IAM permission to grant.

    `problem` says what is wrong, so that IT is not told to grant a permission when the credentials
    themselves are missing or rejected: "denied", "no_credentials" or "rejected".
    """

    def __init__(self, operation: str, reason: str = "not allowed", problem: str = "denied"):
        self.operation = operation
        self.action = IAM_ACTIONS.get(operation, operation)
        self.reason = reason
        self.problem = problem
        super().__init__(f"{self.action} ({operation}): {reason}")


class NoSuchBucket(CheckError):
    """The bucket does not exist (or is in another account)."""


class Settings(Protocol):
    endpoint_url: str | None
    region: str
    profile: str | None
    role_arn: str | None


@dataclass(frozen=True, slots=True)
class Clients:
    s3: Any
    cloudwatch: Any
    ce: Any

    def close(self) -> None:
        for client in (self.s3, self.cloudwatch, self.ce):
            client.close()


def make_clients(settings: Settings, hooks: Callable[[Any], None] | None = None) -> Clients:
    """All boto3 clients of one check cycle; `hooks(client)` may register botocore event handlers."""
    import boto3
    from botocore.config import Config

    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))
    session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
    options = {"endpoint_url": settings.endpoint_url, "region_name": settings.region,
               "config": Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10,
                                read_timeout=60)}
    if settings.role_arn:
        sts = session.client("sts", **options)
        try:
            answer = call(sts, "AssumeRole", RoleArn=settings.role_arn, RoleSessionName="forewarn-cloud-storage")
        finally:
            sts.close()
        secret = answer["Credentials"]
        session = boto3.Session(aws_access_key_id=secret["AccessKeyId"], aws_secret_access_key=secret["SecretAccessKey"],
                                aws_session_token=secret["SessionToken"], region_name=settings.region)
    clients = Clients(session.client("s3", **options), session.client("cloudwatch", **options),
                      session.client("ce", **options))
    if hooks:
        for client in (clients.s3, clients.cloudwatch, clients.ce):
            hooks(client)
    return clients


# -------------------------------------------------------------------- calls


def call(client: Any, operation: str, **params: Any) -> dict:
    """One API call; refusals become Denied, unreachable endpoints CheckError."""
    method = getattr(client, _snake(operation))
    with _translated(client, operation):
        return method(**params)


def pages(client: Any, operation: str, **params: Any) -> Iterator[dict]:
    """Every page of a paginated call, with the same translation of errors."""
    paginator = client.get_paginator(_snake(operation))
    with _translated(client, operation):
        yield from paginator.paginate(**params)


class _translated:
    def __init__(self, client: Any, operation: str):
        self.client, self.operation = client, operation

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            return False
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in CREDENTIAL_CODES:
                raise Denied(self.operation, "the credentials were rejected", "rejected") from None
            if code in DENIED_CODES or status == 403:
                raise Denied(self.operation) from None
            if code == "NoSuchBucket":
                raise NoSuchBucket("the bucket does not exist") from None
            raise CheckError(f"{self.operation} failed: {code or status}") from None
        if isinstance(exc, NoCredentialsError):
            raise Denied(self.operation, "no credentials found (environment, profile or instance role)",
                         "no_credentials") from None
        if isinstance(exc, BotoCoreError):
            where = self.client.meta.endpoint_url
            raise CheckError(f"cannot reach {where} for {self.operation}: {exc.__class__.__name__}") from None
        return False


def _snake(operation: str) -> str:
    out = ""
    for index, char in enumerate(operation):
        if char.isupper() and index and (not operation[index - 1].isupper() or
                                         (index + 1 < len(operation) and operation[index + 1].islower())):
            out += "_"
        out += char.lower()
    return out


def _ts(moment: Any) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def _iso_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")


# ---------------------------------------------------------------- S3 facts


def list_buckets(s3: Any) -> list[str]:
    return sorted(b["Name"] for b in call(s3, "ListBuckets").get("Buckets", []))


def _call_unless_absent(client: Any, operation: str, absent: str, **params: Any) -> dict | None:
    """Like `call`, but None when S3 answers `absent`: the bucket simply has none of what was asked."""
    from botocore.exceptions import ClientError

    with _translated(client, operation):  # every other failure, missing credentials included, as in `call`
        try:
            return getattr(client, _snake(operation))(**params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == absent:
                return None
            raise


def bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    answer = _call_unless_absent(s3, "GetBucketTagging", "NoSuchTagSet", Bucket=bucket) or {}
    return {t["Key"]: t["Value"] for t in answer.get("TagSet", [])}


def lifecycle(s3: Any, bucket: str) -> Lifecycle:
    answer = _call_unless_absent(s3, "GetBucketLifecycleConfiguration", "NoSuchLifecycleConfiguration",
                                 Bucket=bucket) or {}
    return Lifecycle(tuple(answer.get("Rules", [])))


def versioning(s3: Any, bucket: str) -> str:
    return call(s3, "GetBucketVersioning", Bucket=bucket).get("Status", "")


def uploads(s3: Any, bucket: str, recent_after: float) -> Usage:
    """Unfinished multipart uploads: the bytes their parts hold (the first MAX_UPLOADS sized)."""
    found = Usage()
    for page in pages(s3, "ListMultipartUploads", Bucket=bucket):
        for upload in page.get("Uploads", []):
            size = 0.0
            if found.count < MAX_UPLOADS:
                for parts in pages(s3, "ListParts", Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]):
                    size += sum(p.get("Size", 0) for p in parts.get("Parts", []))
            found = found.plus(size, _ts(upload["Initiated"]) >= recent_after)
    return found


def noncurrent(s3: Any, bucket: str, budget: int, recent_after: float) -> tuple[Usage, bool]:
    """Old versions kept by versioning; True when the budget stopped the listing."""
    found, seen = Usage(), 0
    for page in pages(s3, "ListObjectVersions", Bucket=bucket):
        for version in page.get("Versions", []):
            seen += 1
            if not version.get("IsLatest"):
                found = found.plus(version.get("Size", 0), _ts(version["LastModified"]) >= recent_after)
        if seen >= budget and page.get("IsTruncated"):
            return found, True
    return found, False


def folders(s3: Any, bucket: str, depth: int, limit: int = 1000) -> list[str]:
    """Folder prefixes down to `depth` levels, without listing objects (at most `limit` of them)."""
    found: list[str] = []
    level = [""]
    for _ in range(depth):
        below: list[str] = []
        for prefix in level:
            for page in pages(s3, "ListObjectsV2", Bucket=bucket, Prefix=prefix, Delimiter="/"):
                below += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
                if len(found) + len(below) >= limit:
                    break
        found += below
        level = below
        if len(found) >= limit:
            break
    return found[:limit]


class Progress:
    """A bar on stderr while a listing runs, only when a person is watching a terminal."""

    def __init__(self, label: str, budget: int, stream: Any = None):
        self.stream = stream or sys.stderr
        self.label, self.budget = label, budget
        self.shown = self.stream.isatty()

    def update(self, count: int) -> None:
        if self.shown:
            done = min(1.0, count / self.budget) if self.budget else 1.0
            bar = "#" * int(done * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {count:,} objects (budget {self.budget:,})")
            self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def list_objects(s3: Any, bucket: str, builder: InventoryBuilder, budget: int, prefix: str = "",
                 progress: Progress | None = None) -> tuple[int, bool]:
    """Feeds every object under `prefix` to `builder`; stops at `budget` objects (True: stopped early)."""
    count = 0
    try:
        for page in pages(s3, "ListObjectsV2", Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": max(1, min(1000, budget))}):
            for item in page.get("Contents", []):
                builder.add(item["Key"], float(item.get("Size", 0)), class_of_listing(item.get("StorageClass")),
                            _ts(item["LastModified"]))
            count += page.get("KeyCount", len(page.get("Contents", [])))
            if progress:
                progress.update(count)
            if count >= budget and page.get("IsTruncated"):
                return count, True
    finally:
        if progress:
            progress.close()
    return count, False


# ------------------------------------------------------------- CloudWatch


def storage_types(cloudwatch: Any) -> dict[str, list[str]]:
    """Bucket -> the StorageTypes CloudWatch has BucketSizeBytes for (one listing for all buckets)."""
    found: dict[str, list[str]] = {}
    for page in pages(cloudwatch, "ListMetrics", Namespace="AWS/S3", MetricName="BucketSizeBytes"):
        for metric in page.get("Metrics", []):
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            if "BucketName" in dims and "StorageType" in dims:
                found.setdefault(dims["BucketName"], []).append(dims["StorageType"])
    return {bucket: sorted(set(types)) for bucket, types in found.items()}


def daily_metric(cloudwatch: Any, bucket: str, metric: str, storage_type: str, since: float,
                 until: float) -> list[tuple[float, float]]:
    """One S3 storage metric, one point per day (CloudWatch keeps them 15 months)."""
    answer = call(cloudwatch, "GetMetricStatistics", Namespace="AWS/S3", MetricName=metric,
                  Dimensions=[{"Name": "BucketName", "Value": bucket}, {"Name": "StorageType", "Value": storage_type}],
                  StartTime=datetime.fromtimestamp(since, timezone.utc),
                  EndTime=datetime.fromtimestamp(until, timezone.utc), Period=86400, Statistics=["Average"])
    points = {int(_ts(p["Timestamp"]) // DAY) * DAY: float(p["Average"]) for p in answer.get("Datapoints", [])}
    return sorted(points.items())


# ---------------------------------------------------------- Cost Explorer

S3_SERVICE = "Amazon Simple Storage Service"


def daily_costs(ce: Any, first_day: float, end_day: float, tag: str | None) -> dict[tuple[str, str], dict[float, float]]:
    """(tag value or '', usage type) -> {day: USD} for [first_day, end_day), all pages of one query."""
    group_by = [{"Type": "DIMENSION", "Key": "USAGE_TYPE"}] + ([{"Type": "TAG", "Key": tag}] if tag else [])
    params: dict[str, Any] = {
        "TimePeriod": {"Start": _iso_day(first_day), "End": _iso_day(end_day)}, "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"], "GroupBy": group_by,
        "Filter": {"Dimensions": {"Key": "SERVICE", "Values": [S3_SERVICE]}},
    }
    found: dict[tuple[str, str], dict[float, float]] = {}
    while True:
        answer = call(ce, "GetCostAndUsage", **params)
        for period in answer.get("ResultsByTime", []):
            day = datetime.strptime(period["TimePeriod"]["Start"], "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
            for group in period.get("Groups", []):
                keys = group.get("Keys", [])
                value = keys[1].split("$", 1)[-1] if len(keys) > 1 else ""
                amount = float(group.get("Metrics", {}).get("UnblendedCost", {}).get("Amount", 0.0))
                cell = found.setdefault((value, keys[0] if keys else ""), {})
                cell[day] = cell.get(day, 0.0) + amount
        token = answer.get("NextPageToken")
        if not token:
            return found
        params["NextPageToken"] = token
