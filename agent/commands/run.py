"""`agent run`: the daemon."""

from __future__ import annotations

import json
import logging
import sys

import click

from agent.commands import config_option
from agent.errors import ForewarnError


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--listen is checked as agent.listen is, so a typo is one line and exit 2, not a crash at bind time."""
    if value is not None:
        from agent.config import AgentSection
        from agent.schema import Invalid

        try:
            AgentSection(listen=value)
        except Invalid as exc:
            raise ForewarnError(f"--listen: {exc.found[0].message} (got {value!r})") from None
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


@click.command()
@config_option
@click.option("--listen", metavar="HOST:PORT", callback=_address, help="Serve /metrics and /healthz here (default: agent.listen).")
@click.option("--web.config.file", "web_config", metavar="FILE",
              help="TLS and basic auth for /metrics (the Prometheus exporters' web-config format).")
@click.option("--log-format", type=click.Choice(["plain", "json"]), default="plain", show_default=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.pass_context
def run(ctx: click.Context, path: str | None, listen: str | None, web_config: str | None, log_format: str,
        log_level: str) -> None:
    """Run the agent: checks on schedule, incidents, notices, /metrics."""
    from agent.daemon import Daemon

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if ctx.obj and ctx.obj.get("debug") else getattr(logging, log_level.upper()))
    ctx.exit(Daemon(path, listen, web_config).run())
