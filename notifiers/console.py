"""Prints notices to the terminal: the default channel and the `agent check` preview."""

from __future__ import annotations

import sys
from typing import ClassVar, Literal

from agent.api import Delivery, Notice, NotifierConfig


class ConsoleConfig(NotifierConfig):
    stream: Literal["stdout", "stderr"] = "stdout"


def render(notice: Notice) -> str:
    rule = "─" * 72
    return (f"{rule}\nTo: {notice.owner} ({notice.department}) · {notice.severity} · {notice.phase}\n"
            f"Subject: {notice.subject}\n\n{notice.body}\n\n{notice.appendix}\n{rule}\n")


class ConsoleNotifier:
    type: ClassVar[str] = "console"
    Config: ClassVar[type[ConsoleConfig]] = ConsoleConfig

    def __init__(self, name: str, config: ConsoleConfig):
        self.name, self.config = name, config

    def send(self, notice: Notice) -> Delivery:
        stream = sys.stdout if self.config.stream == "stdout" else sys.stderr
        stream.write(render(notice))
        stream.flush()
        return Delivery(self.name, self.config.stream)
