"""The three scenarios of issue 13, with real parts, read as the owner reads them: the e-mail delivered
through a real SMTP server by `agent check --notify`, asserted claim by claim against the scenario.

- a disk filling over simulated days (tmpfs; FOREWARN_NOW moves the agent's clock 6 hours per run);
- a slow Redis (DEBUG SLEEP stalls);
- a bucket growing from temporary files (moto: CloudWatch history, a listing, an unfinished upload).

Every notice goes to an English and a Chinese owner; the texts are printed (pytest -s) for the closing note.
"""

from __future__ import annotations

import json
import os
import subprocess
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from agent.humanize import Humanizer
from tests.integration.servers import SmtpServer, tmpfs
from tests.integration.test_cache import stalls
from tests.integration.test_cloud_storage import NOW as CLOUD_NOW, agent_command, cloudwatch_scenario, euros

MB = 1_000_000
STEP = 6 * 3600.0          # simulated time between two disk checks
START = 1796119200.0       # Tuesday 1 December 2026, 10:00 UTC
OWNERS = {
    "it": {"department": "IT", "address_as": "Team", "tone": "friendly", "notify": ["it-file"]},
    "finance": {"department": "Finance", "address_as": "Mr. Santino", "timezone": "Europe/Rome",
                "notify": ["finance-mail"]},
    "radiology": {"department": "放射科", "address_as": "王主任", "language": "zh-CN", "timezone": "Asia/Shanghai",
                  "notify": ["radiology-mail"]},
}


def config(tmp_path: Path, smtp: SmtpServer, resources: list[dict], checks: dict) -> Path:
    mail = {"type": "email", "from": "Forewarn <forewarn@example.com>",
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "timeout": "5s"}}
    document = {
        "agent": {"state_dir": str(tmp_path / "state"), "hostname": "fin-fs01"},
        "owners": OWNERS,
        "resources": resources,
        "checks": checks,
        "notifiers": {"it-file": {"type": "file", "path": str(tmp_path / "it.jsonl")},
                      "finance-mail": {**mail, "to": ["Marco Santino <marco@example.com>"]},
                      "radiology-mail": {**mail, "to": ["王磊 <wang.lei@example.com>"]}},
    }
    path = tmp_path / "forewarn.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def both_owners(name_en: str, name_zh: str, match: dict, **extra: str) -> list[dict]:
    return [{"name": name_en, "owner": "finance", "match": match, **extra},
            {"name": name_zh, "owner": "radiology", "match": match}]


def check(path: Path, name: str, now: float, *flags: str, env: dict | None = None) -> dict:
    done = subprocess.run([*agent_command(), "check", name, "-c", str(path), "--json", *flags],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FOREWARN_NOW": str(now), **(env or {})})
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def mails(smtp: SmtpServer) -> dict[str, EmailMessage]:
    """Delivered messages by recipient address ('marco@…' -> English, 'wang.lei@…' -> Chinese)."""
    received = smtp.wait_for_messages(2)
    return {("en" if "marco" in str(m["To"]) else "zh-CN"): m for m in received}


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def show(title: str, delivered: dict[str, EmailMessage]) -> None:
    for locale, message in sorted(delivered.items()):
        print(f"\n===== {title} ({locale})\nSubject: {message['Subject']}\n\n{text_of(message)}")


def human(locale: str, now: float) -> Humanizer:
    owner = OWNERS["finance" if locale == "en" else "radiology"]
    return Humanizer(locale, ZoneInfo(owner.get("timezone", "UTC")), now)


def finding(document: dict, kind: str) -> dict:
    found = [f for f in document["findings"] if f["kind"] == kind]
    assert found, [f["kind"] for f in document["findings"]]
    return found[0]


# ---------------------------------------------------------------- 1. a disk filling over simulated days


def test_filling_disk_notice_says_by_when_even_when_the_forecast_is_beyond_its_warning(
        smtp_server: SmtpServer, tmp_path: Path) -> None:
    """91%-ish full, growing 2 MB a day with about 5 days left: the nearly-full notice says when it will be
    full (forecast_warning 72h does not hide the date), and promises nothing nobody made."""
    with tmpfs("100m") as mount:
        path = config(tmp_path, smtp_server, both_owners(
            "Finance shared drive", "财务共享盘", {"check": "disk", "mount": str(mount)},
            impact="month-end closing reports can't be saved"), {"disk": {"interval": "6h", "forecast_warning": "72h", "for": "0s"}})
        size = os.statvfs(mount).f_blocks * os.statvfs(mount).f_frsize
        (mount / "base.dat").write_bytes(b"\0" * int(size * 0.75))
        now = START
        for step in range(28):  # 7 simulated days, one check every 6 hours, 0.5 MB per step
            with open(mount / "growing.dat", "ab") as out:
                out.write(b"\0" * (MB // 2))
            now = START + step * STEP
            document = check(path, "disk", now, *(("--notify",) if step == 27 else ()))
        st = os.statvfs(mount)
        free, used = st.f_bavail * st.f_frsize, (st.f_blocks - st.f_bfree) * st.f_frsize
        delivered = mails(smtp_server)
    show("disk filling over simulated days", delivered)
    found = finding(document, "disk_nearly_full")
    facts, forecast = found["facts"], found["forecast"]
    assert facts["free_bytes"] == free and facts["used_ratio"] == pytest.approx(used / (used + free))
    earliest, latest = (_ts(forecast["earliest"]), _ts(forecast["latest"]))
    truth = now + free / (2 * MB / 86400)  # the writer's own pace
    assert earliest - STEP <= truth <= latest + STEP, (forecast, truth)
    for locale, message in delivered.items():
        h, body = human(locale, now), text_of(message)
        assert h.percent(facts["used_ratio"]) in body                          # how full
        assert h.bytes(facts["free_bytes"]) in body                            # what is left
        assert h.bytes(facts["gained_bytes"]) in body                          # the growth seen
        assert facts["gained_bytes"] == pytest.approx(13.5 * MB, rel=0.1)      # 27 steps of 0.5 MB
        assert h.span(earliest, latest) in body                                # by when
        assert ("IT has been told; they will decide" in body) if locale == "en" else ("将决定如何处理" in body)
        assert "in time" not in body and "及时" not in body                     # no promise nobody made
    assert "Finance shared drive" in delivered["en"]["Subject"] and "财务共享盘" in delivered["zh-CN"]["Subject"]


def _ts(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text).timestamp()


# ---------------------------------------------------------------- 2. a slow Redis


def test_slow_redis_notice_tells_a_frequency_and_the_longest_wait_from_one_window(
        redis_server, smtp_server: SmtpServer, tmp_path: Path) -> None:
    path = config(tmp_path, smtp_server, both_owners(
        "PACS cache", "影像缓存", {"check": "cache", "target": "pacs"}, operation="image loads",
        impact="doctors wait for their images"),
        {"cache": {"targets": [{"name": "pacs", "url": f"redis://127.0.0.1:{redis_server.port}/0",
                                "slow_after": "100ms"}], "probes": 40, "window": "4s", "for": "0s"}})
    with stalls(redis_server.port):
        check(path, "cache", START)
        document = check(path, "cache", START + 5, "--notify")
    delivered = mails(smtp_server)
    show("slow Redis", delivered)
    found = [f for f in document["findings"] if f["kind"] in ("cache_latency_spikes", "cache_slow")]
    assert found, [f["kind"] for f in document["findings"]]
    facts = found[0]["facts"]
    assert facts["slow_probes"] >= 3
    for locale, message in delivered.items():
        h, body = human(locale, START + 5), text_of(message)
        assert h.frequency(facts["slow_share"]) in body                        # how often
        assert h.number(facts["slow_after_seconds"], 1) in body               # waited more than …
        if facts["worst_seconds"] is None:  # two runs pooled: the longest wait of that window is not known
            assert "longest" not in body and "最长" not in body, body
        else:
            assert h.number(facts["worst_seconds"], 1 if facts["worst_seconds"] < 10 else 0) in body
        assert ("IT has been told; they will decide" in body) if locale == "en" else ("将决定如何处理" in body)


# ---------------------------------------------------------------- 3. a bucket growing from temporary files


def test_bucket_growing_from_temp_files_notice_prices_causes_from_their_bytes(
        smtp_server: SmtpServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    for document, moto in cloudwatch_scenario(tmp_path_factory, CLOUD_NOW):
        state = Path(document["_config"]).parent
        raw = yaml.safe_load(Path(document["_config"]).read_text(encoding="utf-8"))
        path = config(state, smtp_server, both_owners(
            "Report exports bucket", "报表导出存储", {"check": "cloud_storage", "bucket": "acme-reports"}),
            {"cloud_storage": {**raw["checks"]["cloud_storage"], "buckets": ["acme-reports"]}})
        document = check(path, "cloud_storage", CLOUD_NOW, "--notify", env=moto.env())
    delivered = mails(smtp_server)
    show("bucket growing from temporary files", delivered)
    growth = finding(document, "storage_cost_growth")
    facts = growth["facts"]
    temp = next(c for c in facts["causes"] if c["kind"] == "temp_files")
    uploads = next(c for c in facts["causes"] if c["kind"] == "incomplete_uploads")
    assert temp["bytes"] == 20 * 50_000 and uploads["bytes"] == 1_000_000   # what is stored, all of it
    assert temp["monthly_cost"] == pytest.approx(1e-6 * 0.023 * 0.92, abs=0.01)
    en, zh = text_of(delivered["en"]), text_of(delivered["zh-CN"])
    assert euros(facts["projected_bill"]) in en and "If it keeps growing as it did in the last week" in en
    assert euros(facts["monthly_now"]) not in en or facts["monthly_now"] == facts["projected_bill"]  # one figure
    assert "reports/tmp/" in en and "of the growth" in en and "1 times" not in en
    assert "Nothing is deleted until you agree" in en and "less than €0.01 a month" in en
    assert "reports/tmp/" in zh and "如果继续按最近一周的速度增长" in zh and "未经您同意不会删除任何文件" in zh
