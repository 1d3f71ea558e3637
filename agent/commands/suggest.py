"""`agent suggest lifecycle BUCKET` and `agent suggest index TARGET QUERY`: fixes for a person to review and apply.

stdout holds only what would be applied: the lifecycle configuration (JSON that
PutBucketLifecycleConfiguration accepts, the bucket's existing rules included, since
a put replaces them all), or the CREATE INDEX statement; why, and what it saves or
costs, go to stderr. Nothing is ever applied from here. Each reaches its check
through the registry and a `suggest_*` method of the check, never by importing it.
"""

from __future__ import annotations

import json
import logging


import click

from agent.api import Context, ForewarnError, format_bytes
from agent.clock import wall_clock
from agent.commands import config_option
from agent.config import load_config
from agent.store import Store


@click.group()
def suggest() -> None:
    """Propose configuration that fixes what the checks found (printed, never applied)."""


@suggest.command()
@click.argument("bucket")
@config_option
def lifecycle(bucket: str, path: str | None) -> None:
    """Print a lifecycle configuration for BUCKET that expires what piles up."""
    config = load_config(path)
    settings = config.checks.get("cloud_storage")
    if settings is None:
        raise ForewarnError("the cloud_storage check is not configured (add checks.cloud_storage to the config)")
    check = config.registry.check("cloud_storage")(settings)
    store = Store(config.state_dir())  # the size history the check stored says how fast it grew
    try:
        ctx = Context(now=wall_clock(), history=store, hostname=config.hostname(),
                      log=logging.getLogger("forewarn.checks.cloud_storage"))
        suggestion = check.suggest_lifecycle(bucket, ctx)
    finally:
        store.close()
    click.echo(json.dumps(dict(suggestion.configuration), indent=2, default=str))
    if suggestion.added:
        click.echo(f"Estimated saving: about {suggestion.saving:,.2f} {suggestion.currency} per month "
                   f"(new rules: {', '.join(suggestion.added)}). Review it, then apply it yourself:\n"
                   f"  aws s3api put-bucket-lifecycle-configuration --bucket {bucket} "
                   f"--lifecycle-configuration file://rules.json", err=True)
    else:
        click.echo("The bucket's current rules already cover everything found; nothing to add.", err=True)


@suggest.command()
@click.argument("target")
@click.argument("query")
@config_option
def index(target: str, query: str, path: str | None) -> None:
    """Print a CREATE INDEX CONCURRENTLY statement that stops QUERY on TARGET reading a large table in full."""
    config = load_config(path)
    settings = config.checks.get("database")
    if settings is None:
        raise ForewarnError("the database check is not configured (add checks.database to the config)")
    check = config.registry.check("database")(settings)
    ctx = Context(now=wall_clock(), history=_NoHistory(), hostname=config.hostname(),
                  log=logging.getLogger("forewarn.checks.database"))
    suggestion = check.suggest_index(target, query, ctx)
    click.echo(suggestion.statement)
    click.echo(f"Why: {suggestion.why}.\nEstimated size: about {format_bytes(suggestion.size_bytes)}. "
               "CONCURRENTLY builds it without blocking writes; review it, then run it yourself "
               "(outside a transaction block).", err=True)


class _NoHistory:
    """`suggest index` reads the database's own statistics; it needs no stored series."""

    def series(self, name: str, labels: object, since: float) -> list[tuple[float, float]]:
        return []
