"""Turns findings into notices: who is affected, and what to tell them in their words.

Findings are addressed to the owners of every matching resource (and always to
the default owner, IT, who acts on them); each owner's findings become one
notice, written from jinja2 templates per finding kind and locale.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from zoneinfo import ZoneInfo

import yaml

from agent.api import Finding, Notice, Severity
from agent.config import Config, Resource
from agent.humanize import Humanizer

if TYPE_CHECKING:
    import jinja2


@dataclass(frozen=True, slots=True)
class Note:
    """What IT wrote about an incident (`agent note`)."""

    text: str
    author: str
    at: float


@dataclass(frozen=True, slots=True)
class PastFix:
    """How the last incident of the same kind on the same resource was fixed, and how long it took."""

    text: str
    resolved: float
    lasted: float


@dataclass(frozen=True)
class Item:
    """One finding as one owner sees it: with the business name and impact of their resource."""

    finding: Finding
    resource: Resource | None
    notes: tuple[Note, ...] = ()
    last_fix: PastFix | None = None

    @property
    def business_name(self) -> str:
        return self.resource.name if self.resource else ""

    @property
    def impact(self) -> str:
        return self.resource.impact if self.resource else ""

    @property
    def operation(self) -> str:
        return self.resource.operation if self.resource else ""


def address(findings: Iterable[Finding], config: Config) -> dict[str, list[Item]]:
    """Which owner hears about which finding; the default owner hears about all of them."""
    addressed: dict[str, list[Item]] = {}
    default = config.agent.default_owner
    for finding in findings:
        resources = config.resources_for(finding.check, finding.labels)
        for resource in resources:
            addressed.setdefault(resource.owner, []).append(Item(finding, resource))
        if not any(r.owner == default for r in resources):
            addressed.setdefault(default, []).append(Item(finding, resources[0] if resources else None))
    return addressed


def incident_id(owner: str, findings: Iterable[Finding]) -> str:
    keys = "\n".join(sorted({f.dedup_key for f in findings}))
    return hashlib.sha256(f"{owner}\n{keys}".encode()).hexdigest()[:16]


class Composer:
    def __init__(self, config: Config):
        self.config = config
        self._label_cache: dict[str, dict[str, str]] = {}

    @cached_property
    def env(self) -> jinja2.Environment:
        """Made for the first notice: a run that composes none never loads jinja2 (nor babel)."""
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(files("templates"))),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        env.filters["capitalize_first"] = lambda text: text[:1].upper() + text[1:]
        env.filters["unique"] = lambda texts: list(dict.fromkeys(t for t in texts if t))
        return env

    def compose(self, owner_id: str, items: list[Item], now: float, *, phase: str = "opening",
                incident: str | None = None, thread: str | None = None, sequence: int = 0,
                lasted: float | None = None, thread_subject: str | None = None,
                previous_severity: str | None = None, escalated_after: float | None = None,
                fix: str = "") -> Notice:
        """One notice for one owner. After the opening, `thread_subject` keeps the thread's subject;
        `previous_severity` lets an update say it got worse or better; an escalation says how long
        the incident went unacknowledged (`escalated_after`, seconds); a resolution says what fixed it (`fix`,
        as IT recorded it)."""
        owner = self.config.owners[owner_id]
        locale = owner.language
        human = Humanizer(locale, ZoneInfo(owner.timezone), now)
        items = sorted(items, key=lambda i: (-i.finding.severity.rank, i.finding.dedup_key))
        severity = items[0].finding.severity
        words = self.env.get_template(f"{locale}/words.txt.j2").module
        context = {
            "owner": owner, "owner_id": owner_id, "is_it": owner_id == self.config.agent.default_owner,
            "host": self.config.hostname(), "h": human, "phase": phase, "severity": severity.value,
            "update_interval": self.config.agent.update_interval, "lasted": lasted,
            "change": _change(previous_severity, severity), "escalated_after": escalated_after, "fix": fix,
        }
        sections = [self._sections(locale, item, context, words) for item in items]
        _say_once(sections, ("told", "doing", "self_help"))
        subject = thread_subject or sections[0]["subject"]
        if phase != "opening":
            subject = str(words.phase_subject(phase, subject))
        context.update(sections=sections, subject=subject)
        body = _tidy(self.env.get_template(f"{locale}/notice.txt.j2").render(context))
        appendix = self.env.get_template(f"{locale}/appendix.txt.j2").render(
            context, labels=self._labels(locale)).strip()
        html = self.env.get_template(f"{locale}/notice.html.j2").render(
            context, paragraphs=body.split("\n\n"), appendix=appendix)
        incident = incident or incident_id(owner_id, (i.finding for i in items))
        return Notice(
            owner=owner_id, locale=locale, subject=_one_line(subject), body=body, appendix=appendix, html=html,
            severity=severity, incident_id=incident, thread_id=thread or incident, phase=phase,
            sequence=sequence, department=owner.department, findings=tuple(i.finding for i in items),
            created=now)

    def _labels(self, locale: str) -> dict[str, str]:
        """Evidence key -> label in the appendix's language, from templates/<locale>/labels/*.yaml."""
        if locale not in self._label_cache:
            merged: dict[str, str] = {}
            folder = files("templates").joinpath(locale, "labels")
            if folder.is_dir():
                for entry in sorted(folder.iterdir(), key=lambda e: e.name):
                    if entry.name.endswith(".yaml"):
                        merged.update(yaml.safe_load(entry.read_text(encoding="utf-8")) or {})
            self._label_cache[locale] = merged
        return self._label_cache[locale]

    def _sections(self, locale: str, item: Item, context: Mapping[str, Any], words: Any) -> dict[str, Any]:
        kind = self.env.get_template(f"{locale}/{item.finding.kind}.txt.j2").module
        response = (item.resource.response if item.resource else "") or context["owner"].response
        args = {**context, "f": item.finding, "facts": item.finding.facts, "item": item, "response": response}
        args["name"] = _tidy(str(kind.name(args)))
        args["title"] = item.business_name or args["name"][:1].upper() + args["name"][1:]
        parts = {part: _tidy(str(getattr(kind, part)(args)))
                 for part in ("subject", "happening", "meaning", "doing", "self_help", "resolved")}
        parts["told"] = _tidy(str(words.told(args)))
        return {**parts, "finding": item.finding, "item": item, "name": args["name"]}


def _change(previous: str | None, now: Severity) -> str:
    """'worse', 'better' or '' since the last notice of the thread."""
    if previous is None or previous == now.value:
        return ""
    return "worse" if now.rank > Severity(previous).rank else "better"


def _say_once(sections: list[dict[str, Any]], parts: tuple[str, ...]) -> None:
    """Merged findings each keep their own parts, but a sentence already said is not said again."""
    said: set[str] = set()
    for section in sections:
        for part in parts:
            if section[part] in said:
                section[part] = ""
            said.add(section[part])



def _tidy(text: str) -> str:
    """Joins wrapped template lines into paragraphs; blank lines separate paragraphs."""
    paragraphs = []
    for block in text.strip().split("\n\n"):
        paragraph = ""
        for line in (line.strip() for line in block.splitlines()):
            if line:
                cjk = paragraph and (_is_cjk(paragraph[-1]) or _is_cjk(line[0]))
                paragraph += ("" if not paragraph or cjk else " ") + line
        if paragraph:
            paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


def _is_cjk(char: str) -> bool:
    return "\u3000" <= char <= "\u9fff" or "\uff00" <= char <= "\uffef"


def _one_line(text: str) -> str:
    return " ".join(text.split())
