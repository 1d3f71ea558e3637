"""`agent config validate` and `agent init`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import click

from agent.commands import config_option
from agent.errors import ForewarnError
from agent.config import load_config

EXAMPLE = "forewarn.example.yaml"


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command()
@config_option
def validate(path: str | None) -> None:
    """Check the config; print one line per problem and exit 2, or exit 0."""
    loaded = load_config(path)  # ConfigError becomes one line per problem, exit 2
    for line in loaded.warnings:
        click.echo(f"warning: {line}", err=True)
    click.echo(f"{loaded.source}: OK ({len(loaded.checks)} checks, {len(loaded.owners)} owners, "
               f"{len(loaded.resources)} resources, {len(loaded.notifiers)} notifiers)")


@click.command()
@click.argument("path", default="forewarn.yaml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str, force: bool) -> None:
    """Write an annotated example config to PATH (default ./forewarn.yaml)."""
    target = Path(path)
    if target.exists() and not force:
        raise click.ClickException(f"{target} already exists; use --force to overwrite it")
    try:
        target.write_text(files("templates").joinpath(EXAMPLE).read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as exc:
        raise ForewarnError(f"cannot write {target}: {exc.strerror}") from None
    click.echo(f"wrote {target}; check it with: agent config validate -c {target}")
