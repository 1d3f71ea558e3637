"""`agent suggest lifecycle BUCKET`: the cleanup rules a bucket lacks, for a person to review and apply.

stdout holds only the lifecycle configuration (JSON that PutBucketLifecycleConfiguration
accepts, the bucket's existing rules included, since a put replaces them all); the
estimated saving goes to stderr. Nothing is ever applied from here.
"""

from __future__ import annotations

import json
import logging


import click

from agent.api import Context, ForewarnError
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
