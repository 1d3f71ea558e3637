"""Cloud storage costs against a real S3/CloudWatch/Cost Explorer endpoint (moto in server mode).

The main scenario is driven through the real CLI (`agent check cloud_storage
--json`) as an operator would: a month of CloudWatch storage metrics put with
past timestamps (one bucket jumps, one grows at its usual pace, one shrinks,
one is simply too big for the budget), real objects, unfinished uploads and
old versions in the buckets, owners in English and Chinese.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from agent.api import Context
from agent.detect.bank import DetectorBank
from agent.store import Store
from checks.cloud_storage.aws import make_clients
from checks.cloud_storage.check import CloudStorageCheck, CloudStorageConfig
from tests.integration.servers import MotoServer

DAY = 86400
GB = 2**30
CLI_TIMEOUT_S = 120
NOW = 1794909600.0  # Tuesday 17 November 2026, 10:00 UTC: mid-month, so no test depends on today's date
"""The moment every run in this module believes it is (FOREWARN_NOW for the CLI, ctx.now in-process)."""
JARGON = re.compile(r"\b(threshold|p99|latency|5xx|errno|MAD|median|BucketSizeBytes|lifecycle|API)\b", re.IGNORECASE)


def agent_command() -> list[str]:
    beside = Path(sys.executable).with_name("agent")
    found = str(beside) if beside.exists() else shutil.which("agent")
    assert found, "the `agent` command is not installed (pip install -e .)"
    return [found]


def euros(amount: float) -> str:
    """How an English notice writes an amount in euros."""
    return f"€{amount:,.0f}" if amount >= 100 else f"€{amount:,.2f}"


def monthly_euros(amount: float) -> str:
    """How an English notice writes a monthly amount: tiny ones as 'less than €0.01 a month'."""
    return f"about {euros(amount)} a month" if amount >= 0.01 else "less than €0.01 a month"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for the checks run in this process (the standard boto3 chain reads them)."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)


def today(now: float = NOW) -> float:
    return (now // DAY) * DAY


def put_history(cloudwatch: Any, bucket: str, sizes: list[float], storage_type: str = "StandardStorage",
                now: float = NOW) -> None:
    """Daily BucketSizeBytes points ending yesterday, as CloudWatch publishes them (midnight UTC)."""
    start = today(now) - len(sizes) * DAY
    data = [{"MetricName": "BucketSizeBytes", "Value": size, "Unit": "Bytes",
             "Timestamp": datetime.fromtimestamp(start + i * DAY, timezone.utc),
             "Dimensions": [{"Name": "BucketName", "Value": bucket}, {"Name": "StorageType", "Value": storage_type}]}
            for i, size in enumerate(sizes)]
    cloudwatch.put_metric_data(Namespace="AWS/S3", MetricData=data)


def jump(days: int = 30, base: float = 1000 * GB, daily: float = 5 * GB, extra: float = 100 * GB,
         jump_days: int = 5) -> list[float]:
    """Steady growth, then `extra` more per day over the last `jump_days` days."""
    return [base + i * daily + max(0, i - (days - jump_days - 1)) * extra for i in range(days)]


def weekly_steady(days: int = 30, base: float = 100 * GB, now: float = NOW) -> list[float]:
    """Grows on weekdays, barely at weekends, with a little day-to-day wobble."""
    sizes, size = [], base
    start = today(now) - days * DAY
    for i in range(days):
        weekend = datetime.fromtimestamp(start + i * DAY, timezone.utc).weekday() >= 5
        size += (0.2 if weekend else 1.0) * GB + ((i * 7919) % 13 - 6) * 0.02 * GB
        sizes.append(size)
    return sizes


def put_objects(s3: Any, bucket: str, prefix: str, count: int, size: int) -> None:
    for i in range(count):
        s3.put_object(Bucket=bucket, Key=f"{prefix}{i:04d}.csv", Body=b"x" * size)


def unfinished_upload(s3: Any, bucket: str, key: str, size: int) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"u" * size)


def write_config(path: Path, state: Path, check: dict[str, Any]) -> Path:
    document = {
        "agent": {"state_dir": str(state), "hostname": "fw-test"},
        "owners": {
            "it": {"department": "IT", "contact": "On-call engineer", "address_as": "Team", "tone": "friendly"},
            "finance": {"department": "Finance", "contact": "Marco Santino", "address_as": "Mr. Santino",
                        "tone": "formal", "language": "en", "timezone": "Europe/Rome"},
            "radiology": {"department": "放射科", "contact": "王磊", "address_as": "王主任", "tone": "formal",
                          "language": "zh-CN", "timezone": "Asia/Shanghai"},
        },
        "resources": [
            {"name": "Report exports bucket", "owner": "finance", "impact": "the storage bill grows",
             "match": {"check": "cloud_storage", "bucket": "acme-reports"}},
            {"name": "影像归档存储", "owner": "radiology", "impact": "存储费用上升",
             "match": {"check": "cloud_storage", "bucket": "pacs-archive"}},
            {"name": "科室临时空间", "owner": "radiology", "impact": "存储费用上升",
             "match": {"check": "cloud_storage", "bucket": "scratch-space"}},
        ],
        "checks": {"cloud_storage": check},
    }
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def run_agent(args: list[str], env: dict[str, str], now: float = NOW) -> subprocess.CompletedProcess:
    return subprocess.run(agent_command() + args, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
                          env={**os.environ, "FOREWARN_NOW": str(now), **env})


def findings_of(document: dict, resource: str) -> dict[str, dict]:
    return {f["kind"]: f for f in document["findings"] if f["resource"] == resource}


def notice_for(document: dict, owner: str) -> dict:
    notices = [n for n in document["notices"] if n["owner"] == owner]
    assert len(notices) == 1, [n["owner"] for n in document["notices"]]
    return notices[0]


# ---------------------------------------------------------------- the CLI scenario


@pytest.fixture(scope="module")
def cloudwatch_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, MotoServer]]:
    """One `agent check cloud_storage --json` over four buckets with a month of CloudWatch history."""
    yield from cloudwatch_scenario(tmp_path_factory, NOW)


def cloudwatch_scenario(tmp_path_factory: pytest.TempPathFactory, now: float) -> Iterator[tuple[dict, MotoServer]]:
    with MotoServer(s3_today_datapoint=False) as moto:
        moto.reset()
        s3, cloudwatch = moto.client("s3"), moto.client("cloudwatch")
        buckets = ("acme-reports", "pacs-archive", "steady-logs", "shrinking-archive", "big-warehouse",
                   "scratch-space", "scratch-ruled", "even-growth")
        for bucket in buckets:
            s3.create_bucket(Bucket=bucket)
        put_objects(s3, "acme-reports", "reports/tmp/export-", 20, 50_000)
        put_objects(s3, "acme-reports", "reports/final/report-", 4, 10_000)
        unfinished_upload(s3, "acme-reports", "uploads/quarter.zip", 1_000_000)
        s3.put_bucket_versioning(Bucket="pacs-archive", VersioningConfiguration={"Status": "Enabled"})
        for _ in range(4):  # three old versions of each scan stay behind
            put_objects(s3, "pacs-archive", "scans/2026/scan-", 5, 40_000)
        put_objects(s3, "steady-logs", "logs/app-", 3, 1_000)
        for bucket in ("scratch-space", "scratch-ruled"):  # leftovers, but no growth to speak of
            put_objects(s3, bucket, "tmp/run-", 5, 2_000_000)
            put_history(cloudwatch, bucket, weekly_steady(now=now), now=now)
        s3.put_bucket_lifecycle_configuration(Bucket="scratch-ruled", LifecycleConfiguration={"Rules": [
            {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 3}},
            {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}]})
        put_history(cloudwatch, "acme-reports", jump(), now=now)
        put_history(cloudwatch, "pacs-archive", jump(base=800 * GB, daily=2 * GB, extra=60 * GB), now=now)
        put_history(cloudwatch, "steady-logs", weekly_steady(now=now), now=now)
        put_history(cloudwatch, "shrinking-archive", [300 * GB - i * 3 * GB for i in range(30)], now=now)
        put_history(cloudwatch, "even-growth",  # +2 GB every day with small noise: fast, but its usual pace
                    [40 * GB + i * 2 * GB + ((i * 7919) % 11 - 5) * 0.03 * GB for i in range(30)], now=now)
        put_history(cloudwatch, "big-warehouse", [5000 * GB + i * 0.5 * GB for i in range(30)], now=now)
        tmp = tmp_path_factory.mktemp("cloudwatch")
        config = write_config(tmp / "forewarn.yaml", tmp / "state", {
            "source": "cloudwatch", "endpoint_url": moto.endpoint_url, "region": "us-east-1",
            "buckets": list(buckets),
            "currency": "EUR", "usd_rate": 0.92, "monthly_budget": 60})
        started = time.monotonic()
        result = run_agent(["check", "cloud_storage", "-c", str(config), "--json"], moto.env(), now)
        assert "Traceback" not in result.stderr, result.stderr
        document = json.loads(result.stdout)
        document["_seconds"] = time.monotonic() - started
        document["_exit"] = result.returncode
        document["_config"] = str(config)
        yield document, moto


def test_jump_in_growth_is_found_and_explained_with_shares(cloudwatch_run: tuple[dict, MotoServer]) -> None:
    document, _ = cloudwatch_run
    growth = findings_of(document, "acme-reports")["storage_cost_growth"]
    causes = {c["kind"]: c for c in growth["facts"]["causes"]}
    assert causes["temp_files"]["where"] == "reports/tmp/"
    assert causes["temp_files"]["share"] > 0.8  # 1 MB of temporary exports against 40 kB of reports
    assert causes["temp_files"]["monthly_cost"] < 0.01  # what its 1 MB costs a month, not a share of the rise
    assert causes["incomplete_uploads"]["count"] == 1 and causes["incomplete_uploads"]["bytes"] == 1_000_000
    assert growth["facts"]["times_usual"] > 5
    assert document["_exit"] >= 1


def test_owner_reads_the_bill_in_euros_and_plain_words(cloudwatch_run: tuple[dict, MotoServer]) -> None:
    document, _ = cloudwatch_run
    notice = notice_for(document, "finance")
    body = notice["body"]
    facts = findings_of(document, "acme-reports")["storage_cost_growth"]["facts"]
    assert body.startswith("Dear Mr. Santino,")
    assert "Report exports bucket" in body
    assert euros(facts["projected_bill"]) in body  # what this month's bill will be
    assert "reports/tmp/" in body and "of the growth" in body  # why
    assert monthly_euros(facts["saving"]) in body and "Nothing is deleted until you agree" in body  # the fix
    assert not JARGON.findall(body)
    assert "$" not in body
    assert "reports/tmp/" in notice["appendix"] and "score" in notice["appendix"]


def test_chinese_owner_reads_about_old_versions_in_chinese(cloudwatch_run: tuple[dict, MotoServer]) -> None:
    document, _ = cloudwatch_run
    growth = findings_of(document, "pacs-archive")["storage_cost_growth"]
    causes = {c["kind"]: c for c in growth["facts"]["causes"]}
    assert causes["old_versions"]["count"] == 15 and causes["old_versions"]["fix"] == "expire_noncurrent"
    notice = notice_for(document, "radiology")
    assert notice["body"].startswith("王主任")
    assert "影像归档存储" in notice["body"] and "旧版本" in notice["body"] and "€" in notice["body"]
    assert "信息科" in notice["body"]
    assert "技术附录" in notice["appendix"] and "版本控制" in notice["appendix"]


def test_temporary_files_without_a_cleanup_rule_are_reported_even_without_growth(
        cloudwatch_run: tuple[dict, MotoServer]) -> None:
    document, _ = cloudwatch_run
    found = findings_of(document, "scratch-space")
    assert set(found) == {"storage_cleanup_missing"}
    causes = found["storage_cleanup_missing"]["facts"]["causes"]
    assert [(c["kind"], c["where"], c["count"], c["bytes"]) for c in causes] == [("temp_files", "tmp/", 5, 10_000_000)]
    assert "“tmp/”里无人清理的临时文件" in notice_for(document, "radiology")["body"]
    assert findings_of(document, "scratch-ruled") == {}  # the same files, expired by a rule


def test_second_run_restores_the_detectors_and_keeps_the_incidents_open(
        cloudwatch_run: tuple[dict, MotoServer]) -> None:
    """Detector state lives in the state database: the same day's second run learns nothing twice."""
    document, moto = cloudwatch_run
    result = run_agent(["check", "cloud_storage", "-c", document["_config"], "--json"], moto.env())
    again = json.loads(result.stdout)
    assert {(f["resource"], f["kind"]) for f in again["findings"]} == \
        {(f["resource"], f["kind"]) for f in document["findings"]}
    first = findings_of(document, "acme-reports")["storage_cost_growth"]["evidence"]["detector"]
    second = findings_of(again, "acme-reports")["storage_cost_growth"]["evidence"]["detector"]
    assert first.startswith("30 new day(s) learnt") and "spike episode since" in first
    assert second.startswith("no new complete day since the last run") and "spike episode since" in second


def test_bucket_growing_at_its_usual_pace_raises_nothing(cloudwatch_run: tuple[dict, MotoServer]) -> None:
    document, _ = cloudwatch_run
    assert findings_of(document, "steady-logs") == {}
    status = [r for r in document["results"] if r["resource"] == "steady-logs"]
    assert status and status[0]["status"] == "OK"


def test_bucket_growing_fast_at_its_usual_pace_raises_nothing(cloudwatch_run: tuple[dict, MotoServer]) -> None:
    """Issue 12.9: +2 GB a day all month doubles a small bill within a month, yet it is the bucket's own pace:
    no finding, so no notice saying "1 times its usual weekly rise"."""
    document, _ = cloudwatch_run
    assert findings_of(document, "even-growth") == {}
    assert not [n for n in document["notices"] if "1 times" in n["body"]]


def test_shrinking_bucket_raises_nothing(cloudwatch_run: tuple[dict, MotoServer]) -> None:
    document, _ = cloudwatch_run
    assert findings_of(document, "shrinking-archive") == {}


def test_bucket_over_budget_is_reported_in_money(cloudwatch_run: tuple[dict, MotoServer]) -> None:
    document, _ = cloudwatch_run
    found = findings_of(document, "big-warehouse")
    assert set(found) == {"storage_budget_overrun"}  # big, but growing at its usual pace
    facts = found["storage_budget_overrun"]["facts"]
    assert facts["projected_bill"] > 60 and facts["currency"] == "EUR"
    it = notice_for(document, "it")["body"]
    assert euros(facts["projected_bill"]) in it and "over budget" in it


# ------------------------------------------------------------------- denied


def test_missing_permission_goes_to_it_only_and_names_the_action(moto_without_s3_today: MotoServer,
                                                                 tmp_path: Path) -> None:
    moto = moto_without_s3_today
    s3, iam = moto.client("s3"), moto.client("iam")
    s3.create_bucket(Bucket="acme-reports")
    put_history(moto.client("cloudwatch"), "acme-reports", jump())
    iam.create_user(UserName="forewarn")
    iam.put_user_policy(UserName="forewarn", PolicyName="no-lifecycle", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetLifecycleConfiguration", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="forewarn")["AccessKey"]
    config = write_config(tmp_path / "forewarn.yaml", tmp_path / "state", {
        "endpoint_url": moto.endpoint_url, "buckets": ["acme-reports"]})
    env = {**moto.env(), "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    set_moto_auth(moto, "0")  # from now on moto checks every request against IAM
    try:
        result = run_agent(["check", "cloud_storage", "-c", str(config), "--json"], env)
    finally:
        set_moto_auth(moto, "inf")
    assert "Traceback" not in result.stderr and key["SecretAccessKey"] not in result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert result.returncode == 3
    denied = findings_of(document, "acme-reports")["storage_check_denied"]
    assert "s3:GetLifecycleConfiguration" in denied["evidence"]["refused"]
    assert [r["status"] for r in document["results"]] == ["UNKNOWN"]
    finance = notice_for(document, "finance")  # the growth still reaches the owner...
    assert "permission" not in finance["body"] and "GetLifecycle" not in finance["body"] + finance["appendix"]
    it = notice_for(document, "it")  # ...the permission only reaches IT
    assert "s3:GetLifecycleConfiguration" in it["body"] and "s3:GetLifecycleConfiguration" in it["appendix"]


def test_missing_credentials_are_not_called_a_missing_permission(fresh_moto: MotoServer, tmp_path: Path) -> None:
    """Issue 12.10: with no credentials at all, IT is told to give the agent credentials, not to grant
    cloudwatch:ListMetrics."""
    fresh_moto.client("s3").create_bucket(Bucket="acme-reports")
    config = write_config(tmp_path / "forewarn.yaml", tmp_path / "state", {
        "endpoint_url": fresh_moto.endpoint_url, "buckets": ["acme-reports"]})
    env = {k: v for k, v in {**os.environ, **fresh_moto.env()}.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1", FOREWARN_NOW=str(NOW))
    done = subprocess.run(agent_command() + ["check", "cloud_storage", "-c", str(config), "--json"],
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    it = notice_for(json.loads(done.stdout), "it")
    assert "found no credentials" in it["body"] and "no permission needs to change" in it["body"], it["body"]
    assert "Please grant" not in it["body"], it["body"]


def set_moto_auth(moto: MotoServer, count: str) -> None:
    """moto's own switch: authenticate and authorize requests after `count` free ones ('inf': never)."""
    request = urllib.request.Request(f"{moto.endpoint_url}/moto-api/reset-auth", data=count.encode(),
                                     method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).close()


def test_unreachable_endpoint_is_unknown_without_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path / "forewarn.yaml", tmp_path / "state", {
        "endpoint_url": "http://127.0.0.1:9", "buckets": ["acme-reports"]})
    result = run_agent(["check", "cloud_storage", "-c", str(config), "--json"],
                       {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "cannot reach http://127.0.0.1:9" in json.loads(result.stdout)["results"][0]["summary"]


# ------------------------------------------------------------------- suggest


def test_suggested_lifecycle_is_accepted_by_the_server(fresh_moto: MotoServer, tmp_path: Path) -> None:
    s3 = fresh_moto.client("s3")
    s3.create_bucket(Bucket="acme-reports")
    put_objects(s3, "acme-reports", "exports/scratch/part-", 3, 1_000)
    unfinished_upload(s3, "acme-reports", "exports/big.zip", 100_000)
    s3.put_bucket_versioning(Bucket="acme-reports", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket="acme-reports", LifecycleConfiguration={"Rules": [
        {"ID": "keep-logs-90-days", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 90}}]})
    config = write_config(tmp_path / "forewarn.yaml", tmp_path / "state", {
        "source": "listing", "endpoint_url": fresh_moto.endpoint_url, "buckets": ["acme-reports"]})
    result = run_agent(["suggest", "lifecycle", "acme-reports", "-c", str(config)], fresh_moto.env())
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # stdout is nothing but the configuration
    s3.put_bucket_lifecycle_configuration(Bucket="acme-reports", LifecycleConfiguration=document)
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket="acme-reports")["Rules"]}
    assert set(rules) == {"keep-logs-90-days", "forewarn-expire-exports-scratch", "forewarn-abort-incomplete-uploads",
                          "forewarn-expire-noncurrent-versions"}
    assert rules["forewarn-expire-exports-scratch"]["Filter"]["Prefix"] == "exports/scratch/"
    assert rules["forewarn-abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert "Estimated saving: about" in result.stderr and "USD per month" in result.stderr
    again = run_agent(["suggest", "lifecycle", "acme-reports", "-c", str(config)], fresh_moto.env())
    assert {r["ID"] for r in json.loads(again.stdout)["Rules"]} == set(rules) and "nothing to add" in again.stderr


# ------------------------------------------------------- listing, in-process


class Counted:
    """The check's client factory with a botocore hook counting API calls per operation."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, settings: CloudStorageConfig):
        return make_clients(settings, hooks=lambda client: client.meta.events.register(
            "before-call.*.*", self._count))

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1


def test_listing_builds_daily_history_and_finds_the_jump(fresh_moto: MotoServer, tmp_path: Path,
                                                        aws_env: None) -> None:
    """Any S3-compatible endpoint: one snapshot a day builds the history; the last week's temp files stand out.

    The detector learns a day once it is over (today's snapshot can still change) and a growth rate is
    the median rise of 7 days, so the faster pace that starts on day 24 is news on day 29's run, once
    5 days of it are learnt: two more runs than when the check judged today's snapshot by itself.
    """
    s3 = fresh_moto.client("s3")
    s3.create_bucket(Bucket="lab-results")
    config = CloudStorageConfig(source="listing", endpoint_url=fresh_moto.endpoint_url, buckets=["lab-results"],
                                growth_warning=None)
    check = CloudStorageCheck(config)
    store, bank = Store(tmp_path), DetectorBank()  # one bank for all runs, as the daemon keeps it
    try:
        start = today() - 29 * DAY + 3600
        for day in range(30):
            put_objects(s3, "lab-results", f"results/day{day:02d}-", 2, 2_000)
            if day >= 24:
                put_objects(s3, "lab-results", f"results/scratch/day{day:02d}-", 10, 4_000)
            now = start + day * DAY
            result = check.run(Context(now=lambda: now, history=store, hostname="fw-test", detectors=bank))
            store.record(result.observations)
            if day < 24:
                assert result.findings == (), (day, result.findings)
        growth = {f.kind: f for f in result.findings}["storage_cost_growth"]
        assert "detection engine" in growth.evidence["rule"]
        causes = {c["kind"]: c for c in growth.facts["causes"]}
        assert causes["temp_files"]["where"] == "results/scratch/" and causes["temp_files"]["count"] == 60
        assert len(store.series("cloud_storage_bytes", {"bucket": "lab-results", "storage_class": "STANDARD"},
                                start - DAY)) == 30
    finally:
        store.close()


def test_listing_stops_at_the_object_budget_and_says_so(fresh_moto: MotoServer, tmp_path: Path,
                                                        aws_env: None) -> None:
    s3 = fresh_moto.client("s3")
    s3.create_bucket(Bucket="lab-results")
    put_objects(s3, "lab-results", "tmp/part-", 30, 100)
    counted = Counted()
    config = CloudStorageConfig(source="listing", endpoint_url=fresh_moto.endpoint_url, buckets=["lab-results"],
                                object_budget=10)
    store = Store(tmp_path)
    try:
        result = CloudStorageCheck(config, counted).run(Context(now=lambda: NOW, history=store, hostname="fw-test"))
    finally:
        store.close()
    cleanup = {f.kind: f for f in result.findings}["storage_cleanup_missing"]
    assert "stopped at the object budget (10 objects)" in cleanup.evidence["listing"]
    assert not [o for o in result.observations if o.name == "cloud_storage_bytes"]  # a partial total is not history
    assert counted.calls["ListObjectsV2"] <= 3


# ------------------------------------------------------------- Cost Explorer


def cost_day(day: float, finance_usd: float, radiology_usd: float) -> dict:
    iso = datetime.fromtimestamp(day, timezone.utc).strftime("%Y-%m-%d")
    end = datetime.fromtimestamp(day + DAY, timezone.utc).strftime("%Y-%m-%d")
    group = lambda usage, tag, amount: {"Keys": [usage, f"department${tag}"],  # noqa: E731
                                        "Metrics": {"UnblendedCost": {"Amount": f"{amount:.4f}", "Unit": "USD"}}}
    return {"TimePeriod": {"Start": iso, "End": end}, "Estimated": False, "Groups": [
        group("USE1-TimedStorage-ByteHrs", "finance", finance_usd),
        group("USE1-Requests-Tier1", "finance", 0.05),
        group("USE1-TimedStorage-ByteHrs", "radiology", radiology_usd)]}


def test_cost_explorer_is_queried_once_and_judged_per_department(fresh_moto: MotoServer, tmp_path: Path,
                                                                aws_env: None) -> None:
    s3 = fresh_moto.client("s3")
    for bucket, department in (("acme-reports", "finance"), ("pacs-archive", "radiology")):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "department", "Value": department}]})
    put_objects(s3, "acme-reports", "reports/tmp/export-", 10, 20_000)
    first = today() - 60 * DAY
    days = [cost_day(first + i * DAY, 1.0 + 0.01 * i + (0.4 * (i - 53) if i > 53 else 0.0), 2.0 - 0.005 * i)
            for i in range(60)]
    fresh_moto.queue_cost_results([{"ResultsByTime": days}])
    counted = Counted()
    config = CloudStorageConfig(source="cost_explorer", endpoint_url=fresh_moto.endpoint_url,
                                buckets=["acme-reports", "pacs-archive"], cost_tag="department", currency="CNY",
                                usd_rate=7.1)
    check = CloudStorageCheck(config, counted)
    store = Store(tmp_path)
    try:
        result = check.run(Context(now=lambda: NOW, history=store, hostname="fw-test"))
        store.record(result.observations)
        again = check.run(Context(now=lambda: NOW, history=store, hostname="fw-test"))
    finally:
        store.close()
    assert counted.calls["GetCostAndUsage"] == 1  # the second run knew every day already
    findings = {(f.kind, f.resource): f for f in result.findings}
    growth = findings[("storage_cost_growth", "department=finance")]
    assert growth.labels == {"department": "finance"}
    assert growth.facts["currency"] == "CNY" and growth.facts["monthly_now"] > 7.1 * 30
    assert [c["where"] for c in growth.facts["causes"]][0] == "acme-reports/reports/tmp/"
    assert growth.facts["cleanup_rules"] >= 1  # issue 13.5: the ready fix is offered whatever the source
    status = next(s for s in result.statuses if s.resource == "department=finance")
    assert status.facts["monthly_now"] == growth.facts["monthly_now"]  # what a resolution is told with
    assert not [f for f in result.findings if f.resource == "department=radiology"]
    assert {(f.kind, f.resource) for f in again.findings} == set(findings)


def test_a_cost_explorer_day_fetched_before_its_data_exists_is_fetched_again(fresh_moto: MotoServer, tmp_path: Path,
                                                                            aws_env: None) -> None:
    """Issue 13.10: yesterday's costs are not there yet on the first run; a run 7 hours later fills the hole,
    and a run in the same hour as the first asks nothing again."""
    fresh_moto.client("s3").create_bucket(Bucket="acme-reports")
    first = today() - 60 * DAY
    early = [cost_day(first + i * DAY, 1.0, 2.0) for i in range(59)]  # the last day (yesterday) is missing
    late = [cost_day(first + i * DAY, 1.0, 2.0) for i in range(56, 60)]
    fresh_moto.queue_cost_results([{"ResultsByTime": early}, {"ResultsByTime": late}])
    counted = Counted()
    check = CloudStorageCheck(CloudStorageConfig(source="cost_explorer", endpoint_url=fresh_moto.endpoint_url,
                                                 buckets=["acme-reports"]), counted)
    store = Store(tmp_path)
    try:
        for at in (NOW, NOW + 600, NOW + 7 * 3600):
            store.record(check.run(Context(now=lambda: at, history=store, hostname="fw-test")).observations)
        yesterday = store.series("cloud_storage_daily_cost_usd", {"scope": "all", "storage_class": "STANDARD"},
                                 today() - DAY)
    finally:
        store.close()
    assert counted.calls["GetCostAndUsage"] == 2  # not again 10 minutes later; again 7 hours later
    assert [ts for ts, _ in yesterday] == [today() - DAY], yesterday
    assert yesterday[0][1] > 0


# ------------------------------------------------------------------ imports


def test_disk_check_never_loads_boto3(tmp_path: Path) -> None:
    config = write_config(tmp_path / "forewarn.yaml", tmp_path / "state", {"buckets": ["acme-reports"]})
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["checks"]["disk"] = {}
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    probe = ("import sys\nfrom agent.cli import main\nsys.argv = ['agent', 'check', 'disk', '-c', sys.argv[1], '--json']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('BOTO3' if 'boto3' in sys.modules or 'botocore' in sys.modules else 'CLEAN', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", probe, str(config)], capture_output=True, text=True,
                            timeout=CLI_TIMEOUT_S)
    assert result.stderr.strip().endswith("CLEAN"), result.stderr
    assert json.loads(result.stdout)["results"]
