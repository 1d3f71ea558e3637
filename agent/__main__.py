"""The `agent` script (and `python -m agent`).

`agent backtest` is sent straight to its stdlib-only module: importing click
alone takes longer than replaying a typical series, and backtest's start-up
time is part of what it promises. Every other command goes through click.
"""

import sys


def main() -> None:
    if sys.argv[1:2] == ["backtest"]:
        from agent.backtest import main as backtest

        sys.exit(backtest(sys.argv[2:]))
    from agent.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
