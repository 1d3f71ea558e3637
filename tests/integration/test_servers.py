"""Each server helper really starts a server that answers.

If one of these fails, every integration test built on that server is
suspect: fix this first.
"""

from __future__ import annotations

import os
import smtplib
import shutil
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.integration.servers import (
    Alertmanager,
    DelayProxy,
    Memcached,
    MotoServer,
    NodeExporter,
    Prometheus,
    RedisServer,
    ServerError,
    SmtpServer,
    http_json,
    promtool_check_metrics,
    tmpfs,
    wait_until,
)


def test_redis_answers_ping_and_allows_debug_sleep(redis_server: RedisServer) -> None:
    client = redis_server.client()
    assert client.ping() is True
    client.execute_command("DEBUG", "SLEEP", "0")
    assert client.config_get("save") == {"save": ""}


def test_redis_with_password_refuses_anonymous_clients(start_server) -> None:
    import redis

    server = start_server(RedisServer(password="s3cret", extra_args=["--maxmemory", "2mb"]))
    assert server.client().ping() is True
    assert server.client().config_get("maxmemory") == {"maxmemory": str(2 * 1024 * 1024)}
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    anonymous = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()


def test_memcached_stores_and_returns_a_value(memcached_server: Memcached) -> None:
    client = memcached_server.client()
    client.set("forewarn-smoke", b"hello")
    assert client.get("forewarn-smoke") == b"hello"


def test_prometheus_is_ready_and_scrapes_itself(prometheus_server: Prometheus) -> None:
    assert prometheus_server.query("vector(1)")[0]["value"][1] == "1"
    up = prometheus_server.wait_for_query("up")
    assert up[0]["metric"]["job"] == "prometheus"
    assert up[0]["value"][1] == "1"


def test_promtool_flags_a_broken_exposition(promtool: str) -> None:
    clean = "# HELP x_total Things.\n# TYPE x_total counter\nx_total 1\n"
    assert promtool_check_metrics(clean).returncode == 0
    broken = promtool_check_metrics("x_total{ 1\n")
    assert broken.returncode != 0


def test_alertmanager_keeps_a_posted_alert(alertmanager_server: Alertmanager) -> None:
    alertmanager_server.post_alerts([{"labels": {"alertname": "ForewarnSmoke", "severity": "warning"}}])
    names = {alert["labels"]["alertname"] for alert in alertmanager_server.alerts()}
    assert "ForewarnSmoke" in names


def test_alertmanager_pair_gossips_silences(alertmanager_ha: tuple[Alertmanager, Alertmanager]) -> None:
    first, second = alertmanager_ha
    # Alerts are not gossiped (Prometheus sends to every member); silences are.
    assert wait_until(lambda: len(http_json(f"{second.url}/api/v2/status")["cluster"]["peers"]) == 2, 15)
    now = datetime.now(timezone.utc)
    silence = {"matchers": [{"name": "alertname", "value": "ForewarnHA", "isRegex": False}],
               "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
               "createdBy": "test", "comment": "smoke"}
    http_json(f"{first.url}/api/v2/silences", body=silence)

    def second_has_it() -> bool:
        return any(s["comment"] == "smoke" for s in http_json(f"{second.url}/api/v2/silences"))

    assert wait_until(second_has_it, 15)


def test_node_exporter_serves_metrics(node_exporter: NodeExporter) -> None:
    import urllib.request

    with urllib.request.urlopen(node_exporter.metrics_url, timeout=10) as resp:
        body = resp.read().decode()
    assert "node_filesystem_avail_bytes" in body


def test_smtp_server_receives_a_message(smtp_server: SmtpServer) -> None:
    message = EmailMessage()
    message["From"] = "agent@example.test"
    message["To"] = "owner@example.test"
    message["Subject"] = "Disk almost full — in 3 days"
    message.set_content("Hello")
    with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=10) as smtp:
        smtp.send_message(message)
    [received] = smtp_server.wait_for_messages(1)
    assert received["Subject"] == "Disk almost full — in 3 days"
    assert smtp_server.received[0].rcpt_tos == ["owner@example.test"]


def test_smtp_server_can_go_away_and_come_back_on_the_same_port(smtp_server: SmtpServer) -> None:
    port = smtp_server.port
    smtp_server.stop()
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", port, timeout=5)
    smtp_server.start()
    assert smtp_server.port == port
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("a@example.test", ["b@example.test"], b"Subject: back\r\n\r\nhi\r\n")
    assert smtp_server.wait_for_messages(1)[0]["Subject"] == "back"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_server_fault_and_login(start_server) -> None:
    server = start_server(SmtpServer(login=("agent", "pw")))
    server.respond_with = "451 4.3.0 try again later"
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
        smtp.login("agent", "pw")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nx\r\n")
    assert refused.value.smtp_code == 451
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("agent", "wrong")


def test_moto_serves_s3_through_endpoint_url(fresh_moto: MotoServer) -> None:
    s3 = fresh_moto.client("s3")
    s3.create_bucket(Bucket="forewarn-smoke")
    s3.put_object(Bucket="forewarn-smoke", Key="a.txt", Body=b"x" * 100)
    listed = s3.list_objects_v2(Bucket="forewarn-smoke")
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("a.txt", 100)]


def _s3_size_points(server: MotoServer) -> list[dict]:
    now = datetime.now(timezone.utc)
    answer = server.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/S3", MetricName="BucketSizeBytes",
        Dimensions=[{"Name": "BucketName", "Value": "forewarn-today"}, {"Name": "StorageType", "Value": "StandardStorage"}],
        StartTime=now - timedelta(days=2), EndTime=now + timedelta(days=1), Period=86400,
        Statistics=["Average"])
    return answer["Datapoints"]


def test_moto_today_s3_datapoint_can_be_switched_off(moto_server: MotoServer) -> None:
    from moto.s3.models import S3Backend

    original = S3Backend.__dict__["get_cloudwatch_metrics"]
    moto_server.reset()
    moto_server.client("s3").create_bucket(Bucket="forewarn-today")
    assert len(_s3_size_points(moto_server)) == 1  # moto invents "today" from stored objects
    with MotoServer(s3_today_datapoint=False) as quiet:
        assert _s3_size_points(quiet) == []
    assert S3Backend.__dict__["get_cloudwatch_metrics"] is original


def test_moto_returns_queued_cost_explorer_results(fresh_moto: MotoServer) -> None:
    result = {"TimePeriod": {"Start": "2024-01-01", "End": "2024-01-02"},
              "Total": {"UnblendedCost": {"Amount": "12.5", "Unit": "USD"}}, "Groups": [], "Estimated": False}
    fresh_moto.queue_cost_results([{"ResultsByTime": [result]}])
    answer = fresh_moto.client("ce").get_cost_and_usage(
        TimePeriod={"Start": "2024-01-01", "End": "2024-01-02"}, Granularity="DAILY", Metrics=["UnblendedCost"])
    assert answer["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"] == "12.5"


def test_delay_proxy_stalls_one_request_in_n(memcached_server: Memcached) -> None:
    from pymemcache.client.base import Client

    with DelayProxy(memcached_server.port, delay_every=3, delay_s=0.4) as proxy:
        memcached_server.client().set("forewarn-proxy", b"v", noreply=False)  # directly, not counted
        client = Client(("127.0.0.1", proxy.port), timeout=5, connect_timeout=5)
        durations = []
        for _ in range(6):  # one chunk per get: requests 3 and 6 are delayed
            started = time.monotonic()
            assert client.get("forewarn-proxy") == b"v"
            durations.append(time.monotonic() - started)
        client.close()
    slow = [i for i, d in enumerate(durations, start=1) if d >= 0.35]
    assert slow == [3, 6], durations
    assert proxy.delayed == 2


def test_delay_proxy_follows_a_schedule(memcached_server: Memcached) -> None:
    from pymemcache.client.base import Client

    with DelayProxy(memcached_server.port, schedule=lambda n: 0.3 if n == 2 else 0.0) as proxy:
        client = Client(("127.0.0.1", proxy.port), timeout=5)
        durations = []
        for _ in range(3):
            started = time.monotonic()
            client.get("missing")
            durations.append(time.monotonic() - started)
        client.close()
    assert [d >= 0.25 for d in durations] == [False, True, False]


def test_tmpfs_is_a_small_disk_that_fills(small_disk: Path) -> None:
    stats = os.statvfs(small_disk)
    assert stats.f_blocks * stats.f_frsize == 16 * 1024 * 1024
    with pytest.raises(OSError) as full:
        with open(small_disk / "fill", "wb") as out:
            for _ in range(32):  # 32 MiB into 16 MiB
                out.write(b"\0" * (1024 * 1024))
                out.flush()
    assert full.value.errno == 28  # ENOSPC
    assert os.statvfs(small_disk).f_bavail == 0


def test_tmpfs_is_unmounted_afterwards() -> None:
    with tmpfs("1m") as mountpoint:
        assert os.path.ismount(mountpoint)
    assert not mountpoint.exists()


def test_missing_binary_is_an_error_not_a_skip() -> None:
    from tests.integration.servers import ManagedProcess

    process = ManagedProcess("forewarn-no-such-server", lambda p, d: [], lambda p: True)
    with pytest.raises(ServerError, match="install-deps"):
        process.start()


def test_a_server_that_dies_at_start_reports_its_log(start_server) -> None:
    with pytest.raises(ServerError, match="redis-server did not become ready") as failed:
        start_server(RedisServer(extra_args=["--no-such-option", "1"]))
    assert "no-such-option" in str(failed.value)
    assert failed.value.log_path is not None and failed.value.log_path.exists()
    shutil.rmtree(failed.value.log_path.parent)  # kept for humans; this failure is on purpose
