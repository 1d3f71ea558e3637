"""`agent rehearse SCENARIO.yaml`: what each owner would receive over a scripted timeline, and when."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import click

from agent.commands import config_option
from agent.rehearse import Transcript, load_scenario, rehearse as play


@click.command()
@click.argument("scenario", metavar="SCENARIO.yaml")
@config_option
@click.option("--bodies/--subjects", default=True, show_default=True, help="Print whole notices or subjects only.")
def rehearse(scenario: str, path: str | None, bodies: bool) -> None:
    """Play SCENARIO on a simulated clock through the real engine and print every notice per owner."""
    logging.getLogger("forewarn.checks").setLevel(logging.ERROR)  # scripted outages are not news here
    config = None
    if path:
        from agent.config import load_config

        config = load_config(path)
    transcript = play(load_scenario(scenario, config))
    click.echo(render(transcript, bodies))


def render(transcript: Transcript, bodies: bool = True) -> str:
    config = transcript.scenario.config
    counts = Counter(d.notice.owner for d in transcript.delivered)
    lines = [f"{transcript.scenario.name}: {transcript.runs} check runs, "
             f"{len(transcript.delivered)} notices delivered ({', '.join(f'{o} {n}' for o, n in counts.items()) or 'none'})"]
    for owner_id, owner in config.owners.items():
        received = transcript.for_owner(owner_id)
        if not received:
            continue
        zone = ZoneInfo(owner.timezone)
        lines += ["", f"=== {owner.department} ({owner_id}, {owner.language}, {owner.timezone}): "
                      f"{len(received)} notice(s)"]
        for d in received:
            n = d.notice
            when = datetime.fromtimestamp(d.at, zone).strftime("%a %d %b %H:%M")
            late = d.at - n.created
            held = f", held {late / 3600:.1f} h" if late >= 3600 else ""
            lines.append(f"--- {when}  via {d.channel}  [{n.phase}, {n.severity}{held}]  thread {n.thread_id}")
            lines.append(f"Subject: {n.subject}")
            if bodies:
                lines += ["", n.body, "", n.appendix, ""]
    return "\n".join(lines)
