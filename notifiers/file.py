"""Appends each notice as one JSON object per line: for scripts, audits and tests."""

from __future__ import annotations

import errno
import fcntl
import json
import os
from pathlib import Path
from typing import ClassVar

from agent.api import Delivery, Notice, NotifierConfig, NotifyError


class FileConfig(NotifierConfig):
    path: Path


def as_record(notice: Notice) -> dict:
    return {
        "owner": notice.owner, "department": notice.department, "locale": notice.locale,
        "severity": str(notice.severity), "phase": notice.phase, "subject": notice.subject,
        "body": notice.body, "appendix": notice.appendix, "html": notice.html,
        "incident_id": notice.incident_id, "thread_id": notice.thread_id, "sequence": notice.sequence,
        "created": notice.created, "findings": [f.dedup_key for f in notice.findings],
    }


class FileNotifier:
    type: ClassVar[str] = "file"
    Config: ClassVar[type[FileConfig]] = FileConfig

    def __init__(self, name: str, config: FileConfig):
        self.name, self.config = name, config

    def send(self, notice: Notice) -> Delivery:
        line = (json.dumps(as_record(notice), ensure_ascii=False) + "\n").encode()
        path = self.config.path.expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)  # no planted links
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotifyError(f"cannot append to {path}: it is a symbolic link (the agent does not write "
                                  "through links)", permanent=True) from None
            permanent = isinstance(exc, (PermissionError, IsADirectoryError))
            raise NotifyError(f"cannot append to {path}: {exc.strerror}", permanent=permanent) from None
        return Delivery(self.name, str(path))
