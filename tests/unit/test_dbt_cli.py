"""`dqmon import-dbt` on the command line, without telemetry: output, exit codes, bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_dbt import MANIFEST, NOT_NULL, SINGULAR, SOURCE_UNIQUE, result, run_results

from dqmon.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["import-dbt", *args])
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def _files(tmp_path: Path, *results: dict[str, Any]) -> tuple[str, str]:
    run = tmp_path / "run_results.json"
    run.write_text(json.dumps(run_results(*results)), encoding="utf-8")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(MANIFEST), encoding="utf-8")
    return str(run), str(manifest)


@pytest.mark.parametrize(("outcomes", "code"), [
    ((("pass", 0), ("pass", 0)), 0),
    ((("pass", 0), ("warn", 4)), 0),  # a dbt warning fails a warning check: still 0
    ((("fail", 2), ("warn", 4)), 1),
    ((("fail", 2), ("error", None)), 3),
    ((("pass", 0), ("skipped", None)), 3),
])
def test_exit_codes_as_run_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                outcomes: tuple[tuple[str, int | None], ...], code: int) -> None:
    """0 passed or warned, 1 a critical test failed, 3 a test errored or was skipped."""
    (first, n1), (second, n2) = outcomes
    run, manifest = _files(tmp_path, result(NOT_NULL, first, n1),
                           result(SOURCE_UNIQUE, second, n2))
    assert _run(capsys, run, "--manifest", manifest, "--no-export")[0] == code


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json prints run-once's object: a custom check per test, failures as value."""
    run, manifest = _files(tmp_path, result(SINGULAR, "fail", 12))
    code, out, err = _run(capsys, run, "--manifest", manifest, "--no-export", "--format", "json",
                          "--warehouse", "duck")
    assert (code, err) == (1, "")
    assert json.loads(out) == {"results": [{
        "table": "order_payments", "check": "assert_no_negative_totals",
        "metric": "dq.custom_value", "value": 12.0, "threshold": {"max": 10.0},
        "status": "fail", "severity": "critical",
        "attributes": {"dq.warehouse": "duck", "dq.table": "order_payments",
                       "dq.check": "assert_no_negative_totals"},
        "duration_seconds": 0.25, "error": None}],
        "summary": {"passed": 0, "failed": 1, "errors": 0}}


def test_text_output_and_the_missing_manifest_note(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Text output is run-once's table; without --manifest a note on stderr says what it costs."""
    run, _ = _files(tmp_path, result(NOT_NULL, "warn", 2))
    code, out, err = _run(capsys, run, "--no-export")
    assert code == 0
    assert out.splitlines()[1].split() == ["shop", "not_null_orders_id", "2", "<=", "0", "FAIL",
                                           "(warning)"]
    assert out.splitlines()[-1] == "1 checks: 0 passed, 1 failed (1 warning), 0 errors"
    assert err.startswith("dqmon: no --manifest: ") and err.count("\n") == 1


@pytest.mark.parametrize("which", ["run_results", "manifest"])
def test_a_missing_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          which: str) -> None:
    """A missing RUN_RESULTS or MANIFEST exits 2 with one line naming it, no traceback."""
    run, manifest = _files(tmp_path, result(NOT_NULL))
    missing = str(tmp_path / "gone.json")
    args = [missing, "--manifest", manifest] if which == "run_results" else \
        [run, "--manifest", missing]
    assert _run(capsys, *args, "--no-export") == (2, "", f"dqmon: {missing}: no such file\n")


def test_files_swapped_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A manifest given as run results is refused by name."""
    _, manifest = _files(tmp_path)
    code, out, err = _run(capsys, manifest, "--no-export")
    assert (code, out) == (2, "")
    assert err.startswith(f"dqmon: {manifest}: not a dbt run-results file")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_the_cli_imports_no_dbt_module() -> None:
    """`import dqmon.cli` leaves the dbt import to the command (issue 11)."""
    modules = _modules_after("import sys, json, dqmon.cli; print(json.dumps(sorted(sys.modules)))")
    assert not {"dqmon.dbt", "dqmon.importdbt"} & modules
    assert "dqmon.cli" in modules


def test_no_export_imports_no_opentelemetry(tmp_path: Path) -> None:
    """With --no-export the import never loads OpenTelemetry."""
    run, manifest = _files(tmp_path, result(NOT_NULL))
    code = ("import sys, json\nfrom dqmon.cli import main\n"
            f"try:\n    main(['import-dbt', {run!r}, '--manifest', {manifest!r}, '--no-export'])\n"
            "except SystemExit:\n    pass\nprint(json.dumps(sorted(sys.modules)))")
    modules = _modules_after(code)
    assert "dqmon.importdbt" in modules
    assert not [m for m in modules if m.startswith("opentelemetry")]
