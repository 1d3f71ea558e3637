"""Prints notices to the terminal: the default channel and the `agent check` preview."""

from __future__ import annotations

import sys
from typing import ClassVar, Literal

from agent.api import Delivery, Notice, NotifierConfig, printable


class ConsoleConfig(NotifierConfig):
    stream: Literal["stdout", "stderr"] = "stdout"


def render(notice: Notice) -> str:
    """The notice as the terminal shows it; control characters in any of its text are escaped."""
    rule = "─" * 72
    head = printable(f"To: {notice.owner} ({notice.department}) · {notice.severity} · {notice.phase}", one_line=True)
    return (f"{rule}\n{head}\nSubject: {printable(notice.subject, one_line=True)}\n\n"
            f"{printable(notice.body)}\n\n{printable(notice.appendix)}\n{rule}\n")


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
