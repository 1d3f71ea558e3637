"""`agent backtest`: replay a `timestamp,value` CSV through the daemon's detector.

Imports only click, the standard library and `agent.detect`, so it starts fast.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from datetime import datetime
from pathlib import Path

import click

from agent.detect import SENSITIVITIES, SeriesDetector, preset


class SeriesError(Exception):
    """The input file cannot be replayed; the message is the one line the user sees."""


_EPOCH = datetime(1970, 1, 1)


def parse_timestamp(text: str) -> float:
    """'YYYY-MM-DD HH:MM:SS' (NAB) or ISO-8601 -> epoch seconds; naive times are read as UTC."""
    stamp = datetime.fromisoformat(text.strip())
    if stamp.tzinfo is None:
        return (stamp - _EPOCH).total_seconds()
    return stamp.timestamp()


def read_series(path: Path) -> tuple[list[str], list[float], list[float]]:
    """Read and check the whole file: (timestamp texts, epoch seconds, values)."""
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise SeriesError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        rows = csv.reader(handle)
        try:
            header = [name.strip().lower() for name in next(rows)]
        except StopIteration:
            raise SeriesError(f"{path}: empty file, expected a header row 'timestamp,value'") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SeriesError(f"{path}: line 1: not a CSV file ({exc})") from None
        missing = [name for name in ("timestamp", "value") if name not in header]
        if missing:
            raise SeriesError(f"{path}: line 1: missing column {' and '.join(missing)} in the header row")
        ts_col, value_col = header.index("timestamp"), header.index("value")
        width = max(ts_col, value_col) + 1
        stamps: list[str] = []
        epochs: list[float] = []
        values: list[float] = []
        try:
            for row in rows:
                if not row:
                    continue
                line = rows.line_num
                if len(row) < width:
                    raise SeriesError(f"{path}: line {line}: expected timestamp and value, got {len(row)} field(s)")
                stamp = row[ts_col]
                try:
                    epochs.append(parse_timestamp(stamp))
                except ValueError:
                    raise SeriesError(f"{path}: line {line}: unparsable timestamp {stamp.strip()[:40]!r}") from None
                try:
                    value = float(row[value_col])
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise SeriesError(f"{path}: line {line}: value {row[value_col].strip()[:40]!r} is not a number")
                stamps.append(stamp.strip())
                values.append(value)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SeriesError(f"{path}: line {rows.line_num}: not a CSV file ({exc})") from None
    if not values:
        raise SeriesError(f"{path}: no data rows after the header")
    return stamps, epochs, values


def replay(epochs: list[float], values: list[float], sensitivity: str) -> tuple[list[float], list[bool]]:
    """Run a fresh detector over the series, one point at a time (causal by construction)."""
    update = SeriesDetector(preset(sensitivity)).update
    scores: list[float] = []
    alerts: list[bool] = []
    for ts, value in zip(epochs, values):
        score, alert, _ = update(ts, value)
        scores.append(score)
        alerts.append(alert)
    return scores, alerts


def write_result(out, stamps: list[str], values: list[float], scores: list[float], alerts: list[bool]) -> None:
    """Write `timestamp,value,anomaly_score,alert`."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("timestamp", "value", "anomaly_score", "alert"))
    writer.writerows(
        (stamp, value, f"{score:.4f}", 1 if alert else 0)
        for stamp, value, score, alert in zip(stamps, values, scores, alerts)
    )


def _fail(message: str) -> None:
    click.echo(f"agent: {message}", err=True)
    sys.exit(2)


@click.command()
@click.argument("series", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write timestamp,value,anomaly_score,alert ('-' for stdout).")
@click.option("--sensitivity", type=click.Choice(SENSITIVITIES), default="medium", show_default=True,
              help="How readily a notice opens.")
@click.option("--json-summary", is_flag=True, help="Print the summary as one JSON object.")
def backtest(series: Path, output: Path, sensitivity: str, json_summary: bool) -> None:
    """Replay SERIES (a timestamp,value CSV) through the detector, causally, as the daemon would."""
    try:
        stamps, epochs, values = read_series(series)
    except SeriesError as exc:
        _fail(str(exc))
    scores, alerts = replay(epochs, values, sensitivity)
    to_stdout = str(output) == "-"
    try:
        if to_stdout:
            write_result(sys.stdout, stamps, values, scores, alerts)
        else:
            with open(output, "w", newline="", encoding="utf-8") as out:
                write_result(out, stamps, values, scores, alerts)
    except OSError as exc:
        _fail(f"{output}: cannot write: {exc.strerror or exc}")
    notices = [stamp for stamp, alert in zip(stamps, alerts) if alert]
    if json_summary:
        summary = {"file": str(series), "points": len(values), "sensitivity": sensitivity,
                   "notices": len(notices), "notice_times": notices, "max_score": round(max(scores), 4)}
        click.echo(json.dumps(summary), err=to_stdout)
        return
    lines = [f"{series}: {len(values)} points ({stamps[0]} .. {stamps[-1]}), sensitivity {sensitivity}: "
             f"{len(notices)} notice(s) would have opened" + (":" if notices else ".")]
    lines += [f"  {stamp}" for stamp in notices]
    click.echo("\n".join(lines), err=to_stdout)


if __name__ == "__main__":
    backtest()
