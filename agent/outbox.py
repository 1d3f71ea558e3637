"""The outbox: every notice is written to the state database before anything is sent.

A notice becomes one row per channel of its owner, in one transaction, keyed
`incident:sequence:phase:channel` so enqueueing it twice adds nothing. A
delivery pass sends what is due, oldest first, each channel on its own
thread, so a hung channel delays only itself (a channel still busy from an
earlier pass is skipped). Order is kept per thread and channel: a later notice
of an incident's thread waits for an earlier one still pending, so an update
never overtakes its opening, but nothing waits for another incident's notice
(a warning held for quiet hours never delays a critical one; a critical
notice releases what its own thread holds back). Temporary failures are retried with
exponential backoff and jitter; a permanent failure, or a notice still
undelivered after `dead_letter_after`, is dead-lettered, and the default
owner hears about it through another channel.

Delivery guarantee, per channel:
- every channel: at least once. A row leaves `pending` only after the
  notifier returned; a crash between send and that update re-sends it.
- email: at most once to the reader, too: the Message-ID is derived from
  incident, sequence and phase, so a re-sent message has the same id and
  mail systems and clients drop the duplicate.
- alertmanager: at most once as an alert: the same notice gives the same
  label set, and Alertmanager merges alerts with equal labels.
- webhooks (generic, Slack, Teams, WeCom, DingTalk, Feishu), file, console:
  at least once only; a crash in the moment between the receiver's answer
  and the database update shows that notice twice.
A row being sent is leased (its next attempt moved `LEASE` ahead) and marked
with the sending process (boot, pid, start time), so two processes sharing the
state file do not send it at the same time; the claim of a process that is
gone (killed mid-send) is taken back at once by the next pass, not after the lease.
"""

from __future__ import annotations

import html
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from agent.api import Notice, Notifier, NotifierConfig, NotifyError, Severity
from agent.codec import notice_from_dict, notice_to_dict
from agent.config import Config
from agent.store import Store

log = logging.getLogger(__name__)

INITIAL_DELAY = 5.0
FACTOR = 2.0
MAX_DELAY = 600.0
JITTER = 0.2
DEAD_LETTER_AFTER = 24 * 3600.0
LEASE = 300.0
MAX_ITEMS = 100
OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff after temporary failures: initial × factor^(n-1), capped, ± jitter; then dead-letter by age."""

    initial: float = INITIAL_DELAY
    factor: float = FACTOR
    max_delay: float = MAX_DELAY
    jitter: float = JITTER
    dead_letter_after: float = DEAD_LETTER_AFTER
    lease: float = LEASE
    """How long a row being sent is hidden from other delivery passes."""

    def delay(self, failures: int, draw: float) -> float:
        """Seconds until the next try after `failures` failures; `draw` is uniform in [0, 1)."""
        base = min(self.initial * self.factor ** max(failures - 1, 0), self.max_delay)
        return base * (1 + self.jitter * (2 * draw - 1))


@dataclass(frozen=True, slots=True)
class Attempt:
    """What happened to one notice on one channel in a delivery pass (or `queued`: not its turn yet)."""

    channel: str
    owner: str
    subject: str
    result: str
    """sent | failed | dead | queued"""
    error: str = ""


def idempotency_key(notice: Notice, channel: str) -> str:
    """One incident is told to several owners, each in their own thread: the thread keeps keys apart."""
    return f"{notice.incident_id}:{notice.thread_id}:{notice.sequence}:{notice.phase}:{channel}"


def _decode(body: str) -> Notice:
    """A row's notice; decoded only for a row that is sent or dead-lettered in this pass, not for every row
    still waiting (the daemon runs a pass every second)."""
    return notice_from_dict(json.loads(body))


# -------------------------------------------------------------------------- outbox


class Outbox:
    def __init__(self, store: Store, config: Config, clock: Callable[[], float] = time.time,
                 on_result: Callable[[str, str], None] | None = None, policy: RetryPolicy = RetryPolicy(),
                 rng: random.Random | None = None, patience: float | None = None):
        """`patience`: how long a pass waits for its channels (None: until each is done; the daemon
        waits briefly and lets a hung channel finish on its own thread)."""
        self.store, self.config, self.clock, self.policy = store, config, clock, policy
        self.on_result = on_result or (lambda channel, result: None)
        self.rng = rng or random.Random()
        self.patience = patience
        self.me = process_identity(os.getpid())
        self._notifiers: dict[str, tuple[NotifierConfig, Notifier]] = {}
        self._busy: dict[str, threading.Thread] = {}

    def enqueue(self, notice: Notice, not_before: float | None = None) -> int:
        """Writes one row per channel of the notice's owner; returns how many were new.

        `not_before` holds the notice back (quiet hours); the row's `created` is then that
        moment, so the hold does not count towards `dead_letter_after`.
        """
        if notice.owner not in self.config.owners:
            log.warning("owner %r is no longer configured; its notice goes to the default owner's channels",
                        notice.owner)
        return self._insert(notice, self._channels_of(notice), not_before)

    def _insert(self, notice: Notice, channels: tuple[str, ...], not_before: float | None = None) -> int:
        now = self.clock()
        due = max(now, not_before or now)
        body = json.dumps(notice_to_dict(notice), ensure_ascii=False, default=str)
        added = 0
        with self.store.transaction():
            for channel in channels:
                if notice.severity == Severity.CRITICAL:  # what its thread holds back goes first, now
                    self.store.execute(
                        "UPDATE outbox SET next_attempt = ?, created = MIN(created, ?) WHERE state = 'pending'"
                        " AND attempts = 0 AND channel = ? AND next_attempt > ?"
                        " AND json_extract(notice, '$.thread_id') = ?", (due, due, channel, due, notice.thread_id))
                cursor = self.store.execute(
                    "INSERT OR IGNORE INTO outbox (idempotency_key, channel, owner, notice, created, next_attempt)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (idempotency_key(notice, channel), channel, notice.owner, body, due, due))
                added += cursor.rowcount
        return added

    def deliver_due(self, now: float | None = None, max_items: int = MAX_ITEMS) -> list[Attempt]:
        """One pass over pending rows, oldest first; at most `max_items` sends."""
        return [attempt for _, attempt in self._pass(self.clock() if now is None else now, max_items)]

    def send_now(self, notices: list[Notice]) -> list[Attempt]:
        """Enqueue, then one delivery pass; one Attempt per notice and channel (`queued` if not its turn)."""
        for notice in notices:
            self.enqueue(notice)
        done = dict(self._pass(self.clock(), MAX_ITEMS))
        results = []
        for notice in notices:
            for channel in self._channels_of(notice):
                key = idempotency_key(notice, channel)
                if key not in done:
                    state, error = self.store.execute(
                        "SELECT state, last_error FROM outbox WHERE idempotency_key = ?", (key,)).fetchone()
                    done[key] = Attempt(channel, notice.owner, notice.subject,
                                        "queued" if state == "pending" else state, error or "")
                results.append(done[key])
        return results

    def _pass(self, now: float, max_items: int) -> list[tuple[str, Attempt]]:
        self._take_back_dead_claims(now)
        rows = self.store.execute(
            "SELECT id, idempotency_key, channel, json_extract(notice, '$.thread_id'), notice, attempts, created,"
            " next_attempt, last_error FROM outbox WHERE state = 'pending' ORDER BY id").fetchall()
        by_channel: dict[str, list[tuple]] = {}
        for row in rows:
            by_channel.setdefault(row[2], []).append(row)
        budget = _Budget(max_items)
        started = []
        for channel, queued in by_channel.items():
            busy = self._busy.get(channel)
            if busy is not None and self.patience is None:
                busy.join()
            elif busy is not None and busy.is_alive():
                continue  # still sending from an earlier pass (a hung receiver): only this channel waits
            if not any(r[7] <= now or now - r[6] > self.policy.dead_letter_after for r in queued):
                continue
            done: list[tuple[int, str, Attempt]] = []
            worker = threading.Thread(target=self._deliver_channel, args=(queued, now, budget, done), daemon=True,
                                      name=f"send-{channel}")
            self._busy[channel] = worker
            worker.start()
            started.append((worker, done))
        deadline = None if self.patience is None else time.monotonic() + self.patience
        finished: list[tuple[int, str, Attempt]] = []
        for worker, done in started:
            worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if not worker.is_alive():
                finished += done
        return [(key, attempt) for _, key, attempt in sorted(finished, key=lambda entry: entry[0])]

    def _deliver_channel(self, rows: list[tuple], now: float, budget: _Budget,
                         done: list[tuple[int, str, Attempt]]) -> None:
        """One channel's due rows, oldest first; a thread whose earlier notice is still pending waits."""
        waiting: set[str] = set()
        for row_id, key, channel, thread, body, tries, created, next_attempt, last_error in rows:
            if thread in waiting:
                continue
            if now - created > self.policy.dead_letter_after:
                why = f"not delivered within {self.policy.dead_letter_after / 3600:g} h"
                done.append((row_id, key, self._dead(row_id, channel, _decode(body), tries,
                                                     f"{why}: {last_error or 'never tried'}", now)))
                continue
            if next_attempt > now or not budget.take() or not self._claim(row_id, now):
                waiting.add(thread)  # not due yet, or another process is sending it
                continue
            attempt = self._send(row_id, channel, _decode(body), tries + 1, now)
            done.append((row_id, key, attempt))
            if attempt.result == "failed":
                waiting.add(thread)

    def _take_back_dead_claims(self, now: float) -> None:
        """A row claimed by a process that is gone (killed while sending) is due again at once."""
        rows = self.store.execute(
            "SELECT id, claimed_by FROM outbox WHERE state = 'pending' AND claimed_by IS NOT NULL"
            " AND next_attempt > ?", (now,)).fetchall()
        for row_id, claimant in rows:
            if claimant != self.me and not _alive(claimant):
                self.store.execute("UPDATE outbox SET next_attempt = ?, claimed_by = NULL WHERE id = ?"
                                   " AND claimed_by = ?", (now, row_id, claimant))
                log.info("outbox row %d: its sender (%s) is gone; sending it again now", row_id, claimant)

    def pending(self) -> int:
        return self.store.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0]

    def dead(self) -> list[dict]:
        """Dead-lettered rows: who, which channel, what, why (notifier errors never hold secrets)."""
        rows = self.store.execute(
            "SELECT id, channel, owner, notice, attempts, created, last_error FROM outbox"
            " WHERE state = 'dead' ORDER BY id").fetchall()
        result = []
        for row_id, channel, owner, body, tries, created, error in rows:
            notice = json.loads(body)
            result.append({"id": row_id, "channel": channel, "owner": owner, "subject": notice["subject"],
                           "incident_id": notice["incident_id"], "phase": notice["phase"],
                           "sequence": notice["sequence"], "attempts": tries, "created": created, "error": error})
        return result

    # ---------------------------------------------------------------- internals

    def _channels_of(self, notice: Notice) -> tuple[str, ...]:
        """The owner's channels; an owner who left the config since the notice was composed: IT's."""
        owner = self.config.owners.get(notice.owner) or self.config.owners[self.config.agent.default_owner]
        return owner.notify

    def _claim(self, row_id: int, now: float) -> bool:
        cursor = self.store.execute(
            "UPDATE outbox SET next_attempt = ?, attempts = attempts + 1, claimed_by = ?"
            " WHERE id = ? AND state = 'pending' AND next_attempt <= ?", (now + self.policy.lease, self.me, row_id, now))
        return cursor.rowcount == 1

    def notifier(self, channel: str) -> Notifier:
        """One notifier per channel, rebuilt when the channel's settings change (config reload)."""
        settings = self.config.notifiers[channel]
        cached = self._notifiers.get(channel)
        if cached is None or cached[0] is not settings:
            self._notifiers[channel] = (settings, self.config.registry.notifier(settings.type)(channel, settings))
        return self._notifiers[channel][1]

    def _send(self, row_id: int, channel: str, notice: Notice, tries: int, now: float) -> Attempt:
        if channel not in self.config.notifiers:
            return self._dead(row_id, channel, notice, tries, f"channel {channel!r} is no longer configured", now)
        try:
            self.notifier(channel).send(notice)
        except NotifyError as exc:
            if exc.permanent:
                return self._dead(row_id, channel, notice, tries, str(exc), now)
            return self._retry(row_id, channel, notice, tries, str(exc), now)
        except Exception as exc:  # a notifier bug must not stop the others; its text may hold anything
            return self._retry(row_id, channel, notice, tries, f"unexpected {type(exc).__name__} in the notifier", now)
        self.store.execute("UPDATE outbox SET state = 'sent', delivered = ?, last_error = NULL, claimed_by = NULL"
                           " WHERE id = ?",
                           (self.clock(), row_id))
        self.on_result(channel, "sent")
        return Attempt(channel, notice.owner, notice.subject, "sent")

    def _retry(self, row_id: int, channel: str, notice: Notice, tries: int, error: str, now: float) -> Attempt:
        delay = self.policy.delay(tries, self.rng.random())
        self.store.execute("UPDATE outbox SET next_attempt = ?, last_error = ?, claimed_by = NULL WHERE id = ?",
                           (now + delay, error, row_id))
        log.warning("%s: delivery to %s failed, next try in %.0f s: %s", channel, notice.owner, delay, error)
        self.on_result(channel, "failed")
        return Attempt(channel, notice.owner, notice.subject, "failed", error)

    def _dead(self, row_id: int, channel: str, notice: Notice, tries: int, error: str, now: float) -> Attempt:
        self.store.execute("UPDATE outbox SET state = 'dead', last_error = ?, attempts = ?, claimed_by = NULL WHERE id = ?",
                           (error, tries, row_id))
        log.error("%s: notice to %s dead-lettered after %d attempt(s): %s", channel, notice.owner, tries, error)
        self.on_result(channel, "dead")
        if notice.phase != OPERATOR:  # an undeliverable operator notice must not beget another
            self._tell_operator(row_id, channel, notice, tries, error, now)
        return Attempt(channel, notice.owner, notice.subject, "dead", error)

    def _tell_operator(self, row_id: int, channel: str, notice: Notice, tries: int, error: str, now: float) -> None:
        default = self.config.agent.default_owner
        owner = self.config.owners[default]
        channels = tuple(c for c in owner.notify if c != channel)
        if not channels:
            log.error("no channel other than %s to tell %s that a notice was dead-lettered", channel, default)
            return
        self._insert(operator_notice(row_id, channel, notice, tries, error, now, default, owner.language,
                                     owner.department), channels)


class _Budget:
    """How many sends one pass may still make, shared by its channel threads."""

    def __init__(self, left: int):
        self.left, self.lock = left, threading.Lock()

    def take(self) -> bool:
        with self.lock:
            self.left -= 1
            return self.left >= 0


def process_identity(pid: int) -> str:
    """Boot, pid and start time of a process: a pid alone is reused; "" where /proc cannot tell."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        started = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""
    return f"{boot}:{pid}:{started}"


def _alive(claimant: str) -> bool:
    """Whether the process that claimed a row still runs; a claim of unknown form is trusted (its lease ends it)."""
    parts = claimant.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        return True
    return process_identity(int(parts[1])) == claimant


OPERATOR_TEXT = {
    "en": ("Undelivered notice: {subject}",
           "A notice could not be delivered and will not be retried.\n\n"
           "To: {owner} via {channel}\nSubject: {subject}\nAttempts: {tries}\nLast error: {error}\n\n"
           "Please check the channel's settings; `agent notify-test --owner {owner} --channel {channel}` "
           "sends a test notice once it is fixed."),
    "zh-CN": ("提醒未能送达：{subject}",
              "有一条提醒未能送达，系统不会再重试。\n\n"
              "收件人：{owner}（通道 {channel}）\n主题：{subject}\n尝试次数：{tries}\n最后一次错误：{error}\n\n"
              "请检查该通道的配置；修复后可用 `agent notify-test --owner {owner} --channel {channel}` 发送测试提醒。"),
}


def operator_notice(row_id: int, channel: str, failed: Notice, tries: int, error: str, now: float, owner: str,
                    locale: str, department: str) -> Notice:
    """What the default owner (IT) is told about a dead-lettered notice; its subject is one line."""
    subject, text = OPERATOR_TEXT.get(locale, OPERATOR_TEXT["en"])
    values = {"subject": " ".join(failed.subject.split()), "owner": failed.owner, "channel": channel,
              "tries": tries, "error": error}
    body = text.format(**values)
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in body.split("\n\n"))
    incident = f"outbox-{row_id}"
    return Notice(owner=owner, locale=locale, subject=subject.format(**values), body=body, appendix="",
                  html=f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{paragraphs}</body></html>',
                  severity=Severity.WARNING, incident_id=incident, thread_id=incident, phase=OPERATOR,
                  department=department, created=now)
