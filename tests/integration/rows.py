"""The rows the statistics and segments tests share, and how they read the CLI's results."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli

# The shared rows: NULLs in every column, two rows a day on 2026-01-10 and -11, edge times.
COLUMNS = {"id": "int", "country": "text", "amount": "money", "email": "text",
           "status": "text", "created_at": "timestamp", "day": "date"}
D = Decimal
ROWS: list[tuple[Any, ...]] = [
    (1, "DE", D("10.00"), "a@x.io", "paid", datetime(2026, 1, 10, 10), date(2026, 1, 10)),
    (2, "DE", D("20.00"), "bb@x.io", "test", datetime(2026, 1, 10, 23, 59, 59), date(2026, 1, 10)),
    (3, "DE", None, None, "paid", datetime(2026, 1, 11), date(2026, 1, 11)),
    (4, "FR", D("5.50"), "ccc@x.io", "dummy", datetime(2026, 1, 11, 8), date(2026, 1, 11)),
    (5, "FR", D("100.00"), "test@x", "paid", datetime(2030, 1, 1), date(2030, 1, 1)),
    (6, None, D("7.25"), "é@x.io", None, datetime(2019, 12, 31, 23, 59, 59), date(2019, 12, 31)),
    (7, "US", D("-3.00"), "dd@x.io", "shipped", datetime(2020, 1, 1), date(2020, 1, 1)),
    (8, "US", D("40.00"), "ee@x.io", "paid", None, None),
]


Results = dict[tuple[str, str | None], dict[str, Any]]  # (check, dq.segment) -> result


def run_results(capsys: pytest.CaptureFixture[str], config: Path,
                *args: str) -> tuple[int, Results, list[dict[str, Any]]]:
    """Run `run-once --format json`; return the exit code, results by (check, segment), and
    the results in the order printed."""
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--format", "json",
                             "--no-export", *args)
    assert out, f"no JSON on stdout; stderr: {err}"
    results = json.loads(out)["results"]
    by_key = {(r["check"], r["attributes"].get("dq.segment")): r for r in results}
    assert len(by_key) == len(results), "two results for one (check, segment)"
    return code, by_key, results
