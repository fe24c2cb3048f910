"""`bench/run --quick --json` on its cheapest row: the command runs and its JSON has the shape
machines read (figures and baselines as numbers, a goal, the machine's load). No figure is
checked against a number: benchmarks print figures, tests do not time anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


@pytest.mark.slow
def test_quick_json_has_every_field() -> None:
    out = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--json", "propagation"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["mode"] == "quick"
    assert report["errors"] == []
    assert len(report["machine"]["before"]["load_1_5_15"]) == 3
    (row,) = report["rows"]
    assert row["key"].startswith("spread.")
    for name in ("value", "baseline", "ratio"):
        assert isinstance(row[name], int | float), name
    assert row["goal"]
    assert isinstance(row["met"], bool)
    assert "rounds" in row["detail"]


def test_unknown_row_is_one_clear_line() -> None:
    out = subprocess.run(
        [sys.executable, str(RUN), "nosuchrow"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "unknown row nosuchrow; choose from getview" in out.stderr
    assert "Traceback" not in out.stderr
