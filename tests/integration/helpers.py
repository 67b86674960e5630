"""Run the real CLI in-process against a config written for the test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dqmon.cli import main


def write_config(tmp_path: Path, url: str, tables_yaml: str, *, warehouse_extra: str = "") -> Path:
    """Write a checks.yaml with one warehouse `main` and the given `tables:` block."""
    path = tmp_path / "checks.yaml"
    path.write_text(
        "version: 1\n"
        "warehouses:\n"
        f"  main:\n    url: {url}\n{warehouse_extra}"
        "tables:\n" + tables_yaml
    )
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `dqmon ARGS` in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def run_json(capsys: pytest.CaptureFixture[str], config: Path,
             *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """Run `run-once --format json`; return the exit code and results keyed by check name."""
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--format", "json",
                             "--no-export", *args)
    assert out, f"no JSON on stdout; stderr: {err}"
    payload = json.loads(out)
    return code, {r["check"]: r for r in payload["results"]}
