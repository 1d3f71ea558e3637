"""Cost of the cloud storage check: listing throughput and API calls per cycle.

1. Listing throughput on one bucket of N objects (default 100,000 empty
   objects) on a moto S3 server running in its own process: the check's
   `listing` source (paginated ListObjectsV2, aggregation per storage class and
   prefix) against `aws s3 ls --recursive --summarize` on the same bucket, in
   the same run, each timed over the same listing.
2. API calls of one `cloudwatch` cycle for 1, 5 and 20 buckets, each bucket
   with a month of CloudWatch history, at two object counts per bucket; counted
   with a botocore `before-call` hook: calls follow buckets, not objects.

Usage: python bench/cloud_listing.py [--objects 100000]
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agent.api import Context  # noqa: E402
from agent.store import Store  # noqa: E402
from checks.cloud_storage.aws import make_clients  # noqa: E402
from checks.cloud_storage.check import CloudStorageCheck, CloudStorageConfig  # noqa: E402

HOST = "127.0.0.1"
DAY = 86400
READY_TIMEOUT_S = 30
CREATE_TIMEOUT_S = 900
LIST_TIMEOUT_S = 600
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


SERVER = """
import sys
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("READY", flush=True)
for line in sys.stdin:  # fill BUCKET COUNT PREFIXES: objects straight into the backend, no HTTP
    _, bucket, count, prefixes = line.split()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for i in range(int(count)):
        backend.put_object(bucket, f"data/p{i % int(prefixes):03d}/obj-{i:07d}", b"")
    print("DONE", flush=True)
server.stop()
"""


class Moto:
    """moto's server in its own process, so the client under test does not share its interpreter.

    Objects are seeded straight into moto's backend in that process (a put over HTTP
    runs at about 110 a second here, so 100,000 would take a quarter of an hour);
    every measured call goes over HTTP.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-c", SERVER, str(self.port)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if self._answer(READY_TIMEOUT_S) != "READY":
            self.stop()
            raise SystemExit("the moto server did not start")

    def _answer(self, timeout: float) -> str:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline().strip() if ready else ""

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def fill(self, bucket: str, count: int, prefixes: int = 50) -> float:
        """Creates the bucket over HTTP and `count` empty objects in it; returns the seconds taken."""
        started = time.monotonic()
        self.client("s3").create_bucket(Bucket=bucket)
        self.process.stdin.write(f"fill {bucket} {count} {prefixes}\n")
        self.process.stdin.flush()
        if self._answer(CREATE_TIMEOUT_S) != "DONE":
            raise SystemExit(f"seeding {bucket} did not finish within {CREATE_TIMEOUT_S}s")
        return time.monotonic() - started

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=30).close()

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def time_check_listing(moto: Moto, bucket: str, budget: int) -> tuple[float, int]:
    config = CloudStorageConfig(source="listing", endpoint_url=moto.url, buckets=[bucket], object_budget=budget,
                                timeout=LIST_TIMEOUT_S)
    with tempfile.TemporaryDirectory() as state:
        store = Store(Path(state))
        try:
            started = time.monotonic()
            result = CloudStorageCheck(config).run(Context(now=time.time, history=store, hostname="bench"))
            seconds = time.monotonic() - started
        finally:
            store.close()
    objects = next(o.value for o in result.observations if o.name == "cloud_storage_objects")
    return seconds, int(objects)


def time_aws_cli(moto: Moto, bucket: str) -> tuple[float, int]:
    aws = shutil.which("aws")
    if not aws:
        raise SystemExit("aws (awscli) not found")
    started = time.monotonic()
    done = subprocess.run([aws, "s3", "ls", f"s3://{bucket}", "--recursive", "--summarize", "--endpoint-url", moto.url],
                          capture_output=True, text=True, timeout=LIST_TIMEOUT_S, env={**os.environ, **CREDENTIALS})
    seconds = time.monotonic() - started
    if done.returncode:
        raise SystemExit(f"aws s3 ls failed: {done.stderr.strip()[:300]}")
    total = next(int(line.split(":")[1]) for line in done.stdout.splitlines() if "Total Objects" in line)
    return seconds, total


class Counter:
    """The check's client factory, counting every API call by operation."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, settings: CloudStorageConfig) -> Any:
        return make_clients(settings, hooks=lambda client: client.meta.events.register("before-call.*.*", self._count))

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def take(self) -> dict[str, int]:
        calls, self.calls = self.calls, {}
        return calls


def seed_buckets(moto: Moto, count: int, objects: int) -> list[str]:
    cloudwatch = moto.client("cloudwatch")
    today = (time.time() // DAY) * DAY
    names = [f"bench-{i:02d}" for i in range(count)]
    for name in names:
        moto.fill(name, objects, prefixes=5)
        cloudwatch.put_metric_data(Namespace="AWS/S3", MetricData=[
            {"MetricName": "BucketSizeBytes", "Value": 1e11 + day * 1e9, "Unit": "Bytes",
             "Timestamp": datetime.fromtimestamp(today - (30 - day) * DAY, timezone.utc),
             "Dimensions": [{"Name": "BucketName", "Value": name}, {"Name": "StorageType", "Value": "StandardStorage"}]}
            for day in range(30)])
    return names


def count_cycles(moto: Moto, names: list[str]) -> tuple[int, int, dict[str, int]]:
    counter = Counter()
    config = CloudStorageConfig(source="cloudwatch", endpoint_url=moto.url, buckets=names, growth_warning=None)
    check = CloudStorageCheck(config, counter)
    with tempfile.TemporaryDirectory() as state:
        store = Store(Path(state))
        try:
            first = check.run(Context(now=time.time, history=store, hostname="bench"))
            store.record(first.observations)
            first_calls = counter.take()
            check.run(Context(now=time.time, history=store, hostname="bench"))
            next_calls = counter.take()
        finally:
            store.close()
    return sum(first_calls.values()), sum(next_calls.values()), next_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)

    moto = Moto()
    try:
        created = moto.fill("bench-listing", args.objects)
        print(f"seeded {args.objects:,} empty objects in {created:.1f} s\n")
        rows = []
        for label, run in (("forewarn listing source (check.run)", lambda: time_check_listing(moto, "bench-listing", args.objects + 1)),
                           ("aws s3 ls --recursive --summarize", lambda: time_aws_cli(moto, "bench-listing"))):
            seconds, seen = run()
            rows.append((label, seen, seconds, seen / seconds))
        print(f"Listing one bucket of {args.objects:,} objects (moto server in its own process, same run)")
        print(f"{'lister':<38} {'objects':>9} {'seconds':>8} {'objects/s':>10}")
        for label, seen, seconds, rate in rows:
            print(f"{label:<38} {seen:>9,} {seconds:>8.2f} {rate:>10,.0f}")
        print(f"{'ratio forewarn / aws cli':<38} {'':>9} {'':>8} {rows[0][3] / rows[1][3]:>10.2f}\n")

        print("API calls per cloudwatch check cycle (30 days of metrics per bucket)")
        print(f"{'buckets':>7} {'objects/bucket':>15} {'first cycle':>12} {'next cycle':>11} {'per bucket':>11}  next-cycle calls")
        for objects in (10, 5_000):
            for count in (1, 5, 20):
                moto.reset()
                names = seed_buckets(moto, count, objects)
                first, following, detail = count_cycles(moto, names)
                ops = ", ".join(f"{k} {v}" for k, v in sorted(detail.items()))
                print(f"{count:>7} {objects:>15,} {first:>12} {following:>11} {following / count:>11.1f}  {ops}")
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
