"""The subcommands of `agent`, one module each, imported only when used."""

import click

config_option = click.option("-c", "--config", "path", metavar="FILE",
                             help="Config file (default: the search path).")
"""`-c/--config FILE`, the same on every command that reads the config."""
