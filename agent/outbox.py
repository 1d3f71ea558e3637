"""The outbox: every notice is written to the state database before anything is sent.

A notice becomes one row per channel of its owner, in one transaction, keyed
`incident:sequence:phase:channel` so enqueueing it twice adds nothing. A
delivery pass sends what is due, oldest first; a later notice to the same
owner on the same channel waits for an earlier one still pending, so an
update never overtakes its opening. Temporary failures are retried with
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
A row being sent is leased (its next attempt moved `LEASE` ahead) so two
processes sharing the state file do not send it at the same time.
"""

from __future__ import annotations

import html
import json
import logging
import random
import time
from dataclasses import dataclass
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
                 rng: random.Random | None = None):
        self.store, self.config, self.clock, self.policy = store, config, clock, policy
        self.on_result = on_result or (lambda channel, result: None)
        self.rng = rng or random.Random()
        self._notifiers: dict[str, tuple[NotifierConfig, Notifier]] = {}

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
        rows = self.store.execute(
            "SELECT id, idempotency_key, channel, owner, notice, attempts, created, next_attempt, last_error"
            " FROM outbox WHERE state = 'pending' ORDER BY id").fetchall()
        attempts: list[tuple[str, Attempt]] = []
        waiting: set[tuple[str, str]] = set()  # (owner, channel) with an earlier notice still pending
        for row_id, key, channel, owner, body, tries, created, next_attempt, last_error in rows:
            lane = (owner, channel)
            if lane in waiting:
                continue
            if now - created > self.policy.dead_letter_after:
                why = f"not delivered within {self.policy.dead_letter_after / 3600:g} h"
                attempts.append((key, self._dead(row_id, channel, _decode(body), tries,
                                                 f"{why}: {last_error or 'never tried'}", now)))
                continue
            if next_attempt > now or len(attempts) >= max_items or not self._claim(row_id, now):
                waiting.add(lane)  # not due yet, or another process is sending it
                continue
            attempt = self._send(row_id, channel, _decode(body), tries + 1, now)
            attempts.append((key, attempt))
            if attempt.result == "failed":
                waiting.add(lane)
        return attempts

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
            "UPDATE outbox SET next_attempt = ?, attempts = attempts + 1"
            " WHERE id = ? AND state = 'pending' AND next_attempt <= ?", (now + self.policy.lease, row_id, now))
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
        self.store.execute("UPDATE outbox SET state = 'sent', delivered = ?, last_error = NULL WHERE id = ?",
                           (self.clock(), row_id))
        self.on_result(channel, "sent")
        return Attempt(channel, notice.owner, notice.subject, "sent")

    def _retry(self, row_id: int, channel: str, notice: Notice, tries: int, error: str, now: float) -> Attempt:
        delay = self.policy.delay(tries, self.rng.random())
        self.store.execute("UPDATE outbox SET next_attempt = ?, last_error = ? WHERE id = ?",
                           (now + delay, error, row_id))
        log.warning("%s: delivery to %s failed, next try in %.0f s: %s", channel, notice.owner, delay, error)
        self.on_result(channel, "failed")
        return Attempt(channel, notice.owner, notice.subject, "failed", error)

    def _dead(self, row_id: int, channel: str, notice: Notice, tries: int, error: str, now: float) -> Attempt:
        self.store.execute("UPDATE outbox SET state = 'dead', last_error = ?, attempts = ? WHERE id = ?",
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
