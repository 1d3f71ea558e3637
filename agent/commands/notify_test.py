"""`agent notify-test`: send one clearly marked test notice through an owner's channels, once each.

It bypasses the outbox on purpose: a test should report what happens now,
not be retried for a day. Each channel prints one line; exit 0 only if all sent.
"""

from __future__ import annotations

import secrets

import click

from agent.api import Finding, NotifyError, Severity
from agent.clock import wall_clock
from agent.commands import config_option
from agent.composer import Composer, Item
from agent.config import load_config

TEST_KIND = "notify_test"


def test_finding(hostname: str) -> Finding:
    """A harmless finding that exists only to give the test notice its subject and appendix."""
    return Finding(check="forewarn", kind=TEST_KIND, severity=Severity.INFO, resource="notify-test",
                   labels={}, summary="test notice requested with agent notify-test",
                   facts={"host": hostname}, evidence={"requested by": "agent notify-test"})


@click.command("notify-test")
@click.option("--owner", "owner_id", required=True, metavar="ID", help="Owner (from the config) to send to.")
@click.option("--channel", metavar="NAME", help="Only this notifier (default: every channel of the owner).")
@config_option
@click.pass_context
def notify_test(ctx: click.Context, owner_id: str, channel: str | None, path: str | None) -> None:
    """Send a test notice to OWNER through each of their channels, and say how each went."""
    config = load_config(path)
    if owner_id not in config.owners:
        raise click.UsageError(f"unknown owner {owner_id!r} (configured: {', '.join(config.owners)})")
    if channel is not None and channel not in config.notifiers:
        raise click.UsageError(f"unknown notifier {channel!r} (configured: {', '.join(config.notifiers)})")
    channels = (channel,) if channel else config.owners[owner_id].notify
    if not channels:
        raise click.UsageError(f"owner {owner_id!r} has no channels (owners.{owner_id}.notify is empty)")
    now = wall_clock()()
    incident = f"test-{secrets.token_hex(6)}"  # a fresh thread each time: tests are never de-duplicated away
    notice = Composer(config).compose(owner_id, [Item(test_finding(config.hostname()), None)], now,
                                      phase="test", incident=incident)
    failed = 0
    for name in channels:
        settings = config.notifiers[name]
        try:
            config.registry.notifier(settings.type)(name, settings).send(notice)
            click.echo(f"{name}: sent")
        except NotifyError as exc:
            failed += 1
            click.echo(f"{name}: failed: {exc}")
    ctx.exit(1 if failed else 0)
