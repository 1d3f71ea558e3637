"""The `agent` command. Subcommands are imported only when used, so each starts fast."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from agent import __version__

COMMANDS = {
    "check": "agent.commands.check:check",
    "config": "agent.commands.config:config",
    "init": "agent.commands.config:init",
    "backtest": "agent.cli:backtest",
    "run": "agent.commands.run:run",
    "incidents": "agent.commands.incidents:incidents",
    "ack": "agent.commands.incidents:ack",
    "note": "agent.commands.incidents:note",
    "resolve": "agent.commands.incidents:resolve",
    "rehearse": "agent.commands.rehearse:rehearse",
    "silence": "agent.commands.incidents:silence",
    "notify-test": "agent.commands.notify_test:notify_test",
    "suggest": "agent.commands.suggest:suggest",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agent (forewarn)")
@click.option("--debug", is_flag=True, help="Verbose logs, and tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Forewarn: warns the people who own a service, in plain words, before it breaks."""
    ctx.obj = {"debug": debug}
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def backtest(args: tuple[str, ...]) -> None:
    """Replay a timestamp,value CSV through the detector, as the daemon would."""
    from agent.backtest import main as backtest_main

    sys.exit(backtest_main(list(args)))


PLUGIN_COMMANDS = ("check",)
"""Run by Nagios/Icinga, where exit 2 pages as CRITICAL: their bad input is 3, UNKNOWN, per the plugin guidelines."""


def main() -> None:
    """Entry point: a ForewarnError or usage error becomes one line on stderr and exit 2 (3 for a plugin
    command, which also prints `UNKNOWN - ...` as its status line), never a traceback."""
    from agent.errors import ConfigError, ForewarnError

    plugin = is_plugin(sys.argv[1:])
    try:
        code = cli.main(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        fail(plugin, 2, exc.format_message())
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(line, err=True)
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        fail(plugin, 2, f"invalid configuration: {exc.problems[0]}{more}")
    except ForewarnError as exc:
        click.echo(f"agent: {exc}", err=True)
        fail(plugin, 2, str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: one line unless --debug
        if "--debug" in sys.argv:
            raise
        click.echo(f"agent: internal error: {exc.__class__.__name__}: {exc} (run with --debug for details)", err=True)
        fail(plugin, 3, f"internal error: {exc.__class__.__name__}")


def is_plugin(args: list[str]) -> bool:
    words = [a for a in args if a != "--debug"]
    return bool(words) and words[0] in PLUGIN_COMMANDS


def fail(plugin: bool, code: int, message: str) -> None:
    """A plugin command prints its `UNKNOWN - ...` status line (unless stdout is JSON) and exits 3;
    any other exits `code` (2: `agent run`'s systemd unit does not restart on it)."""
    if not plugin:
        sys.exit(code)
    if "--json" not in sys.argv:
        click.echo(f"UNKNOWN - {(message.splitlines() or ['failed'])[0]}")
    sys.exit(3)


if __name__ == "__main__":
    main()
