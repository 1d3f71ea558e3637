"""Where the disk check's numbers come from: this host's mounts, or a rehearsal's script.

The check judges both the same way; only the measuring differs.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Protocol

import psutil

from checks.disk.probe import Prober, Unanswered, Usage

Script = Callable[[float], Mapping[str, Mapping[str, float]]]
"""A rehearsal's measurements at a moment: {mount: {size, used, files, files_free}} (bytes, counts)."""


class Disks(Protocol):
    always: tuple[str, ...]
    """Mounts measured even when nothing names them."""

    def partitions(self, now: float) -> list[Any]: ...

    def measure(self, paths: list[str], timeout: float, now: float) -> dict[str, Usage | Unanswered]: ...

    def close(self) -> None: ...


class LocalDisks:
    """The host's mounts (psutil) and their usage (statvfs in a long-lived prober child)."""

    always = ("/",)

    def __init__(self) -> None:
        self.prober = Prober()

    def partitions(self, now: float) -> list[Any]:
        return psutil.disk_partitions(all=True)

    def measure(self, paths: list[str], timeout: float, now: float) -> dict[str, Usage | Unanswered]:
        return self.prober.measure(paths, timeout)

    def close(self) -> None:
        self.prober.close()


class _Partition(NamedTuple):
    device: str
    mountpoint: str
    fstype: str


class ScriptedDisks:
    """Mounts and usage as a rehearsal scripts them; a mount the script leaves out at a moment is gone."""

    always = ()

    def __init__(self, script: Script):
        self.script = script

    def partitions(self, now: float) -> list[Any]:
        return [_Partition("rehearsal", path, "ext4") for path in self.script(now)]

    def measure(self, paths: list[str], timeout: float, now: float) -> dict[str, Usage | Unanswered]:
        values = self.script(now)
        found: dict[str, Usage | Unanswered] = {}
        for path in paths:
            disk = values.get(path)
            if disk is None:
                found[path] = Unanswered("No such file or directory")
                continue
            size, used = int(disk["size"]), int(min(disk["used"], disk["size"]))
            found[path] = Usage(size, size - used, used, int(disk.get("files", 0)), int(disk.get("files_free", 0)))
        return found

    def close(self) -> None:
        pass
