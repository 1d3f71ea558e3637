"""Findings and notices as plain JSON data, for the state database (incidents, outbox)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Mapping

from agent.api import Finding, Forecast, Notice, Severity


def notice_to_dict(notice: Notice) -> dict[str, Any]:
    data = asdict(notice)
    data["severity"] = str(notice.severity)
    data["findings"] = [finding_to_dict(f) for f in notice.findings]
    data["replaces"] = [finding_to_dict(f) for f in notice.replaces]
    return data


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    data = asdict(finding)
    data["severity"] = str(finding.severity)
    data["labels"], data["facts"], data["evidence"] = dict(finding.labels), dict(finding.facts), dict(finding.evidence)
    return data


def notice_from_dict(data: Mapping[str, Any]) -> Notice:
    fields = dict(data)
    fields["severity"] = Severity(fields["severity"])
    fields["findings"] = tuple(finding_from_dict(f) for f in fields.get("findings", ()))
    fields["replaces"] = tuple(finding_from_dict(f) for f in fields.get("replaces", ()))
    return Notice(**fields)


def finding_from_dict(data: Mapping[str, Any]) -> Finding:
    fields = dict(data)
    fields["severity"] = Severity(fields["severity"])
    if fields.get("forecast") is not None:
        fields["forecast"] = Forecast(**fields["forecast"])
    return Finding(**fields)
