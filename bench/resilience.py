"""Resilience figures: the agent keeps speaking when the host is in trouble. Every figure is a count from a real
`agent run` process (root: it mounts small tmpfs disks).

    python bench/resilience.py                 # long variants (about 15 minutes)
    python bench/resilience.py --quick         # short variants (about 3 minutes)
    python bench/resilience.py --only kill,hung

- kill:    `kill -9` at random moments (the SMTP conversation slowed by 0.3 s, so kills land mid-send) across N
           restarts, a real SMTP server that is down for stretches; disk incidents opening, escalating and
           resolving throughout. Counts notices lost, dead-lettered and re-sent (the same Message-ID reaching the
           server twice: a kill between the server's acceptance and the outbox update; readers drop the copy),
           and the worst wait from a restart (process start) to its first e-mail when notices were waiting.
- full:    the state filesystem full and kept full while the watched disk reaches 97%: seconds to the owner's
           notice; peer: the same with room on the state filesystem.
- hung:    a webhook and an SMTP server that accept and never answer, a redis that never answers: disk check runs
           late, seconds to the file notice, fds and threads at the first and last cycle; peer: no hung parts.
- metrics: 20 scrapers for D seconds, plus 400 half-sent requests held open and a wrong-password flood; errors
           and p50/p99; peer: the same scrapers alone. Also basic-auth answer times (unknown user vs wrong password).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import os
import random
import re
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.faults import AgentProcess, KeepFull, fill_to, notices  # noqa: E402
from tests.integration import servers  # noqa: E402
from tests.integration.servers import SmtpServer, tmpfs, wait_until  # noqa: E402

FOREWARN_ID = re.compile(r"<forewarn\.([^.]+)\.(\d+)@")


def disk_config(state: Path, watched: Path, channels: dict, interval: str = "1s") -> dict:
    return {
        "agent": {"state_dir": str(state), "default_owner": "it", "hostname": "bench"},
        "owners": {"it": {"department": "IT", "address_as": "Team", "notify": list(channels)}},
        "resources": [{"name": "Scratch", "owner": "it", "impact": "exports fail",
                       "match": {"check": "disk", "mount": str(watched)}}],
        "checks": {"disk": {"interval": interval, "for": "0s", "mounts": [str(watched)], "warning": "90%",
                            "critical": "95%"}},
        "notifiers": channels,
    }


def mail_channel(port: int) -> dict:
    return {"mail": {"type": "email", "from": "forewarn@example.com", "to": ["it@example.com"],
                     "smtp": {"host": "127.0.0.1", "port": port, "timeout": "5s"}}}


def set_level(mount: Path, ratio: float) -> None:
    (mount / "data").unlink(missing_ok=True)
    fill_to(mount, ratio)


# ------------------------------------------------------------------------------------------------- kill -9


def kill_restarts(restarts: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    smtp = SmtpServer()
    smtp.start()
    arrivals: list[tuple[float, str]] = []
    keep = smtp._receive

    def receive(mail) -> None:  # stamps arrivals
        arrivals.append((time.monotonic(), mail.message["Message-ID"]))
        keep(mail)

    async def slow_rcpt(handler, server, session, envelope, address, rcpt_options) -> str:
        await asyncio.sleep(0.3)  # a slow conversation, so that kills land mid-send
        envelope.rcpt_tos.append(address)
        return "250 OK"

    smtp._receive = receive
    servers._Inbox.handle_RCPT = slow_rcpt
    levels = [0.5, 0.92, 0.97, 0.5]
    waits: list[float] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        watched = stack.enter_context(tmpfs("16m"))
        state = Path(folder) / "state"
        daemon = AgentProcess(Path(folder), disk_config(state, watched, mail_channel(smtp.port)))
        smtp_down_until = -1
        try:
            for n in range(restarts):
                set_level(watched, levels[n % len(levels)])
                if n % 10 == 5:
                    smtp.stop()
                    smtp_down_until = n + 3
                elif n == smtp_down_until:
                    smtp.start()
                waiting = _pending(state, due_only=True) if smtp_down_until < n else 0
                started = time.monotonic()
                seen = len(arrivals)
                daemon.start(wait=rng.random() < 0.8)  # one kill in five lands during start-up
                time.sleep(rng.uniform(0.0, 3.0))
                if waiting:  # give it the time a pass needs, then see when its first e-mail came
                    wait_until(lambda: len(arrivals) > seen, 10)
                    if len(arrivals) > seen:
                        waits.append(arrivals[seen][0] - started)
                daemon.kill()
            if smtp_down_until >= restarts:
                smtp.start()
            set_level(watched, 0.5)
            daemon.start()
            drained = wait_until(lambda: _pending(state) == 0, 120, interval=0.5)
            time.sleep(1.0)
            daemon.stop()
        finally:
            daemon.kill()
            smtp.stop()
            del servers._Inbox.handle_RCPT
        rows = _mail_rows(state)
    received: dict[tuple[str, int], int] = {}
    for _, message_id in arrivals:
        found = FOREWARN_ID.search(message_id or "")
        if found:
            key = (found.group(1), int(found.group(2)))
            received[key] = received.get(key, 0) + 1
    return {"restarts": restarts, "notices": len(rows), "drained": drained,
            "lost": sum(1 for key in rows if key not in received),
            "dead": sum(1 for key, state_ in rows.items() if state_ == "dead"),
            "sent twice (same Message-ID)": sum(1 for count in received.values() if count > 1),
            "worst wait after restart (s)": max(waits, default=0.0), "restarts with mail waiting": len(waits)}


def _database(state: Path) -> sqlite3.Connection | None:
    path = state / "forewarn.db"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) if path.exists() else None


def _pending(state: Path, due_only: bool = False) -> int:
    """E-mail rows not yet sent; `due_only`: those a restarted agent should send at once (due, or claimed by
    a process that was killed), not those waiting out a retry backoff."""
    db = _database(state)
    if db is None:
        return 0
    due = " AND (next_attempt <= ? OR claimed_by IS NOT NULL)" if due_only else ""
    try:
        return db.execute(f"SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND channel = 'mail'{due}",
                          (time.time(),) if due_only else ()).fetchone()[0]
    finally:
        db.close()


def _mail_rows(state: Path) -> dict[tuple[str, int], str]:
    db = _database(state)
    rows = db.execute("SELECT json_extract(notice, '$.thread_id'), json_extract(notice, '$.sequence'), state"
                      " FROM outbox WHERE channel = 'mail'").fetchall()
    db.close()
    return {(thread, sequence): state for thread, sequence, state in rows}


# --------------------------------------------------------------------------------------------- state full


def state_full(keep_full: bool) -> dict:
    with ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        state, watched = stack.enter_context(tmpfs("64m")), stack.enter_context(tmpfs("16m"))
        path = Path(folder) / "notices.jsonl"
        daemon = AgentProcess(Path(folder), disk_config(state, watched, {"file": {"type": "file",
                                                                                  "path": str(path)}}))
        daemon.start()
        try:
            if keep_full:
                stack.enter_context(KeepFull(state))
            started = time.monotonic()
            fill_to(watched, 0.97)
            told = wait_until(lambda: any(n["severity"] == "critical" for n in notices(path)), 120, 0.05)
            seconds = time.monotonic() - started
            alive = daemon.alive()
            health = daemon.health() or ""
        finally:
            daemon.kill()
    return {"notice delivered": told, "seconds": seconds, "agent alive": alive,
            "healthz": health.split(":")[0].strip()}


# ------------------------------------------------------------------------------------------- hung parts


class Silent:
    """A TCP server that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def hung(cycles: int, with_hung: bool) -> dict:
    silent = Silent()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        watched = stack.enter_context(tmpfs("16m"))
        path = Path(folder) / "notices.jsonl"
        channels = {"file": {"type": "file", "path": str(path)}}
        if with_hung:
            hook = Path(folder) / "hook.url"
            hook.write_text(f"http://127.0.0.1:{silent.port}/hook")
            channels["hook"] = {"type": "webhook", "url_file": str(hook), "timeout": "10s"}
            channels.update(mail_channel(silent.port))
            channels["mail"]["smtp"]["timeout"] = "10s"
        config = disk_config(Path(folder) / "state", watched, channels)
        if with_hung:
            config["checks"]["cache"] = {"interval": "5s", "timeout": "12s", "window": "1s", "probe_timeout": "2s",
                                         "targets": [{"name": "hung", "url": f"redis://127.0.0.1:{silent.port}/0"}]}
        daemon = AgentProcess(Path(folder), config)
        daemon.start()
        late, delays, samples = 0, [], []
        try:
            for cycle in range(cycles):
                if cycle % 10 == 0:
                    set_level(watched, 0.97 if cycle % 20 == 0 else 0.5)
                    changed, before = time.monotonic(), len(notices(path))
                    if wait_until(lambda: len(notices(path)) > before, 15, 0.05):
                        delays.append(time.monotonic() - changed)
                else:
                    time.sleep(1.0)
                last = _last_success(daemon.port)
                late += last is None or time.time() - last > 3.0
                samples.append((_count(f"/proc/{daemon.process.pid}/fd"), _threads(daemon.process.pid)))
        finally:
            daemon.kill()
            silent.close()
    return {"cycles": cycles, "disk runs late (>3 s)": late, "worst file notice (s)": max(delays, default=0.0),
            "fds first/last": f"{samples[1][0]}/{samples[-1][0]}",
            "threads first/last": f"{samples[1][1]}/{samples[-1][1]}"}


def _last_success(port: int) -> float | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    except OSError:
        return None
    found = re.search(r'forewarn_check_last_success_timestamp_seconds\{check="disk"\} (\S+)', text)
    return float(found.group(1)) if found else None


def _count(directory: str) -> int:
    return len(os.listdir(directory))


def _threads(pid: int) -> int:
    return _count(f"/proc/{pid}/task")


# ----------------------------------------------------------------------------------------------- /metrics


def metrics(seconds: float, flood: bool) -> dict:
    import bcrypt

    with tempfile.TemporaryDirectory() as folder:
        web = Path(folder) / "web.yml"
        web.write_text(f"basic_auth_users: {{prom: '{bcrypt.hashpw(b'scrape-pw', bcrypt.gensalt(10)).decode()}'}}\n")
        config = {"agent": {"state_dir": f"{folder}/state", "default_owner": "it", "web_config_file": str(web)},
                  "owners": {"it": {"department": "IT", "notify": ["file"]}},
                  "checks": {"disk": {"mounts": ["/"], "interval": "5s"}},
                  "notifiers": {"file": {"type": "file", "path": f"{folder}/n.jsonl"}}}
        daemon = AgentProcess(Path(folder), config)
        daemon.start(wait=False)
        assert wait_until(lambda: _get(daemon.port, "prom", "scrape-pw")[0] == 200, 30), daemon.log()
        stop = threading.Event()
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()

        def scraper() -> None:
            connection = None
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    connection = connection or http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
                    connection.request("GET", "/metrics", headers={"Authorization": _basic("prom", "scrape-pw")})
                    answer = connection.getresponse()
                    answer.read()
                    ok = answer.status == 200
                except (OSError, http.client.HTTPException):
                    ok, connection = False, None
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - started)
                    else:
                        errors[0] += 1

        def slow_flood() -> None:
            held: list[socket.socket] = []
            while not stop.is_set():
                try:
                    while len(held) < 400:
                        s = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
                        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                        held.append(s)
                except OSError:
                    pass
                stop.wait(0.5)
                for s in list(held):  # the ones the server cut off are replaced
                    s.setblocking(False)
                    try:
                        if s.recv(1) == b"":
                            raise ConnectionResetError
                    except BlockingIOError:
                        continue
                    except OSError:
                        pass
                    held.remove(s)
                    s.close()
            for s in held:
                s.close()

        def password_flood() -> None:
            counter = 0
            while not stop.is_set():
                counter += 1
                _get(daemon.port, "prom", f"guess-{counter}")

        workers = [threading.Thread(target=scraper) for _ in range(20)]
        if flood:
            workers += [threading.Thread(target=slow_flood)] + [threading.Thread(target=password_flood)
                                                                for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(seconds)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        unknown = _timed(lambda: _get(daemon.port, "nobody", f"x-{random.random()}"))
        wrong = _timed(lambda: _get(daemon.port, "prom", f"wrong-{random.random()}"))
        daemon.kill()
    latencies.sort()
    return {"scrapes": len(latencies), "per second": len(latencies) / seconds, "errors": errors[0],
            "p50 ms": 1000 * latencies[len(latencies) // 2] if latencies else 0.0,
            "p99 ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
            "auth unknown user ms": unknown, "auth wrong password ms": wrong}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _get(port: int, user: str, password: str) -> tuple[int, bytes]:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/metrics", headers={"Authorization": _basic(user, password)})
        answer = connection.getresponse()
        return answer.status, answer.read()
    except (OSError, http.client.HTTPException):
        return 0, b""


def _timed(call) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


# ------------------------------------------------------------------------------------------------- report


def table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n{title}")
    keys = list(next(iter(rows.values())))
    width = max(len(k) for k in keys)
    print(f"{'':<{width}}  " + "  ".join(f"{name:>16}" for name in rows))
    for key in keys:
        cells = []
        for row in rows.values():
            value = row.get(key, "")
            cells.append(f"{value:>16.2f}" if isinstance(value, float) else f"{str(value):>16}")
        print(f"{key:<{width}}  " + "  ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short variants")
    parser.add_argument("--only", default="kill,full,hung,metrics")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/resilience.py mounts tmpfs disks: run it as root", file=sys.stderr)
        return 2
    only = set(args.only.split(","))
    if "kill" in only:
        table("kill -9 at random moments, real SMTP server down for stretches",
              {"kill -9 loop": kill_restarts(10 if args.quick else 50)})
    if "full" in only:
        table("state filesystem full while the watched disk reaches 97%",
              {"state full": state_full(True), "peer: room": state_full(False)})
    if "hung" in only:
        cycles = 20 if args.quick else 100
        table("hung webhook, SMTP and redis (accept, never answer)",
              {"hung parts": hung(cycles, True), "peer: none hung": hung(cycles, False)})
    if "metrics" in only:
        seconds = 10.0 if args.quick else 60.0
        table(f"/metrics: 20 scrapers for {seconds:g} s (basic auth, bcrypt cost 10)",
              {"+ floods": metrics(seconds, True), "peer: scrapers": metrics(seconds, False)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
