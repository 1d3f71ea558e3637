"""What must hold over every rehearsed incident timeline, notice by delivered notice.

`violations(transcript)` lists every broken rule in words; an empty list means the
sequence of notices an owner lives through is right. Used by hand-written scenarios
and by hypothesis-generated ones.
"""

from __future__ import annotations

import re
from collections import defaultdict

from agent.rehearse import Transcript

MAX_DAYS = 400  # no forecast of ours reaches further; a bigger count is a timestamp read as a span
SPAN_WORDS = re.compile(r"(\d[\d,]*)\s*days|约\s*(\d[\d,]*)\s*天")
PREFIXES = ("Update: ", "Resolved: ", "进展：", "已解决：")


def violations(transcript: Transcript, warning: float = 0.85, tick: float = 60.0) -> list[str]:
    found: list[str] = []
    threads: dict[tuple[str, str], list] = defaultdict(list)
    sent: set[tuple] = set()
    disk_script = transcript.scenario.script("disk")
    for d in transcript.delivered:
        n = d.notice
        where = f"{n.owner}/{n.phase}/{n.subject!r}"
        threads[(n.owner, n.thread_id)].append(d)
        key = (n.owner, d.channel, n.thread_id, n.sequence, n.phase)
        if key in sent:
            found.append(f"sent twice: {where}")
        sent.add(key)
        for match in SPAN_WORDS.finditer(n.body + "\n" + n.subject):
            days = int((match.group(1) or match.group(2)).replace(",", ""))
            if days > MAX_DAYS:
                found.append(f"implausible span of {days} days: {where}")
        for f in n.findings:
            if f.forecast and not n.created <= f.forecast.earliest <= f.forecast.eta <= f.forecast.latest:
                found.append(f"forecast range out of order or in the past: {where}")
        if n.severity == "critical" and d.at - n.created > tick + 1:
            found.append(f"critical notice held {d.at - n.created:.0f} s: {where}")
        if n.phase == "resolution":
            for f in n.findings:
                disk = disk_script(n.created).get(f.labels.get("mount", ""))
                if f.check != "disk" or disk is None:
                    continue
                free = disk["size"] - disk["used"]
                if abs(f.facts.get("free_bytes", -1) - free) > 0.01 * disk["size"]:
                    found.append(f"resolution tells {f.facts.get('free_bytes')} bytes free, {free:.0f} were: {where}")
                if disk["used"] / disk["size"] >= warning:
                    found.append(f"all-clear while the disk is {disk['used'] / disk['size']:.0%} full: {where}")
    for (owner, thread), notices in threads.items():
        phases = [d.notice.phase for d in notices]
        if phases.count("resolution") > 1:
            found.append(f"{owner}: thread {thread} resolved {phases.count('resolution')} times")
        if "resolution" in phases and phases.index("resolution") != len(phases) - 1:
            found.append(f"{owner}: thread {thread} goes on after its resolution: {phases}")
        if phases.count("opening") > 1:
            found.append(f"{owner}: thread {thread} opened {phases.count('opening')} times")
        subjects = {_strip(d.notice.subject) for d in notices}
        if len(subjects) > 1:
            found.append(f"{owner}: thread {thread} has {len(subjects)} subjects: {sorted(subjects)}")
        resources = {f.resource for d in notices for f in d.notice.findings}
        if "opening" in phases and "resolution" not in phases and not any(
                r in {resource for _, resource in transcript.open_at_end} for r in resources):
            found.append(f"{owner}: thread {thread} ({sorted(resources)}) ended without a resolution")
        times = [d.notice.created for d in notices if d.notice.phase != "escalation"]
        if times != sorted(times):
            found.append(f"{owner}: thread {thread} delivered out of order: {phases}")
    return found


def _strip(subject: str) -> str:
    for prefix in PREFIXES:
        subject = subject.removeprefix(prefix)
    return subject
