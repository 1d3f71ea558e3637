"""`agent backtest`: replay a `timestamp,value` CSV through the daemon's detector.

Imports only the standard library and `agent.detect`, so it starts fast: the
`agent` script sends `backtest` here before importing click (`agent/__main__.py`).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from datetime import datetime
from pathlib import Path

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
        score, alert = update(ts, value)[:2]
        scores.append(score)
        alerts.append(alert)
    return scores, alerts


def write_result(out, stamps: list[str], values: list[float], scores: list[float], alerts: list[bool]) -> None:
    """Write `timestamp,value,anomaly_score,alert`."""
    out.write("timestamp,value,anomaly_score,alert\n")
    if any("," in stamp or '"' in stamp for stamp in stamps):  # e.g. ISO "12:00:00,5": quote as csv does
        stamps = ['"' + stamp.replace('"', '""') + '"' for stamp in stamps]
    out.write("".join([f"{stamp},{value!r},{score:.4f},{1 if alert else 0}\n"
                       for stamp, value, score, alert in zip(stamps, values, scores, alerts)]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent backtest",
        description="Replay SERIES (a timestamp,value CSV) through the detector, causally, as the daemon would.")
    parser.add_argument("series", metavar="SERIES", type=Path, help="CSV with timestamp and value columns.")
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help="Where to write timestamp,value,anomaly_score,alert ('-' for stdout).")
    parser.add_argument("--sensitivity", choices=SENSITIVITIES, default="medium",
                        help="How readily a notice opens (default: medium).")
    parser.add_argument("--json-summary", action="store_true", help="Print the summary as one JSON object.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `agent backtest`; returns the exit code (2 for a bad file, with one line on stderr)."""
    args = build_parser().parse_args(argv)
    series, output, sensitivity = args.series, args.output, args.sensitivity
    try:
        stamps, epochs, values = read_series(series)
    except SeriesError as exc:
        return _fail(str(exc))
    scores, alerts = replay(epochs, values, sensitivity)
    to_stdout = str(output) == "-"
    try:
        if to_stdout:
            write_result(sys.stdout, stamps, values, scores, alerts)
        else:
            with open(output, "w", newline="", encoding="utf-8") as out:
                write_result(out, stamps, values, scores, alerts)
    except OSError as exc:
        return _fail(f"{output}: cannot write: {exc.strerror or exc}")
    summary_to = sys.stderr if to_stdout else sys.stdout
    notices = [stamp for stamp, alert in zip(stamps, alerts) if alert]
    if args.json_summary:
        import json  # only here: the plain summary needs no JSON, and start-up counts

        summary = {"file": str(series), "points": len(values), "sensitivity": sensitivity,
                   "notices": len(notices), "notice_times": notices, "max_score": round(max(scores), 4)}
        print(json.dumps(summary), file=summary_to)
        return 0
    lines = [f"{series}: {len(values)} points ({stamps[0]} .. {stamps[-1]}), sensitivity {sensitivity}: "
             f"{len(notices)} notice(s) would have opened" + (":" if notices else ".")]
    lines += [f"  {stamp}" for stamp in notices]
    print("\n".join(lines), file=summary_to)
    return 0


def _fail(message: str) -> int:
    print(f"agent: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
