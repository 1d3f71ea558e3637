"""`agent incidents`, `ack`, `note`, `resolve` and `silence`: look at and steer the incident lifecycle.

They write to the state database; a running daemon reads it afresh every cycle."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import click

from agent.clock import wall_clock
from agent.commands import config_option
from agent.config import Config, load_config
from agent.errors import ForewarnError
from agent.dispatch import add_silence, silences
from agent.incidents import Incidents
from agent.printable import printable
from agent.store import Store
from agent.units import format_duration, parse_duration


SILENCE_FIELDS = ("check", "kind", "resource", "owner", "severity", "incident")
"""What a silence may match besides a finding's labels (see dispatch.Silence.covers)."""


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds") if ts else None


def _row(i) -> dict:
    lasted = (i.resolved - i.opened) if i.resolved and i.opened else None
    return {"id": i.id, "state": i.state, "severity": i.severity.value, "check": i.finding.check,
            "kind": i.finding.kind, "resource": i.finding.resource, "summary": i.finding.summary,
            "opened": _iso(i.opened), "last_seen": _iso(i.last_seen), "resolved": _iso(i.resolved),
            "lasted_seconds": lasted, "acked_by": i.acked_by or None, "owners": sorted(i.threads),
            "notes": i.notes, "fix": i.fix or None}


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--history", is_flag=True, help="Closed incidents instead, newest first, with what fixed them.")
def incidents(path: str | None, as_json: bool, history: bool) -> None:
    """List open and pending incidents (or, with --history, closed ones)."""
    store = Store(load_config(path).state_dir())
    try:
        found = Incidents(store).history() if history else list(Incidents(store).active.values())
    finally:
        store.close()
    rows = [_row(i) for i in found]
    if as_json:
        click.echo(json.dumps({"incidents": rows}, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no closed incidents" if history else "no open incidents")
    for row in rows:
        if history:
            lasted = format_duration(row["lasted_seconds"]) if row["lasted_seconds"] is not None else "-"
            click.echo(printable(f"{row['id']}  {row['resolved']}  lasted {lasted:<7} {row['kind']:<20} "
                                 f"{row['resource']}  fix: {row['fix'] or '(not recorded)'}", one_line=True))
        else:
            click.echo(printable(f"{row['id']}  {row['state']:<8} {row['severity']:<8} {row['kind']:<20} "
                                 f"{row['resource']}  {row['summary']}", one_line=True))


@click.command()
@config_option
@click.argument("incident_id")
@click.option("--by", default="operator", show_default=True, help="Who acknowledges it.")
def ack(path: str | None, incident_id: str, by: str) -> None:
    """Acknowledge an open incident: it will not be escalated."""
    store = Store(load_config(path).state_dir())
    try:
        if Incidents(store).ack(incident_id, by) is None:
            raise click.ClickException(f"no open incident {incident_id!r} (see: agent incidents)")
    finally:
        store.close()
    click.echo(f"incident {incident_id} acknowledged by {by}")


@click.command()
@config_option
@click.argument("incident_id")
@click.argument("text")
@click.option("--by", default=lambda: os.environ.get("SUDO_USER") or os.environ.get("USER") or "IT",
              show_default="your user name", help="Who writes it; shown in the appendix.")
def note(path: str | None, incident_id: str, text: str, by: str) -> None:
    """Tell the owners what IT is doing: TEXT goes into the next update of an open incident."""
    text = " ".join(text.split())
    if not text:
        raise click.BadParameter("the note is empty", param_hint="TEXT")
    store = Store(load_config(path).state_dir())
    try:
        incidents_ = Incidents(store)
        found = incidents_.get(incident_id)
        if found is None or found.state != "open":
            raise click.ClickException(f"no open incident {incident_id!r} (see: agent incidents)")
        incidents_.note(incident_id, text, by, wall_clock()())
    finally:
        store.close()
    click.echo(f"note added to incident {incident_id}; the owners get it with the next update (within a cycle "
               "of a running agent, or the next agent check --notify)")


@click.command()
@config_option
@click.argument("incident_id")
@click.option("--fix", default="", help="What fixed it; told to the owners the next time the same thing happens.")
def resolve(path: str | None, incident_id: str, fix: str) -> None:
    """Close an incident now (the owners get the closing notice) and record what fixed it.

    Works on an already closed incident too, to record the fix afterwards."""
    from agent.lifecycle import Lifecycle
    from agent.outbox import Outbox

    config = load_config(path)
    store = Store(config.state_dir())
    try:
        clock = wall_clock()
        lifecycle = Lifecycle(config, store, Outbox(store, config, clock=clock))
        incident = lifecycle.resolve(incident_id, " ".join(fix.split()), clock())
    finally:
        store.close()
    if incident is None:
        raise click.ClickException(f"no incident {incident_id!r} (see: agent incidents, agent incidents --history)")
    click.echo(f"incident {incident_id} resolved" + (f"; fix recorded: {incident.fix}" if incident.fix else ""))


@click.group()
def silence() -> None:
    """Silence notices for matching incidents for a while."""


@silence.command("add")
@config_option
@click.argument("matchers", nargs=-1, required=True)
@click.option("--for", "duration", default="2h", show_default=True, help="How long, e.g. 30m, 2h, 1d.")
@click.option("--by", default="operator", show_default=True)
@click.option("--comment", default="", help="Why.")
def silence_add(path: str | None, matchers: tuple[str, ...], duration: str, by: str, comment: str) -> None:
    """Add a silence: MATCHERS are key=value (check, kind, resource, owner, severity, incident or a label)."""
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(f"{duration!r}: {exc}", param_hint="--for") from None
    config = load_config(path)
    matcher = silence_matcher(config, matchers)
    store = Store(config.state_dir())
    now = wall_clock()()
    silence_id = add_silence(store, matcher, now, now + seconds, by, comment)
    store.close()
    click.echo(f"silence {silence_id} until {_iso(now + seconds)}")


def silence_matcher(config: Config, matchers: tuple[str, ...]) -> dict[str, str]:
    """key=value pairs as a silence matcher; a key no incident carries would silence nothing, so it is refused."""
    labels = set()
    for check in config.checks.values():
        keys = check.match_keys()
        if keys is None:  # a check that does not declare its labels: any key may be one of them
            return _pairs(matchers, None)
        labels.update(keys)
    return _pairs(matchers, SILENCE_FIELDS + tuple(sorted(labels)))


def _pairs(matchers: tuple[str, ...], known: tuple[str, ...] | None) -> dict[str, str]:
    matcher = {}
    for text in matchers:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ForewarnError(f"silence: {text!r} is not key=value")
        if known is not None and key not in known:
            raise ForewarnError(f"silence: {key!r} matches no incident (known: {', '.join(known)})")
        matcher[key] = value
    return matcher


@silence.command("list")
@config_option
def silence_list(path: str | None) -> None:
    """List active and future silences."""
    store = Store(load_config(path).state_dir())
    for s in silences(store, wall_clock()()):
        click.echo(printable(f"{s.id}  until {_iso(s.ends)}  {json.dumps(dict(s.matcher))}  by {s.author}  {s.comment}",
                             one_line=True))
    store.close()
