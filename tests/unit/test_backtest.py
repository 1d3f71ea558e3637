"""`agent backtest`: output file, summaries, causality, and one-line errors on bad input."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.backtest import main

ROOT = Path(__file__).resolve().parents[2]


def write_series(path: Path, n: int = 1500, spike_at: int | None = 1200, iso: bool = False) -> Path:
    rng = random.Random(9)
    lines = ["timestamp,value"]
    for i in range(n):
        day, rest = divmod(i * 300, 86400)
        hh, rest = divmod(rest, 3600)
        stamp = f"2024-01-{1 + day:02d}{'T' if iso else ' '}{hh:02d}:{rest // 60:02d}:00{'Z' if iso else ''}"
        value = 50.0 + rng.gauss(0.0, 1.0) + (40.0 if i == spike_at else 0.0)
        lines.append(f"{stamp},{value:.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def read_output(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def invoke(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse on bad arguments
            code = exc.code
    return Result(code, out.getvalue(), err.getvalue())


def test_backtest_writes_scores_and_alerts_for_every_row(tmp_path):
    series = write_series(tmp_path / "s.csv")
    result = invoke(str(series), "-o", str(tmp_path / "out.csv"))
    assert result.exit_code == 0, result.stderr
    rows = read_output(tmp_path / "out.csv")
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "alert"]
    assert len(rows) == 1500
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 and r["alert"] in ("0", "1") for r in rows)
    assert [i for i, r in enumerate(rows) if r["alert"] == "1"] == [1200]
    assert rows[1200]["timestamp"] == "2024-01-05 04:00:00"
    assert "1 notice(s)" in result.stdout and "2024-01-05 04:00:00" in result.stdout


def test_json_summary_is_one_object(tmp_path):
    series = write_series(tmp_path / "s.csv")
    result = invoke(str(series), "-o", str(tmp_path / "out.csv"), "--json-summary", "--sensitivity", "low")
    summary = json.loads(result.stdout)
    assert summary["points"] == 1500 and summary["sensitivity"] == "low"
    assert summary["notices"] == len(summary["notice_times"])


def test_quiet_series_reports_no_notice(tmp_path):
    series = write_series(tmp_path / "s.csv", spike_at=None)
    result = invoke(str(series), "-o", str(tmp_path / "out.csv"), "--json-summary")
    assert json.loads(result.stdout)["notices"] == 0


def test_iso_8601_timestamps_are_accepted(tmp_path):
    series = write_series(tmp_path / "s.csv", iso=True)
    result = invoke(str(series), "-o", str(tmp_path / "out.csv"), "--json-summary")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["notices"] == 1


def test_prefix_output_equals_whole_file_prefix(tmp_path):
    whole = write_series(tmp_path / "whole.csv")
    lines = whole.read_text().splitlines()
    prefix = tmp_path / "prefix.csv"
    prefix.write_text("\n".join(lines[:1001]) + "\n")
    invoke(str(whole), "-o", str(tmp_path / "w.csv"))
    invoke(str(prefix), "-o", str(tmp_path / "p.csv"))
    assert read_output(tmp_path / "p.csv") == read_output(tmp_path / "w.csv")[:1000]


def test_same_input_same_output(tmp_path):
    series = write_series(tmp_path / "s.csv")
    invoke(str(series), "-o", str(tmp_path / "a.csv"))
    invoke(str(series), "-o", str(tmp_path / "b.csv"))
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty file"),
        ("time,value\n2024-01-01 00:00:00,1\n", "line 1: missing column timestamp"),
        ("timestamp,value\n2024-01-01 00:00:00,1\nyesterday,2\n", "line 3: unparsable timestamp 'yesterday'"),
        ("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,lots\n", "line 3: value 'lots' is not a number"),
        ("timestamp,value\n2024-01-01 00:00:00,nan\n", "line 2: value 'nan' is not a number"),
        ("timestamp,value\n2024-01-01 00:00:00\n", "line 2: expected timestamp and value"),
        ("timestamp,value\n", "no data rows"),
    ],
)
def test_bad_file_exits_2_with_one_line(tmp_path, content, expected):
    series = tmp_path / "bad.csv"
    series.write_text(content)
    result = invoke(str(series), "-o", str(tmp_path / "out.csv"))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"agent: {series}: ")
    assert expected in result.stderr
    assert not (tmp_path / "out.csv").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="0123456789-: ,.T\nabcdeimnstuvlx\"", max_size=200))
def test_any_file_content_gives_a_result_or_one_error_line(tmp_path, content):
    series = tmp_path / "any.csv"
    series.write_text("timestamp,value\n" + content)
    result = invoke(str(series), "-o", str(tmp_path / "out.csv"))
    assert result.exit_code in (0, 2)
    if result.exit_code == 2:
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"agent: {series}: ")


def test_missing_file_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "nope.csv"
    result = invoke(str(missing), "-o", str(tmp_path / "out.csv"))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"agent: {missing}: cannot read: No such file or directory"


def test_runs_as_a_subprocess_and_fails_without_traceback(tmp_path):
    series = write_series(tmp_path / "s.csv")
    out = tmp_path / "out.csv"
    ok = subprocess.run([sys.executable, "-m", "agent", "backtest", str(series), "-o", str(out), "--json-summary"],
                        cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["notices"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2024-01-01 00:00:00,x\n")
    failed = subprocess.run([sys.executable, "-m", "agent", "backtest", str(bad), "-o", str(out)],
                            cwd=ROOT, capture_output=True, text=True)
    assert failed.returncode == 2
    assert failed.stderr == f"agent: {bad}: line 2: value 'x' is not a number\n"


def test_backtest_does_not_import_heavy_dependencies(tmp_path):
    series = write_series(tmp_path / "s.csv", n=200)
    code = ("import sys; sys.argv = ['agent', 'backtest', sys.argv[1], '-o', sys.argv[2]]\n"
            "from agent.__main__ import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = {'click', 'numpy', 'pandas', 'pydantic', 'boto3', 'redis', 'jinja2', 'prometheus_client',"
            " 'psutil', 'logging', 'agent.api', 'agent.daemon'} & set(sys.modules)\n"
            "print(sorted(heavy), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, str(series), str(tmp_path / "o.csv")], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert result.stderr.strip() == "[]"
    assert (tmp_path / "o.csv").read_text().count("\n") == 201


def test_backtest_is_listed_and_reachable_through_the_click_group(tmp_path):
    listing = subprocess.run([sys.executable, "-m", "agent", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert listing.returncode == 0 and "backtest" in listing.stdout
    series = write_series(tmp_path / "s.csv")
    out = tmp_path / "out.csv"
    result = subprocess.run([sys.executable, "-m", "agent", "--debug", "backtest", str(series), "-o", str(out),
                             "--json-summary"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["notices"] == 1


def test_bad_arguments_exit_2():
    result = invoke("--sensitivity", "extreme", "s.csv", "-o", "out.csv")
    assert result.exit_code == 2
    assert "invalid choice: 'extreme'" in result.stderr
    assert invoke("s.csv").exit_code == 2  # -o is required


def test_tiny_and_huge_values_give_finite_scores_not_nan(tmp_path):
    """5e-324 (a subnormal) once made the robust spread 5e-324, the score inf/inf, and the file `nan`."""
    values = [5e-324, 1e-323, 0.0, 5e-324] * 300 + [1e308, -1e308, 5e-324, 1e-320] * 10
    lines = ["timestamp,value"] + [f"2024-01-01 00:00:00,{v!r}".replace("00:00:00", f"{i // 60 % 24:02d}:{i % 60:02d}:00")
                                   for i, v in enumerate(values)]
    series = tmp_path / "tiny.csv"
    series.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    assert invoke(str(series), "-o", str(out)).exit_code == 0
    scores = [float(row["anomaly_score"]) for row in read_output(out)]
    assert len(scores) == len(values) and all(0.0 <= s <= 1.0 for s in scores)
