"""`agent check`: run the checks once, show what is wrong, and what the owners would be told.

Also a Nagios/Icinga plugin: the first line is `STATUS - summary | perfdata`
(agent.plugin_output), the exit code the worst status (0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN); a bad config or usage is UNKNOWN too (agent.cli).
"""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import click

from agent.api import CheckResult, Finding, ForewarnError, Notice, Status
from agent.commands import config_option
from agent.composer import Composer, address
from agent.config import Config, load_config
from agent.plugin_output import Limits, status_line
from agent.printable import printable
from agent.runner import Runner
from agent.store import Store

if TYPE_CHECKING:
    from agent.lifecycle import Lifecycle
    from agent.outbox import Outbox


@click.command()
@click.argument("names", nargs=-1)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (status, results, findings, notices).")
@click.option("--explain", is_flag=True, help="Show the evidence and rule behind each finding.")
@click.option("--notify", is_flag=True, help="Send the notices through the owners' channels.")
@click.pass_context
def check(ctx: click.Context, names: tuple[str, ...], path: str | None, as_json: bool, explain: bool,
          notify: bool) -> None:
    """Run the checks once (all configured ones, or NAMES)."""
    config = load_config(path)
    unknown = [n for n in names if n not in config.checks]
    if unknown:
        raise ForewarnError(f"unknown or unconfigured check {unknown[0]!r} "
                            f"(configured: {', '.join(config.checks) or 'none'})")
    store = Store(config.state_dir())
    runner = Runner(config, store)
    try:
        results = runner.run_all(names or None)
        now = runner.clock()
        findings = [f for r in results for f in r.findings]
        status = max((s.status for r in results for s in r.statuses), default=Status.OK)
        deliveries = []
        if notify:  # the daemon's lifecycle: open once, honour `for`, update, resolve
            from agent.lifecycle import Lifecycle  # incidents, dispatch and channels: only when sending
            from agent.outbox import Outbox

            outbox = Outbox(store, config, clock=runner.clock)
            notices = lifecycle_notices(Lifecycle(config, store, outbox), results, now)
            with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
                deliveries = send(outbox, notices)
        else:  # what the owners would be told about what this run saw
            composer = Composer(config)
            notices = [composer.compose(owner, items, now, sequence=int(now))
                       for owner, items in address(findings, config).items()]
    finally:
        runner.close()
        store.close()
    if as_json:
        click.echo(json.dumps(as_document(status, results, findings, notices, deliveries), ensure_ascii=False,
                              indent=2, default=str))
    else:
        click.echo(printable(status_line(status, results, lambda name: perfdata_limits(config, name)), one_line=True))
        print_report(config, results, findings, notices, explain, notify, deliveries)
    ctx.exit(int(status))


def lifecycle_notices(lifecycle: Lifecycle, results: list[CheckResult], now: float) -> list[Notice]:
    """The notices this run queues, as the daemon would: openings after `for`, updates, resolutions,
    escalations and IT's notes."""
    notices = [n for result in results for n in lifecycle.handle(result, now)]
    return notices + lifecycle.housekeeping(now)


def send(outbox: Outbox, notices: list[Notice]) -> list[dict]:
    """Writes the notices to the outbox, then tries each channel once; what fails stays queued for
    `agent run` (or the next `agent check --notify`) to retry."""
    deliveries = []
    for attempt in outbox.send_now(notices):
        entry = {"owner": attempt.owner, "channel": attempt.channel, "result": attempt.result}
        if attempt.error:
            entry["error"] = attempt.error
            click.echo(printable(f"agent: {attempt.channel}: delivery {attempt.result}: {attempt.error}", True), err=True)
        deliveries.append(entry)
    return deliveries


def as_document(status: Status, results: list[CheckResult], findings: list[Finding], notices: list[Notice],
                deliveries: list[dict]) -> dict:
    return {
        "status": status.name,
        "exit_code": int(status),
        "results": [{"check": r.check, "resource": s.resource, "status": s.status.name, "summary": s.summary,
                     "labels": dict(s.labels)} for r in results for s in r.statuses],
        "findings": [finding_document(f) for f in findings],
        "notices": [{"owner": n.owner, "department": n.department, "locale": n.locale, "severity": str(n.severity),
                     "subject": n.subject, "body": n.body, "appendix": n.appendix, "html": n.html,
                     "incident_id": n.incident_id, "thread_id": n.thread_id} for n in notices],
        "deliveries": deliveries,
    }


def finding_document(f: Finding) -> dict:
    forecast = None
    if f.forecast:
        forecast = {key: _iso(getattr(f.forecast, key)) for key in ("eta", "earliest", "latest")}
        forecast["method"] = f.forecast.method
    return {"check": f.check, "kind": f.kind, "severity": str(f.severity), "resource": f.resource,
            "summary": f.summary, "labels": dict(f.labels), "facts": dict(f.facts), "evidence": dict(f.evidence),
            "forecast": forecast, "dedup_key": f.dedup_key}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def perfdata_limits(config: Config, name: str) -> Limits:
    """What the check declares for perfdata (its optional `perfdata(config)`), at its configured limits."""
    declare = getattr(config.registry.check(name), "perfdata", None)
    return declare(config.checks[name]) if declare else {}


def print_report(config: Config, results: list[CheckResult], findings: list[Finding], notices: list[Notice],
                 explain: bool, notified: bool, deliveries: list[dict]) -> None:
    rows = [tuple(printable(cell, one_line=True) for cell in (r.check, s.resource, s.status.name, s.summary))
            for r in results for s in r.statuses]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(("CHECK", "RESOURCE", "STATUS"))]
    click.echo(f"{'CHECK':<{widths[0]}}  {'RESOURCE':<{widths[1]}}  {'STATUS':<{widths[2]}}  SUMMARY")
    for row in rows:
        colour = {"OK": "green", "WARNING": "yellow", "CRITICAL": "red"}.get(row[2], "magenta")
        status = click.style(f"{row[2]:<{widths[2]}}", fg=colour)
        click.echo(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {status}  {row[3]}")
    if explain:
        click.echo("\nFindings:" if findings else "\nNo findings: every measured value is inside its limits "
                   "and no sustained growth trend was seen.")
        for f in findings:
            click.echo(printable(f"- {f.severity} {f.kind} {f.resource}: {f.summary}", one_line=True))
            for key, value in f.evidence.items():
                click.echo(printable(f"    {key}: {value}", one_line=True))
    if notified:
        for d in deliveries:
            click.echo(printable(f"notice for {d['owner']} via {d['channel']}: {d['result']}" + (f" ({d['error']})" if "error" in d else ""), True))
        return
    if notices:
        click.echo("\nNotices that would be sent (use --notify to send them):")
    for notice in notices:
        click.echo(printable(preview(notice)))


def preview(notice: Notice) -> str:
    rule = "-" * 72
    return (f"{rule}\nTo: {notice.owner} ({notice.department}), {notice.severity}\nSubject: {notice.subject}\n\n"
            f"{notice.body}\n\n{notice.appendix}")
