"""The cache check against real redis and memcached servers on 127.0.0.1.

Healthy caches stay quiet; a stall now and then (DEBUG SLEEP from a second
client, or a delaying proxy in front of memcached) is told as a frequency
while the typical wait stays normal; a stopped server is critical; a small
cache flooded with keys reports its evictions and memory. Key names, values
and passwords never appear in any output, log or stored series.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import redis
import yaml

from agent.api import Context
from agent.detect.bank import DetectorBank
from agent.store import Store
from checks.cache.check import CacheCheck
from tests.integration.servers import RedisServer

DEBUG_ARGS = ["--enable-debug-command", "local", "--slowlog-log-slower-than", "0"]
SECRET_KEY, SECRET_VALUE, PASSWORD = "patient:4711:ssn", "123-45-6789", "Pw-9f2c-secret"


def agent_command() -> list[str]:
    beside = Path(sys.executable).with_name("agent")
    return [str(beside)] if beside.exists() else ["agent"]


def write_config(tmp_path: Path, targets: list[dict], **settings: object) -> Path:
    config = {
        "agent": {"state_dir": str(tmp_path / "state")},
        "owners": {"radiology": {"department": "Radiology", "address_as": "Dr. Wang", "language": "en",
                                 "notify": ["console"]}},
        "notifiers": {"console": {"type": "console"}},
        "resources": [{"name": "PACS cache", "owner": "radiology", "operation": "image loads",
                       "impact": "doctors wait for their images",
                       "match": {"check": "cache", "target": targets[0]["name"]}}],
        "checks": {"cache": {"targets": targets, **settings}},
    }
    path = tmp_path / "forewarn.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_agent(config: Path, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    done = subprocess.run([*agent_command(), "check", "cache", "-c", str(config), "--json"], capture_output=True,
                          text=True, timeout=90, env={**os.environ, **(env or {})})
    return done.returncode, json.loads(done.stdout), done.stderr


def run_in_process(check: CacheCheck, store: Store, bank: DetectorBank | None = None):
    """One run as the daemon does it; pass the same `bank` to runs whose detectors must remember."""
    ctx = Context(now=time.time, history=store, hostname="test-host", log=logging.getLogger("test.cache"),
                  detectors=bank or DetectorBank())
    result = check.run(ctx)
    store.record(result.observations)
    return result


@contextlib.contextmanager
def stalls(port: int, password: str | None = None, every: float = 2.0, pause: float = 0.3) -> Iterator[None]:
    """A second client that makes redis sleep `pause` seconds every `every` seconds (bounded to 90 s)."""
    stop = threading.Event()
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=5)

    def loop() -> None:
        deadline = time.monotonic() + 90
        while not stop.is_set() and time.monotonic() < deadline:
            client.execute_command("DEBUG", "SLEEP", str(pause))
            stop.wait(every - pause)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(timeout=10)
        client.close()


def kinds(findings) -> list[str]:
    return sorted(f["kind"] if isinstance(f, dict) else f.kind for f in findings)


# ------------------------------------------------------------------ healthy


def test_healthy_redis_and_memcached_raise_nothing_after_hundreds_of_probes(redis_server, memcached_server, tmp_path):
    config = CacheCheck.Config.parse({"probes": 300, "window": "3s", "targets": [
        {"name": "pacs", "url": f"redis://127.0.0.1:{redis_server.port}/0", "slow_after": "100ms"},
        {"name": "sessions", "url": f"memcached://127.0.0.1:{memcached_server.port}", "slow_after": "100ms"},
    ]})
    check, store = CacheCheck(config), Store(tmp_path)
    try:
        result = run_in_process(check, store)
    finally:
        check.close()
        store.close()
    assert result.findings == ()
    assert [s.status.name for s in result.statuses] == ["OK", "OK"]
    counts = {o.labels["target"]: o.value for o in result.observations if o.name == "cache_cycle_probes"}
    assert counts["pacs"] >= 250 and counts["sessions"] >= 250
    up = {o.labels["target"]: o.value for o in result.observations if o.name == "cache_up"}
    assert up == {"pacs": 1.0, "sessions": 1.0}


# ------------------------------------------------------------------ intermittent


def test_redis_stalling_now_and_then_is_told_as_a_frequency_through_the_cli(redis_server, tmp_path):
    config = write_config(tmp_path, [{"name": "pacs", "url": f"redis://127.0.0.1:{redis_server.port}/0",
                                      "slow_after": "100ms"}], probes=40, window="4s")
    with stalls(redis_server.port):
        first_code, first, _ = run_agent(config)
        code, document, stderr = run_agent(config)  # pools the first run's stored counts
    spikes = [f for f in document["findings"] if f["kind"] == "cache_latency_spikes"]
    assert spikes, (first, document, stderr)
    facts = spikes[0]["facts"]
    assert facts["median_seconds"] < 0.01 and facts["probes"] >= 70 and facts["slow_probes"] >= 3
    assert code == 1 and document["status"] == "WARNING"
    notice = next(n for n in document["notices"] if n["owner"] == "radiology")
    assert "image loads from the PACS cache waited more than 0.1 seconds" in notice["body"]
    assert "about 1 in " in notice["body"] and "Dr. Wang" in notice["body"]
    assert "p99" in notice["appendix"] and "DEBUG" in notice["appendix"]
    assert "p99" not in notice["body"] and "latency" not in notice["body"].lower()


def test_memcached_behind_a_stalling_proxy_shows_spikes_with_a_normal_median(slow_memcached, tmp_path):
    slow_memcached.schedule = lambda n: 0.3 if n % 8 == 0 else 0.0
    config = CacheCheck.Config.parse({"probes": 40, "window": "3s", "targets": [
        {"name": "sessions", "url": f"memcached://127.0.0.1:{slow_memcached.port}", "slow_after": "100ms"}]})
    check, store = CacheCheck(config), Store(tmp_path)
    try:
        result = run_in_process(check, store)
    finally:
        check.close()
        store.close()
    assert kinds(result.findings) == ["cache_latency_spikes"]
    facts = result.findings[0].facts
    assert facts["median_seconds"] < 0.1 and facts["slow_probes"] >= 3
    assert slow_memcached.delayed >= 3
    assert result.statuses[0].facts == facts  # the current numbers, in the finding's keys (for a resolution)


def test_memcached_turning_steadily_slow_after_a_quiet_spell_is_a_slow_cache(slow_memcached, tmp_path):
    slow_memcached.schedule = lambda n: 0.0
    # A short warm-up and a short judged window, so a minute of runs shows what an hour of runs would.
    config = CacheCheck.Config.parse({"probes": 10, "window": "0.25s", "interval": "1s", "spread": "25%",
                                               "lookback": "2s", "detector": {"warmup": 10}, "targets": [
        {"name": "sessions", "url": f"memcached://127.0.0.1:{slow_memcached.port}", "slow_after": "100ms"}]})
    check, store, bank = CacheCheck(config), Store(tmp_path), DetectorBank()
    try:
        quiet = [run_in_process(check, store, bank) for _ in range(20)]
        slow_memcached.schedule = lambda n: 0.06  # every answer now waits 60 ms more: 100x usual, > half the limit
        slow = [run_in_process(check, store, bank) for _ in range(8)]
    finally:
        check.close()
        store.close()
    assert not any(result.findings for result in quiet)
    assert "cache_slow" not in kinds(slow[0].findings)  # one slow run is not yet a slow cache
    found = [f for result in slow for f in result.findings if f.kind == "cache_slow"]
    assert found, [kinds(result.findings) for result in slow]
    facts = found[-1].facts
    assert 0.05 <= facts["median_seconds"] < 0.1 and facts["usual_median_seconds"] < 0.01
    assert "unusually high" in found[-1].evidence["rule"]


# ------------------------------------------------------------------ unreachable


def test_stopped_redis_is_critical_and_exits_2(start_server, tmp_path):
    server = start_server(RedisServer())
    port = server.port
    server.stop()
    config = write_config(tmp_path, [{"name": "pacs", "url": f"redis://127.0.0.1:{port}/0"}], probes=5,
                          window="1s")
    code, document, stderr = run_agent(config)
    assert code == 2 and document["status"] == "CRITICAL"
    (finding,) = document["findings"]
    assert (finding["kind"], finding["severity"]) == ("cache_unreachable", "critical")
    notice = next(n for n in document["notices"] if n["owner"] == "radiology")
    assert "not answering" in notice["subject"] and "Connection refused" in notice["appendix"]


# ------------------------------------------------------------------ memory


def flood(client: redis.Redis, round_: int) -> None:
    with client.pipeline(transaction=False) as pipe:
        for i in range(8000):
            pipe.set(f"flood:{round_}:{i}", b"x" * 1024)
        pipe.execute()


def test_small_cache_flooded_with_keys_reports_evictions_and_memory(start_server, tmp_path):
    server = start_server(RedisServer(extra_args=["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]))
    config = CacheCheck.Config.parse({"probes": 5, "window": "0.5s", "interval": "2s", "targets": [
        {"name": "pacs", "url": f"redis://127.0.0.1:{server.port}/0"}],
        "detector": {"warmup": 20}})  # 20 quiet periods stand for the usual hour (120 runs) of warm-up
    check, store, bank = CacheCheck(config), Store(tmp_path), DetectorBank()
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        # It usually evicts nothing. Fewer quiet runs would be a warm-up where one flood is a tenth of all
        # the history the detector has, which no real hour of warm-up is (and made this test flaky).
        quiet = [run_in_process(check, store, bank) for _ in range(21)]
        flooded = []
        for round_ in range(3):  # a lasting flood, not a one-off burst
            flood(client, round_)
            flooded.append(run_in_process(check, store, bank))
    finally:
        client.close()
        check.close()
        store.close()
    before, after = quiet + flooded[:1], flooded[-1]
    assert all("cache_evictions_surge" not in kinds(result.findings) for result in before)
    assert {"cache_evictions_surge", "cache_memory_near_limit"} <= set(kinds(after.findings))
    surge = next(f for f in after.findings if f.kind == "cache_evictions_surge")
    assert surge.facts["evicted"] >= 1000
    assert any(o.name == "cache_evictions_total" and o.value >= 1000 for o in after.observations)


# ------------------------------------------------------------------ confidentiality


def test_no_key_name_value_or_password_leaks_anywhere(start_server, tmp_path):
    server = start_server(RedisServer(password=PASSWORD, extra_args=DEBUG_ARGS))
    client = redis.Redis(host="127.0.0.1", port=server.port, password=PASSWORD)
    client.set(SECRET_KEY, SECRET_VALUE)
    for _ in range(5):
        client.get(SECRET_KEY)
    client.close()
    config = write_config(tmp_path, [
        {"name": "pacs", "url": f"redis://127.0.0.1:{server.port}/0", "slow_after": "100ms",
         "password_env": "PACS_PW"},
        {"name": "wrong", "url": f"redis://127.0.0.1:{server.port}/0", "password_env": "WRONG_PW"},
    ], probes=40, window="4s")
    env = {"PACS_PW": PASSWORD, "WRONG_PW": "Wrong-77aa-secret"}
    with stalls(server.port, password=PASSWORD):
        outputs = [run_agent(config, env) for _ in range(2)]
    code, document, _ = outputs[-1]
    assert "cache_latency_spikes" in kinds(document["findings"])  # notices were written, with server evidence
    assert "cache_unreachable" in kinds(document["findings"])     # and the wrong password was refused
    assert any("slowlog commands" in f["evidence"] for f in document["findings"])
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir())
    texts = [json.dumps(doc, ensure_ascii=False) + stderr for _, doc, stderr in outputs]
    for secret in ("patient", "4711", SECRET_VALUE, PASSWORD, "Wrong-77aa-secret"):
        assert all(secret not in text for text in texts), secret
        assert secret.encode() not in stored, secret
