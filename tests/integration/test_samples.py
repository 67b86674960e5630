"""`run-once --samples N` on PostgreSQL (SPEC 12): the offending rows, printed and nowhere else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli, write_config
from otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.postgres

LONG = "long-invalid-" + "z" * 140  # cut to 100 characters when shown
ROWS = [  # id, email, customer_id, created_at
    (1, "a@x.io", 1, datetime(2026, 11, 20, 10)),
    (2, "not-an-email-7f3k", 1, datetime(2026, 11, 20, 11)),  # invalid
    (3, None, 2, datetime(2026, 11, 20, 12)),  # incomplete (not considered by validity)
    (4, "still-wrong-9q2x", 99, datetime(2026, 11, 21, 10)),  # invalid; customer 99 unknown
    (5, "b@x.io", 2, datetime(2026, 11, 21, 11)),
    (5, LONG, 2, datetime(2026, 11, 21, 12)),  # invalid; id 5 twice
]
INVALID = {(2, "not-an-email-7f3k"), (4, "still-wrong-9q2x"), (5, LONG[:99] + "…")}
CHECKS = """    checks:
      - validity: {name: email_format, column: email, regex: '^[^@]+@[^@]+$'}
      - completeness: {columns: [email]}
      - uniqueness: {columns: [id]}
      - reference: {column: customer_id, to: sample_customers.id}
      - row_count: {min: 1}
"""
TABLES = (f"  - name: orders\n    table: sample_orders\n    key: [id]\n{CHECKS}"
          f"  - name: private\n    table: sample_orders\n    key: [id]\n    samples: false\n{CHECKS}"
          "  - name: daily\n    table: sample_orders\n    key: [id]\n"
          f"    partition: {{column: created_at, granularity: day}}\n{CHECKS}")


@pytest.fixture
def config(make_table, pg_url: str, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Orders with three invalid emails, one NULL, a duplicate id and an unknown customer."""
    make_table("sample_orders", {"id": "integer", "email": "text", "customer_id": "integer",
                                 "created_at": "timestamp"}, ROWS)
    make_table("sample_customers", {"id": "integer"}, [(1,), (2,)])
    return write_config(tmp_path, pg_url, TABLES)


def _json(capsys: pytest.CaptureFixture[str], config: Path,
          *args: str) -> dict[tuple[str, str], dict[str, Any]]:
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--format", "json",
                             "--no-export", *args)
    assert code == 1, err
    return {(r["table"], r["check"]): r for r in json.loads(out)["results"]}


def _pairs(result: dict[str, Any]) -> set[tuple[Any, Any]]:
    return {(s["key"]["id"], s["value"]) for s in result["samples"]}


def test_a_failing_validity_check_shows_exactly_its_offending_rows(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--samples 3 gives the three invalid rows, by key, the long value cut to 100 characters."""
    results = _json(capsys, config, "--samples", "3", "--table", "orders")
    assert _pairs(results[("orders", "email_format")]) == INVALID
    assert "samples" not in results[("orders", "row_count")]  # not a sampled kind
    fewer = _json(capsys, config, "--samples", "2", "--table", "orders")
    assert len(fewer[("orders", "email_format")]["samples"]) == 2
    assert _pairs(fewer[("orders", "email_format")]) < INVALID


def test_each_sampled_kind_names_its_offenders(config: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """NULLs for completeness, the duplicated key for uniqueness, the unknown value for
    reference; a partition's samples come from its slice only."""
    results = _json(capsys, config, "--samples", "5", "--table", "orders")
    assert results[("orders", "completeness_email")]["samples"] == [
        {"key": {"id": 3}, "value": None}]
    assert results[("orders", "uniqueness_id")]["samples"] == [{"key": {}, "value": 5}]
    assert results[("orders", "reference_customer_id")]["samples"] == [
        {"key": {"id": 4}, "value": 99}]
    daily = _json(capsys, config, "--samples", "5", "--table", "daily",
                  "--partition", "2026-11-20")
    assert _pairs(daily[("daily", "email_format")]) == {(2, "not-an-email-7f3k")}
    assert "samples" not in daily[("daily", "uniqueness_id")]  # it passes in that slice


def test_samples_false_shows_none(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A table with `samples: false` fails the same checks and shows no row of them."""
    results = _json(capsys, config, "--samples", "3", "--table", "private")
    assert results[("private", "email_format")]["status"] == "fail"
    assert not any("samples" in r for r in results.values())
    code, out, _ = run_cli(capsys, "run-once", "--config", str(config), "--no-export",
                           "--samples", "3", "--table", "private")
    assert code == 1
    assert "samples:" not in out and "not-an-email" not in out


def test_samples_need_a_positive_count(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--samples 0 is a usage error (exit 2) and runs nothing."""
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--samples", "0")
    assert (code, out) == (2, "")
    assert "'--samples': 0 is not in the range x>=1" in err


def test_samples_reach_stdout_only_never_telemetry_or_logs(config: Path) -> None:
    """The text output lists the three rows; the same run's OTLP export (metrics and spans,
    as received by a real collector) and its stderr hold none of their values."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    with OtlpReceiver() as receiver:
        proc = subprocess.run(
            [sys.executable, "-m", "dqmon", "run-once", "--config", str(config),
             "--samples", "3", "--table", "orders"],
            env={**clean, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
            capture_output=True, text=True, timeout=120, check=False)
        exported = [r.SerializeToString() for r in receiver.metric_requests
                    + receiver.span_requests]
        spans = receiver.spans()
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    start = lines.index("samples: orders (email_format): 3 offending row(s)")
    assert set(lines[start + 1:start + 4]) == {f"  id={key}: {json.dumps(value, ensure_ascii=False)}"
                                               for key, value in INVALID}
    assert exported and any(s.name == "dq.scan orders" for s in spans)  # telemetry did go out
    for value in ("not-an-email-7f3k", "still-wrong-9q2x", LONG[:40]):
        assert value in proc.stdout
        assert value not in proc.stderr
        assert not any(value.encode() in request for request in exported), value
