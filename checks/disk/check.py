"""Disk space and inodes of every real filesystem, with time-to-full forecasts."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from agent.api import (CheckConfig, CheckResult, Context, Duration, Finding, Forecast, Metric, Percent,
                       ResourceStatus, Severity, Status, field_check, format_bytes, format_duration, growth_trend)
from checks.disk.probe import Unanswered, Usage
from checks.disk.sources import Disks, LocalDisks, Script, ScriptedDisks

PSEUDO_FS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
    "efivarfs", "fuse.gvfsd-fuse", "fuse.lxcfs", "fuse.portal", "fusectl", "hugetlbfs", "iso9660",
    "mqueue", "nsfs", "overlay", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs",
    "squashfs", "sysfs", "tmpfs", "tracefs", "nfsd", "aufs", "devfs", "fdescfs", "none",
})

USED_RATIO = Metric("disk_used_ratio", "ratio", "Share of the filesystem's usable space in use (as df shows it).")
SIZE = Metric("disk_size_bytes", "bytes", "Usable size of the filesystem (used + available, the size df's Use% counts).")
FREE = Metric("disk_free_bytes", "bytes", "Space still available to unprivileged users.")
USED = Metric("disk_used_bytes", "bytes", "Space in use.")
INODES = Metric("disk_inodes_used_ratio", "ratio", "Share of the filesystem's inodes in use.")
TTF = Metric("disk_time_to_full_seconds", "seconds", "Forecast time until the filesystem is full, at the current sustained pace.")
RESPONSIVE = Metric("disk_responsive", "", "1 when the mount answered within its timeout, 0 when it hung or failed.")


class DiskConfig(CheckConfig):
    warning: Percent = 0.85
    critical: Percent = 0.95
    inodes_warning: Percent = 0.85
    inodes_critical: Percent = 0.95
    forecast_warning: Duration = 72 * 3600.0
    forecast_critical: Duration = 12 * 3600.0
    history: Duration = 7 * 86400.0
    """How far back the forecast looks."""
    mount_timeout: Duration = 5.0
    mounts: tuple[str, ...] = ()
    """Mounts to measure even when their filesystem type is skipped by default."""
    exclude: tuple[str, ...] = ()
    """Glob patterns of mount points never to measure."""

    def match_keys(self) -> tuple[str, ...]:
        return ("mount", "device", "fstype")

    @field_check("critical", "inodes_critical")
    def _not_below_warning(cls, name: str, value: float, data: Mapping[str, Any]) -> float:
        warning = data.get(name.replace("critical", "warning"))
        if warning is not None and value < warning:
            raise ValueError(f"must not be below {name.replace('critical', 'warning')} ({warning:.0%})")
        return value

    @field_check("forecast_critical")
    def _not_beyond_warning(cls, name: str, value: float, data: Mapping[str, Any]) -> float:
        warning = data.get("forecast_warning")
        if warning is not None and value > warning:
            raise ValueError("must not be longer than forecast_warning")
        return value


@dataclass(frozen=True, slots=True)
class Mount:
    path: str
    device: str
    fstype: str

    @property
    def labels(self) -> dict[str, str]:
        return {"mount": self.path, "device": self.device, "fstype": self.fstype}


class DiskCheck:
    name: ClassVar[str] = "disk"
    Config: ClassVar[type[DiskConfig]] = DiskConfig
    metrics: ClassVar[tuple[Metric, ...]] = (USED_RATIO, SIZE, FREE, USED, INODES, TTF, RESPONSIVE)

    def __init__(self, config: DiskConfig, disks: Disks | None = None):
        self.config = config
        self.disks = disks or LocalDisks()
        """Where mounts and their usage come from: this host, or a rehearsal's script."""

    @classmethod
    def rehearsal(cls, config: DiskConfig, script: Script) -> DiskCheck:
        """This check judging scripted measurements (`agent rehearse`): only the numbers are simulated."""
        return cls(config, ScriptedDisks(script))

    def close(self) -> None:
        self.disks.close()

    @classmethod
    def perfdata(cls, config: DiskConfig) -> dict[str, tuple[str, str, str]]:
        """`agent check`'s perfdata per mount: metric -> (label suffix, warn range, crit range), plugin syntax."""
        return {USED_RATIO.name: ("", f"{config.warning * 100:g}", f"{config.critical * 100:g}"),
                FREE.name: (" free", "", ""),
                TTF.name: (" time to full", f"{config.forecast_warning:.0f}:", f"{config.forecast_critical:.0f}:")}

    def run(self, ctx: Context) -> CheckResult:
        wanted = {w["mount"] for w in ctx.wanted if "mount" in w} | set(self.config.mounts) | set(self.disks.always)
        mounts = select_mounts(self.disks.partitions(ctx.now()), wanted, self.config.exclude)
        usage = self.disks.measure([m.path for m in mounts], self.config.mount_timeout, ctx.now())
        now = ctx.now()
        statuses, observations, findings = [], [], []
        for mount in mounts:
            result = usage[mount.path]
            labels = mount.labels
            if isinstance(result, Unanswered):
                observations.append(RESPONSIVE.observe(0, labels, now))
                statuses.append(ResourceStatus(mount.path, Status.UNKNOWN, f"not measured: {result.reason}", labels,
                                               {"mount": mount.path}))
                findings.append(self._unresponsive(mount, result))
                continue
            observations += [
                RESPONSIVE.observe(1, labels, now), USED_RATIO.observe(result.used_ratio, labels, now),
                SIZE.observe(result.usable, labels, now), FREE.observe(result.free, labels, now),
                USED.observe(result.used, labels, now),
            ]
            if result.files:
                observations.append(INODES.observe(result.inodes_used_ratio, labels, now))
            facts = _facts(mount, result)
            growth = self._growth(mount, result, ctx, now)
            if growth:
                facts.update(growth.facts)
                observations.append(TTF.observe(growth.forecast.eta - now, labels, now))
            mount_findings = self._judge(mount, result, facts, growth)
            findings += mount_findings
            worst = max((f.severity.status for f in mount_findings), default=Status.OK)
            statuses.append(ResourceStatus(mount.path, worst, _summary(result), labels, facts))
        return CheckResult(self.name, tuple(statuses), tuple(observations), tuple(findings))

    def _judge(self, mount: Mount, usage: Usage, facts: dict, growth: Growth | None) -> list[Finding]:
        """One space finding per mount (nearly full, full, or filling: one incident that can get worse),
        carrying the forecast whenever a trend is known; the forecast thresholds only decide severity."""
        cfg, found = self.config, []
        evidence = {"mount": f"{mount.path} ({mount.fstype}, {mount.device})",
                    "used": f"{usage.used_ratio:.1%} ({format_bytes(usage.used)} of {format_bytes(usage.usable)} usable)",
                    "free": format_bytes(usage.free)}
        if growth:
            evidence.update(growth.evidence)
        soon = growth.severity(cfg) if growth else None
        if usage.used_ratio >= cfg.critical:
            kind, severity, rule = "disk_full", Severity.CRITICAL, f"used >= {cfg.critical:.0%}"
        elif usage.used_ratio >= cfg.warning:
            kind, severity, rule = "disk_nearly_full", soon or Severity.WARNING, f"used >= {cfg.warning:.0%}"
            if soon is Severity.CRITICAL:
                rule += f" and forecast full within {format_duration(cfg.forecast_critical)}"
        elif soon:
            limit = cfg.forecast_critical if soon is Severity.CRITICAL else cfg.forecast_warning
            kind, severity, rule = "disk_filling", soon, f"forecast full within {format_duration(limit)}"
        else:
            kind = ""
        if kind:
            summary = (f"{mount.path} will be full in about {format_duration(growth.forecast.eta - growth.now)}"
                       if kind == "disk_filling" else f"{mount.path} is {usage.used_ratio:.1%} full")
            found.append(Finding(self.name, kind, severity, mount.path, mount.labels, summary, facts,
                                 {**evidence, "rule": rule}, growth.forecast if growth else None,
                                 incident="disk_space"))
        if usage.files and usage.inodes_used_ratio >= cfg.inodes_warning:
            critical = usage.inodes_used_ratio >= cfg.inodes_critical
            found.append(Finding(
                self.name, "inodes_running_out", Severity.CRITICAL if critical else Severity.WARNING,
                mount.path, mount.labels, f"{mount.path} has used {usage.inodes_used_ratio:.1%} of its inodes",
                {**facts, "inodes_used_ratio": usage.inodes_used_ratio, "files_free": usage.files_free},
                {**evidence, "inodes": f"{usage.inodes_used_ratio:.1%} used ({usage.files_free:,} of {usage.files:,} free)",
                 "rule": f"inodes used >= {(cfg.inodes_critical if critical else cfg.inodes_warning):.0%}"}))
        return found

    def _growth(self, mount: Mount, usage: Usage, ctx: Context, now: float) -> Growth | None:
        cfg = self.config
        history = ctx.history.series(USED.name, mount.labels, now - cfg.history)
        points = [p for p in history if p[0] < now] + [(now, float(usage.used))]
        trend = growth_trend(points, min_span=max(10 * cfg.interval, 10.0), noise_floor=1e-4 * usage.usable)
        if trend is None or usage.free <= 0:
            return None
        best, earliest, latest = trend.time_to(usage.free)
        start = next(v for t, v in points if t >= now - trend.window)
        forecast = Forecast(now + best, now + earliest, now + latest,
                            f"Theil-Sen on the lower envelope over {format_duration(trend.window)}, 90% range")
        return Growth(now, best, forecast,
                      {"rate_bytes_per_second": trend.rate, "window_seconds": trend.window,
                       "gained_bytes": max(0.0, usage.used - start)},
                      {"growth": f"+{format_bytes(trend.rate * 86400)}/day over {format_duration(trend.window)} "
                                 f"({trend.points} samples)",
                       "full in": f"{format_duration(best)} ({format_duration(earliest)}-{format_duration(latest)})"})

    def _unresponsive(self, mount: Mount, result: Unanswered) -> Finding:
        rule = (f"statvfs must answer within {self.config.mount_timeout:g}s" if result.hung
                else "statvfs must succeed")
        return Finding(self.name, "disk_unresponsive", Severity.WARNING, mount.path, mount.labels,
                       f"{mount.path} {'did not answer' if result.hung else 'could not be measured'}: {result.reason}",
                       {"mount": mount.path, "hung": result.hung,
                        "missing": result.reason == "No such file or directory"},
                       {"mount": f"{mount.path} ({mount.fstype}, {mount.device})", "error": result.reason,
                        "rule": rule})


@dataclass(frozen=True, slots=True)
class Growth:
    """A mount's sustained growth: its forecast and the facts and evidence every space finding carries."""

    now: float
    best: float
    forecast: Forecast
    facts: dict
    evidence: dict

    def severity(self, cfg: DiskConfig) -> Severity | None:
        if self.best <= cfg.forecast_critical:
            return Severity.CRITICAL
        return Severity.WARNING if self.best <= cfg.forecast_warning else None


def _facts(mount: Mount, usage: Usage) -> dict:
    return {"mount": mount.path, "used_ratio": usage.used_ratio, "used_bytes": usage.used,
            "free_bytes": usage.free, "size_bytes": usage.usable}


def select_mounts(partitions, wanted: set[str], exclude: tuple[str, ...]) -> list[Mount]:
    """Real filesystems once each (bind mounts and duplicates dropped), plus the wanted ones."""
    chosen: dict[str, Mount] = {}
    seen_devices: set[tuple[str, str]] = set()
    for part in sorted(partitions, key=lambda p: (len(p.mountpoint), p.mountpoint)):
        path = part.mountpoint
        if path in chosen or any(fnmatch.fnmatch(path, pattern) for pattern in exclude):
            continue
        is_wanted = path in wanted
        if not is_wanted and (part.fstype in PSEUDO_FS or (part.device, part.fstype) in seen_devices):
            continue
        seen_devices.add((part.device, part.fstype))
        chosen[path] = Mount(path, part.device, part.fstype)
    for path in wanted - chosen.keys():  # a directory, or a mount that is missing: statvfs tells
        if not any(fnmatch.fnmatch(path, pattern) for pattern in exclude):  # what the user excludes is gone
            chosen[path] = Mount(path, "-", "-")
    return sorted(chosen.values(), key=lambda m: m.path)


def _summary(usage: Usage) -> str:
    return f"{usage.used_ratio:.1%} used, {format_bytes(usage.free)} free of {format_bytes(usage.usable)}"
