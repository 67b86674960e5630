"""schema checks name their columns (SPEC 8): missing, extra (allow_extra: false), mismatched."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from dqmon.checks.other import evaluate_schema
from dqmon.cli import main, render_json, render_text
from dqmon.config import CheckSpec, parse_config
from dqmon.results import CheckResult

TABLE = {"id": "integer", "Amount": "text", "note": "text", "created_at": "timestamp"}


def _spec(allow_extra: bool) -> CheckSpec:
    text = ("version: 1\nwarehouses: {main: {url: 'sqlite://'}}\ntables:\n  - name: t\n"
            "    checks:\n      - schema: {columns: {id: integer, amount: numeric, ghost: text,"
            f" created_at: timestamp}}, allow_extra: {str(allow_extra).lower()}}}\n")
    return parse_config(text, env={}).tables[0].checks[0]


def test_allow_extra_false_counts_unlisted_columns() -> None:
    """Missing, retyped and (with allow_extra: false) unlisted columns each count one."""
    value, details = evaluate_schema(_spec(allow_extra=False), TABLE)
    assert (value, details) == (3.0, {
        "missing": ["ghost"], "extra": ["note"],
        "mismatched": {"amount": {"expected": "numeric", "actual": "text"}}})


def test_allow_extra_default_ignores_unlisted_columns() -> None:
    """By default a column the file does not list is no problem, and none is named."""
    value, details = evaluate_schema(_spec(allow_extra=True), TABLE)
    assert value == 2.0
    assert details["extra"] == []


def test_a_listed_column_matched_by_case_is_not_extra() -> None:
    """`amount` in the file matches the table's `Amount`: it is mismatched, never extra."""
    _, details = evaluate_schema(_spec(allow_extra=False), TABLE)
    assert "Amount" not in details["extra"]
    assert list(details["mismatched"]) == ["amount"]


def test_a_missing_table_reports_every_column_missing_and_nothing_extra() -> None:
    """No table (no columns): each listed column is missing."""
    value, details = evaluate_schema(_spec(allow_extra=False), {})
    assert value == 4.0
    assert details == {"missing": ["id", "amount", "ghost", "created_at"], "extra": [],
                       "mismatched": {}}


def _result(details: dict[str, object]) -> CheckResult:
    return CheckResult(_spec(allow_extra=False), "main", None, 3.0, "fail", 0.01, 0.0,
                       details=details)


def test_text_and_json_name_the_columns() -> None:
    """Text prints one details line naming each column; JSON carries the details object."""
    _, details = evaluate_schema(_spec(allow_extra=False), TABLE)
    text = render_text([_result(details)])
    assert ("details: t (schema): missing: ghost; extra: note; "
            "mismatched: amount (expected numeric, actual text)") in text.splitlines()
    printed = json.loads(render_json([_result(details)]))["results"][0]
    assert printed["details"] == details


def test_run_once_prints_the_details_of_a_real_table(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Through the scan: a SQLite table's unlisted and retyped columns reach the JSON."""
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, amount TEXT, note TEXT)")
    config = tmp_path / "checks.yaml"
    config.write_text(f"version: 1\nwarehouses: {{main: {{url: 'sqlite:///{db}'}}}}\ntables:\n"
                      "  - name: t\n    checks:\n      - schema: {columns: {id: integer, "
                      "amount: numeric}, allow_extra: false}\n"
                      "      - schema: {name: loose, columns: {id: integer}}\n")
    with pytest.raises(SystemExit) as exited:
        main(["run-once", "--config", str(config), "--format", "json", "--no-export"])
    results = {r["check"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert exited.value.code == 1
    assert (results["schema"]["value"], results["schema"]["details"]) == (2, {
        "missing": [], "extra": ["note"],
        "mismatched": {"amount": {"expected": "numeric", "actual": "text"}}})
    assert (results["loose"]["value"], "details" in results["loose"]) == (0, False)
