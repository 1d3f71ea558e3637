"""Email over SMTP: one multipart (text + HTML) message per notice, threaded per incident.

The Message-ID is derived from the notice's thread id and sequence (a
sequence is unique within a thread), so a re-send after a crash carries the
same id and mail systems can drop the duplicate; every later notice of the
thread (updates, the resolution) points at its first one (sequence 0) through
In-Reply-To/References, so one incident reads as one thread. Headers are
built by the `email` package with its SMTP policy, which encodes UTF-8
subjects and display names (RFC 2047) and refuses CR/LF in any header value.

SMTP replies 4xx and network errors are temporary failures; 5xx are permanent.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import getaddresses
from pathlib import Path
from typing import Any, ClassVar, Mapping

from agent.api import Delivery, Duration, Field, Model, Notice, NotifierConfig, NotifyError, field_check, model_check
from notifiers._http import read_secret


class _Policy(EmailPolicy):
    """The SMTP policy, except that an all-ASCII subject is written unfolded (RFC 5322 allows 998 octets).

    Python's folder moves a whole subject containing `<`, `;` or `,` to a
    continuation line, which parsers then read back with a leading space.
    """

    def fold_binary(self, name: str, value: str) -> bytes:
        line = f"{name}: {value}"
        if name.lower() == "subject" and line.isascii() and len(line) <= 998:
            return (line + self.linesep).encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy(linesep="\r\n", cte_type="7bit")  # bodies as quoted-printable/base64: any relay accepts them
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]")


def _address(value: str) -> str:
    """One address as written in the config ("Name <a@b>" or "a@b"), refused if it could inject headers."""
    if any(c in value for c in "\r\n\0"):
        raise ValueError("must be one line")
    parsed = getaddresses([value])
    if len(parsed) != 1 or "@" not in parsed[0][1]:
        raise ValueError("not an email address like name@example.com")
    return value.strip()


class SmtpSettings(Model):
    host: str
    port: int | None = Field(None, ge=1, le=65535)
    """Default 25, or 465 with `tls: true` (implicit TLS)."""
    starttls: bool = False
    tls: bool = False
    username_env: str | None = None
    username_file: Path | None = None
    password_env: str | None = None
    password_file: Path | None = None
    timeout: Duration = 30.0

    @model_check
    def _consistent(self) -> None:
        if self.starttls and self.tls:
            raise ValueError("choose starttls (upgrade on port 25/587) or tls (implicit, port 465), not both")
        has_user = self.username_env is not None or self.username_file is not None
        has_password = self.password_env is not None or self.password_file is not None
        if has_user != has_password:
            raise ValueError("give both a username (username_env/_file) and a password (password_env/_file), or neither")

    @property
    def effective_port(self) -> int:
        return self.port or (465 if self.tls else 25)


class EmailConfig(NotifierConfig):
    to: tuple[str, ...]
    from_: str = Field(alias="from")
    smtp: SmtpSettings

    @field_check("to", before=True)
    def _listify(cls, name: str, value: object, data: Mapping[str, Any]) -> object:
        return (value,) if isinstance(value, str) else value

    @field_check("to")
    def _recipients(cls, name: str, value: tuple[str, ...], data: Mapping[str, Any]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one address")
        return tuple(_address(v) for v in value)

    @field_check("from_")
    def _sender(cls, name: str, value: str, data: Mapping[str, Any]) -> str:
        return _address(value)

    @property
    def sender(self) -> tuple[str, str]:
        """(display name, address) of `from`: the From header and the envelope sender."""
        return getaddresses([self.from_])[0]

    @property
    def recipients(self) -> list[tuple[str, str]]:
        """(display name, address) of each `to`: the To header and the envelope recipients."""
        return getaddresses(list(self.to))


def message_id(thread: str, sequence: int, domain: str) -> str:
    """Stable per notice: the same notice sent twice has the same Message-ID."""
    return f"<forewarn.{_ID_UNSAFE.sub('-', thread)}.{sequence}@{domain}>"


def one_line(text: str) -> str:
    """A header value: whitespace (CR/LF included) collapsed to single spaces, control characters dropped."""
    return " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())


def build_message(notice: Notice, config: EmailConfig) -> EmailMessage:
    sender_name, sender = config.sender
    domain = _ID_UNSAFE.sub("-", sender.rpartition("@")[2]) or "forewarn.invalid"
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = one_line(notice.subject)
    msg["From"] = Address(one_line(sender_name), addr_spec=sender)
    msg["To"] = [Address(one_line(name), addr_spec=addr) for name, addr in config.recipients]
    msg["Date"] = datetime.fromtimestamp(notice.created, timezone.utc)
    msg["Message-ID"] = message_id(notice.thread_id, notice.sequence, domain)
    if notice.sequence > 0:
        opening = message_id(notice.thread_id, 0, domain)
        msg["In-Reply-To"] = opening
        msg["References"] = opening
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    msg["X-Forewarn-Incident"] = _ID_UNSAFE.sub("-", notice.incident_id)
    msg["X-Forewarn-Severity"] = str(notice.severity)
    msg.set_content(notice.text, charset="utf-8")
    msg.add_alternative(notice.html, subtype="html", charset="utf-8")
    return msg


class EmailNotifier:
    type: ClassVar[str] = "email"
    Config: ClassVar[type[EmailConfig]] = EmailConfig

    def __init__(self, name: str, config: EmailConfig):
        self.name, self.config = name, config

    def send(self, notice: Notice) -> Delivery:
        smtp = self.config.smtp
        where = f"SMTP {smtp.host}:{smtp.effective_port}"
        try:
            msg = build_message(notice, self.config)
        except ValueError as exc:  # the email package refusing a header: never retry it
            raise NotifyError(f"cannot build the message: {exc}", permanent=True) from None
        login = None
        if smtp.username_env is not None or smtp.username_file is not None:
            login = (read_secret("smtp.username", smtp.username_env, smtp.username_file),
                     read_secret("smtp.password", smtp.password_env, smtp.password_file))
        try:
            refused = self._deliver(msg, login)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise NotifyError(f"{where} refused every recipient ({', '.join(map(str, codes))})",
                              permanent=all(code >= 500 for code in codes)) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise NotifyError(f"{where} answered {exc.smtp_code} {one_line(text)[:160]}",
                              permanent=exc.smtp_code >= 500) from None
        except ssl.SSLCertVerificationError as exc:
            raise NotifyError(f"{where}: the server's certificate is not trusted ({exc.verify_message})",
                              permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise NotifyError(f"{where} could not be reached ({reason})") from None
        detail = f"{where}" + (f", refused: {', '.join(sorted(refused))}" if refused else "")
        return Delivery(self.name, detail)

    def _deliver(self, msg: EmailMessage, login: tuple[str, str] | None) -> dict:
        smtp = self.config.smtp
        context = ssl.create_default_context()
        if smtp.tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.effective_port, timeout=smtp.timeout,
                                                    context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.effective_port, timeout=smtp.timeout)
        with client:
            if smtp.starttls:
                client.starttls(context=context)
            if login is not None:
                client.login(*login)
            return client.send_message(msg, from_addr=self.config.sender[1],
                                       to_addrs=[addr for _, addr in self.config.recipients])
