"""`agent incidents`, `agent ack` and `agent silence`: look at and steer the incident lifecycle."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from agent.clock import wall_clock
from agent.commands import config_option
from agent.config import load_config
from agent.dispatch import add_silence, silences
from agent.incidents import Incidents
from agent.store import Store
from agent.units import parse_duration

def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds") if ts else None


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def incidents(path: str | None, as_json: bool) -> None:
    """List open and pending incidents."""
    store = Store(load_config(path).state_dir())
    rows = [{"id": i.id, "state": i.state, "severity": i.severity.value, "check": i.finding.check,
             "kind": i.finding.kind, "resource": i.finding.resource, "summary": i.finding.summary,
             "opened": _iso(i.opened), "last_seen": _iso(i.last_seen), "acked_by": i.acked_by or None,
             "owners": sorted(i.threads)} for i in Incidents(store).active.values()]
    store.close()
    if as_json:
        click.echo(json.dumps({"incidents": rows}, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no open incidents")
    for row in rows:
        click.echo(f"{row['id']}  {row['state']:<8} {row['severity']:<8} {row['kind']:<20} {row['resource']}  "
                   f"{row['summary']}")


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
    matcher = {}
    for text in matchers:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{text!r} is not key=value", param_hint="MATCHERS")
        matcher[key] = value
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(f"{duration!r}: {exc}", param_hint="--for") from None
    store = Store(load_config(path).state_dir())
    now = wall_clock()()
    silence_id = add_silence(store, matcher, now, now + seconds, by, comment)
    store.close()
    click.echo(f"silence {silence_id} until {_iso(now + seconds)}")


@silence.command("list")
@config_option
def silence_list(path: str | None) -> None:
    """List active and future silences."""
    store = Store(load_config(path).state_dir())
    for s in silences(store, wall_clock()()):
        click.echo(f"{s.id}  until {_iso(s.ends)}  {json.dumps(dict(s.matcher))}  by {s.author}  {s.comment}")
    store.close()
