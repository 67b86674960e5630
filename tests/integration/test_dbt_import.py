"""`dqmon import-dbt` on a real dbt run: tests/dbt_project built by dbt-core with dbt-duckdb,
then published to a real OTLP gRPC receiver (SPEC 13, issue 13).

dbt writes its target, logs and DuckDB file under the session's temporary directory, never
into the repository; the project has 8 data tests: 4 pass, one warns (severity warn), two
fail (a generic and a singular one) and one errors (a column that does not exist).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import need_service
from otlp_receiver import MetricPoint, OtlpReceiver

PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
ACCEPTED = "accepted_values_order_payments_status__placed__shipped__completed"

# check -> (dq.table, dq.column, failures or None, passed, up, dq.severity)
TESTS = {
    "unique_orders_id": ("orders", "id", 0, 1, 1, "critical"),
    "not_null_orders_id": ("orders", "id", 0, 1, 1, "critical"),
    "not_null_orders_customer_id": ("orders", "customer_id", 2, 0, 1, "warning"),
    "source_unique_shop_payments_id": ("shop.payments", "id", 0, 1, 1, "critical"),
    "source_not_null_shop_payments_amount": ("shop.payments", "amount", 0, 1, 1, "critical"),
    ACCEPTED: ("order_payments", "status", 1, 0, 1, "critical"),
    "assert_no_negative_totals": ("order_payments", None, 2, 0, 1, "critical"),
    "broken_reference": ("order_payments", None, None, 0, 0, "critical"),
}
OTHER_NODES = {"dbt.operation dqmon_shop-on-run-start-0", "dbt.operation dqmon_shop-on-run-start-1",
               "dbt.seed raw_orders", "dbt.model orders", "dbt.model order_payments"}

Series = tuple[str, frozenset[tuple[str, Any]]]


def dbt(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run dbt on tests/dbt_project with everything it writes under `workdir`."""
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    command = [sys.executable, "-m", "dbt.cli.main", *args, "--project-dir", str(PROJECT),
               "--profiles-dir", str(workdir), "--target-path", str(workdir / "target"),
               "--log-path", str(workdir / "logs")]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def dbt_run(workdir: Path, *args: str) -> Path:
    """Run dbt into `workdir` (its own DuckDB file); return its target directory."""
    need_dbt()
    workdir.mkdir()
    (workdir / "profiles.yml").write_text(
        "dqmon_shop:\n  target: test\n  outputs:\n    test:\n      type: duckdb\n"
        f"      path: {json.dumps(str(workdir / 'shop.duckdb'))}\n      threads: 4\n",
        encoding="utf-8")
    proc = dbt(workdir, *args)
    assert proc.returncode == 1, proc.stdout[-3000:]  # dbt exits 1 when a test fails
    return workdir / "target"


def need_dbt() -> None:
    """Skip without dbt-duckdb; under CI its absence fails the test (never green by skipping)."""
    try:
        import dbt.adapters.duckdb  # noqa: F401
    except ImportError as exc:
        need_service("dbt-core with dbt-duckdb", str(exc))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The target directory of one `dbt build` of the whole project."""
    return dbt_run(tmp_path_factory.mktemp("dbt") / "build", "build")


@pytest.fixture(scope="module")
def tested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The target directory of a `dbt build` without the test that errors."""
    return dbt_run(tmp_path_factory.mktemp("dbt") / "partial", "build", "--exclude",
                   "broken_reference")


def import_dbt(target: Path, env: dict[str, str], *args: str,
               manifest: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `dqmon import-dbt` on a dbt target in a fresh process, telemetry env from `env`."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("OTEL_") and k not in ("TRACEPARENT", "TRACESTATE")}
    extra = ["--manifest", str(target / "manifest.json")] if manifest else []
    return subprocess.run([sys.executable, "-m", "dqmon", "import-dbt",
                           str(target / "run_results.json"), *extra, *args],
                          env={**clean, **env}, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def exported(built: Path) -> dict[str, Any]:
    """One import of the build, exporting to a receiver inside a caller's trace."""
    with OtlpReceiver() as receiver:
        proc = import_dbt(built, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                                  "TRACEPARENT": f"00-{TRACE_ID}-{PARENT_ID}-01"})
        return {"proc": proc, "points": receiver.points(), "spans": receiver.spans(),
                "metric_requests": len(receiver.metric_requests)}


def by_series(points: list[MetricPoint], name: str) -> dict[Series, float]:
    return {(p.name, frozenset(p.attributes.items())): p.value for p in points if p.name == name}


def attrs(check: str, **extra: str) -> frozenset[tuple[str, Any]]:
    """The value gauge's attributes of a test (plus `extra`)."""
    table, column, *_ = TESTS[check]
    base = {"dq.warehouse": "dbt", "dq.table": table, "dq.check": check}
    return frozenset({**base, **({"dq.column": column} if column else {}), **extra}.items())


def test_the_build_exits_3_and_prints_every_test(exported: dict[str, Any]) -> None:
    """A test that errored beats the failing critical ones: exit 3; stdout has all 8 tests."""
    proc = exported["proc"]
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr == ""  # the manifest was given: no note
    assert proc.stdout.splitlines()[-1] == "8 checks: 4 passed, 3 failed (1 warning), 1 error"


def test_failures_are_the_custom_value(exported: dict[str, Any]) -> None:
    """dq.custom_value is each test's failure count; the errored test has no value."""
    expected = {("dq.custom_value", attrs(check)): float(failures)
                for check, (_, _, failures, *_) in TESTS.items() if failures is not None}
    assert by_series(exported["points"], "dq.custom_value") == expected


def test_status_gauges_carry_severity(exported: dict[str, Any]) -> None:
    """dq.check.passed and dq.check.up per test, with dq.severity from the test's config."""
    for gauge, index in (("dq.check.passed", 3), ("dq.check.up", 4)):
        expected = {(gauge, attrs(check, **{"dq.severity": spec[5]})): float(spec[index])
                    for check, spec in TESTS.items()}
        assert by_series(exported["points"], gauge) == expected, gauge


def test_thresholds_and_times_come_from_dbt(exported: dict[str, Any], built: Path) -> None:
    """dbt's `!= 0` is a max of 0; duration and last run are dbt's execution time and start."""
    points = exported["points"]
    assert by_series(points, "dq.check.threshold") == {
        ("dq.check.threshold", attrs(check, **{"dq.severity": spec[5], "dq.bound": "max"})): 0.0
        for check, spec in TESTS.items()}
    run = json.loads((built / "run_results.json").read_text(encoding="utf-8"))
    for item in (r for r in run["results"] if r["unique_id"].startswith("test.")):
        check = item["unique_id"].split(".")[2]
        key = attrs(check, **{"dq.severity": TESTS[check][5]})
        started = next(t["started_at"] for t in item["timing"] if t["name"] == "execute")
        assert by_series(points, "dq.check.last_run_timestamp_seconds")[
            ("dq.check.last_run_timestamp_seconds", key)] == datetime.fromisoformat(
                started).timestamp()
        assert by_series(points, "dq.check.duration_seconds")[
            ("dq.check.duration_seconds", key)] == pytest.approx(item["execution_time"])
    assert exported["metric_requests"] == 1  # one export, like run-once


def test_a_span_per_node_under_the_callers_trace(exported: dict[str, Any]) -> None:
    """dq.run joins TRACEPARENT; each dbt node is its child; only the errored test is ERROR."""
    spans = {s.name: s for s in exported["spans"]}
    assert set(spans) == {"dq.run", *OTHER_NODES, *(f"dbt.test {check}" for check in TESTS)}
    root = spans.pop("dq.run")
    assert (root.trace_id, root.parent_span_id) == (TRACE_ID, PARENT_ID)
    assert {(s.trace_id, s.parent_span_id) for s in spans.values()} == {(TRACE_ID, root.span_id)}
    assert {name for name, s in spans.items() if s.status == "STATUS_CODE_ERROR"} == {
        "dbt.test broken_reference"}
    assert spans["dbt.test broken_reference"].status_message.startswith(
        "Runtime Error in test broken_reference")


def test_test_spans_name_table_check_and_failures(exported: dict[str, Any]) -> None:
    """A test's span says its table, check, dbt status and failures; a model's its type."""
    spans = {s.name: s for s in exported["spans"]}
    failing = spans["dbt.test not_null_orders_customer_id"].attributes
    assert failing["dbt.unique_id"].startswith("test.dqmon_shop.not_null_orders_customer_id.")
    assert {k: v for k, v in failing.items() if k != "dbt.unique_id"} == {
        "dq.warehouse": "dbt", "dbt.resource_type": "test", "dbt.status": "warn",
        "dq.table": "orders", "dq.check": "not_null_orders_customer_id", "dbt.failures": 2}
    assert "dbt.failures" not in spans["dbt.test broken_reference"].attributes
    assert spans["dbt.model orders"].attributes == {
        "dq.warehouse": "dbt", "dbt.unique_id": "model.dqmon_shop.orders",
        "dbt.resource_type": "model", "dbt.status": "success"}


def test_a_failing_critical_test_exits_1(tested: Path) -> None:
    """Without the errored test, the failing accepted_values and singular tests exit 1."""
    proc = import_dbt(tested, {}, "--no-export", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    got = {r["check"]: (r["table"], r["status"], r["severity"], r["value"])
           for r in json.loads(proc.stdout)["results"]}
    assert got == {check: (table, "pass" if passed else "fail", severity, float(failures))
                   for check, (table, _, failures, passed, _, severity) in TESTS.items()
                   if check != "broken_reference"}


def test_without_manifest_and_export(built: Path) -> None:
    """No --manifest: the project stands in for dq.table, a note says so; --no-export sends
    nothing."""
    with OtlpReceiver() as receiver:
        proc = import_dbt(built, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
                          "--no-export", "--format", "json", manifest=False)
        time.sleep(0.2)  # anything sent would have arrived by now
        assert receiver.metric_requests == [] and receiver.span_requests == []
    assert proc.returncode == 3
    assert proc.stderr.startswith("dqmon: no --manifest:")
    results = json.loads(proc.stdout)["results"]
    assert {r["table"] for r in results} == {"dqmon_shop"}
    assert {r["check"] for r in results} == set(TESTS)
