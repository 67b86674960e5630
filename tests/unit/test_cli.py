"""The command line surface that needs no warehouse: version, usage errors, output formats."""

from __future__ import annotations

import json
import math

import pytest

from dqmon import __version__
from dqmon.cli import format_value, main, render_json, render_text
from dqmon.config import CheckSpec, Threshold
from dqmon.config.kinds import Freshness, RowCount
from dqmon.results import CheckResult


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version and exits 0."""
    assert _run(capsys, "--version") == (0, f"dqmon {__version__}\n", "")


def test_unknown_option_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad option exits 2 with click's one-line error, no traceback."""
    code, out, err = _run(capsys, "run-once", "--format", "xml")
    assert code == 2 and out == ""
    assert "Invalid value for '--format'" in err and "Traceback" not in err


def _results() -> list[CheckResult]:
    stale = CheckSpec("orders", "freshness", "freshness", "critical", Threshold(max=7200),
                      Freshness(column="created_at", max_age=7200), ("created_at",))
    count = CheckSpec("orders", "row_count", "row_count", "warning", Threshold(min=1),
                      RowCount(min=1))
    return [CheckResult(stale, "main", None, math.inf, "fail", 0.01, 0.0),
            CheckResult(count, "main", None, None, "error", 0.02, 0.0, "boom")]


def test_json_is_strict_with_inf_as_string() -> None:
    """JSON output parses strictly; +Inf is the string "+Inf" and a missing value null."""
    payload = json.loads(render_json(_results()), parse_constant=lambda c: pytest.fail(c))
    first, second = payload["results"]
    assert (first["value"], first["threshold"], first["metric"]) == (
        "+Inf", {"max": 7200}, "dq.freshness_seconds")
    assert (second["value"], second["status"], second["error"]) == (None, "error", "boom")
    assert payload["summary"] == {"passed": 0, "failed": 1, "errors": 1}


def test_text_output() -> None:
    """Text output aligns a table, groups errors, and ends with the summary line."""
    lines = render_text(_results()).splitlines()
    assert lines[1].split() == ["orders", "freshness", "+Inf", "<=", "2h00m", "FAIL", "(critical)"]
    assert lines[2].split() == ["orders", "row_count", "-", ">=", "1", "ERROR"]
    assert lines[3] == "error: orders (row_count): boom"
    assert lines[4] == "2 checks: 0 passed, 1 failed, 1 error"
    assert format_value(_results()[0]) == "+Inf"
