"""run-once against PostgreSQL, pushing to a real OTLP gRPC receiver: SPEC section 3 on the wire."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from dqmon import __version__
from dqmon.results import CheckResult
from dqmon.telemetry import Telemetry

from otlp_receiver import BlackHole, MetricPoint, OtlpReceiver, closed_port

pytestmark = pytest.mark.postgres

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"

CONFIG = """\
version: 1
warehouses:
  pg:
    url: {url}
tables:
  - name: orders
    table: public.{orders}
    where: "status <> 'test'"
    checks:
      - freshness: {{column: created_at, max_age: 2h}}
      - row_count: {{min: 1, max: 100}}
      - completeness: {{columns: [order_id, customer_id], min_ratio: 0.9}}
      - validity: {{name: amount_positive, condition: "amount > 0", min_ratio: 0.5}}
      - validity: {{name: status_known, column: status, in: [paid, shipped],
                   severity: warning}}
      - validity: {{name: email_format, column: email, regex: '^[^@]+@[^@]+$',
                   min_ratio: 0.5}}
      - uniqueness: {{columns: [order_id]}}
      - schema: {{columns: {{order_id: integer, amount: numeric, missing: text}}}}
      - custom: {{name: big_orders, sql: "select count(*) from {orders} where amount > 6",
                 max: 1}}
      - custom: {{name: broken, sql: "select count(*) from no_such_table_here", max: 1}}
  - name: events
    table: {events}
    partition: {{column: at, granularity: day}}
    checks:
      - row_count: {{min: 1}}
"""

ORDERS = {"order_id": "integer", "customer_id": "integer", "amount": "numeric",
          "status": "text", "email": "text", "created_at": "timestamptz"}

BASE = {"dq.warehouse": "pg", "dq.table": "orders"}


def _orders(now: datetime) -> list[tuple[Any, ...]]:
    hour = timedelta(hours=1)
    return [(1, 10, 5, "paid", "a@x.io", now - hour),
            (2, 11, -1, "paid", "b@x.io", now - 2 * hour),
            (3, None, 7.5, "lost", None, now - 3 * hour),
            (3, 12, 8, "shipped", "bad", now - 4 * hour),
            (5, 13, 9, "test", "c@x.io", now - hour / 2)]  # outside the `where`


def run_once(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `dqmon run-once` in a fresh process with a clean telemetry environment plus `env`."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("OTEL_") and k not in ("TRACEPARENT", "TRACESTATE")}
    return subprocess.run([sys.executable, "-m", "dqmon", "run-once", "--config", str(config),
                           *args], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def contract_config(tmp_path: Path, pg_url: str, make_table: Any) -> Path:
    """A config over two real tables covering every check kind, a partition and an error."""
    now = datetime.now(UTC)
    orders = make_table("otlp_orders", ORDERS, _orders(now))
    events = make_table("otlp_events", {"id": "integer", "at": "timestamptz"},
                        [(1, now), (2, now)])
    path = tmp_path / "checks.yaml"
    path.write_text(CONFIG.format(url=pg_url, orders=orders, events=events), encoding="utf-8")
    return path


@pytest.fixture
def receiver() -> Any:
    """A running OTLP gRPC receiver."""
    with OtlpReceiver() as running:
        yield running


def by_series(points: list[MetricPoint]) -> dict[tuple[str, frozenset[tuple[str, Any]]], float]:
    """Index points by (metric name, attribute set)."""
    return {(p.name, frozenset(p.attributes.items())): p.value for p in points}


def value_series(partition: str) -> dict[tuple[str, frozenset[tuple[str, Any]]], float | None]:
    """The value gauges SPEC section 3 requires for contract_config (freshness checked apart)."""
    def key(metric: str, check: str, **extra: str) -> tuple[str, frozenset[tuple[str, Any]]]:
        return metric, frozenset({**BASE, "dq.check": check, **extra}.items())

    return {
        key("dq.freshness_seconds", "freshness", **{"dq.column": "created_at"}): None,
        key("dq.row_count", "row_count"): 4.0,
        key("dq.completeness_ratio", "completeness_order_id", **{"dq.column": "order_id"}): 1.0,
        key("dq.completeness_ratio", "completeness_customer_id",
            **{"dq.column": "customer_id"}): 0.75,
        key("dq.validity_ratio", "amount_positive", **{"dq.rule": "amount_positive"}): 0.75,
        key("dq.validity_ratio", "status_known",
            **{"dq.column": "status", "dq.rule": "status_known"}): 0.75,
        key("dq.validity_ratio", "email_format",
            **{"dq.column": "email", "dq.rule": "email_format"}): 2 / 3,
        key("dq.uniqueness_ratio", "uniqueness_order_id", **{"dq.column": "order_id"}): 0.75,
        key("dq.schema_mismatches", "schema"): 1.0,
        key("dq.custom_value", "big_orders"): 3.0,
        ("dq.row_count", frozenset({"dq.warehouse": "pg", "dq.table": "events",
                                    "dq.check": "row_count", "dq.partition": partition}.items())):
            2.0,
    }


UNITS = {"dq.freshness_seconds": "s", "dq.row_count": "{row}", "dq.completeness_ratio": "1",
         "dq.validity_ratio": "1", "dq.uniqueness_ratio": "1", "dq.schema_mismatches": "{column}",
         "dq.custom_value": "", "dq.check.passed": "", "dq.check.up": "",
         "dq.check.duration_seconds": "s", "dq.check.last_run_timestamp_seconds": "s",
         "dq.check.threshold": ""}

# check -> (passed, up, severity, {bound: threshold})
STATUS = {
    "freshness": (1, 1, "critical", {"max": 7200.0}),
    "row_count": (1, 1, "critical", {"min": 1.0, "max": 100.0}),
    "completeness_order_id": (1, 1, "critical", {"min": 0.9}),
    "completeness_customer_id": (0, 1, "critical", {"min": 0.9}),
    "amount_positive": (1, 1, "critical", {"min": 0.5}),
    "status_known": (0, 1, "warning", {"min": 1.0}),
    "email_format": (1, 1, "critical", {"min": 0.5}),
    "uniqueness_order_id": (0, 1, "critical", {"min": 1.0}),
    "schema": (0, 1, "critical", {"max": 0.0}),
    "big_orders": (0, 1, "critical", {"max": 1.0}),
    "broken": (0, 0, "critical", {"max": 1.0}),
}


@pytest.fixture
def contract_run(contract_config: Path, receiver: OtlpReceiver) -> dict[str, Any]:
    """One run-once of contract_config, exporting to the receiver inside a caller's trace."""
    before = datetime.now(UTC).strftime("%Y-%m-%d")
    started = time.time()
    proc = run_once(contract_config, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "TRACEPARENT": TRACEPARENT,
        "TRACESTATE": "vendor=abc", "DQMON_INSTANCE": "ci-runner-1",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci"}, "--format", "json")
    return {"proc": proc, "started": started, "finished": time.time(), "before": before,
            "after": datetime.now(UTC).strftime("%Y-%m-%d")}


def test_run_once_exports_every_value_gauge_of_the_contract(
        contract_run: dict[str, Any], receiver: OtlpReceiver) -> None:
    """Every value gauge arrives over OTLP gRPC with its exact attribute set and value."""
    proc = contract_run["proc"]
    assert proc.returncode == 3, proc.stderr  # `broken` could not run: 3 beats 1
    points = [p for p in receiver.points() if p.name in UNITS and not p.name.startswith("dq.check")]
    partition = next(p.attributes["dq.partition"] for p in points
                     if p.attributes["dq.table"] == "events")
    assert partition in (contract_run["before"], contract_run["after"])
    expected = value_series(partition)
    got = by_series(points)
    assert set(got) == set(expected)
    for key, value in expected.items():
        if value is not None:
            assert got[key] == pytest.approx(value), key
    freshness = next(v for (name, _), v in got.items() if name == "dq.freshness_seconds")
    assert 3600 <= freshness < 3600 + (contract_run["finished"] - contract_run["started"]) + 5
    assert all(p.kind == "gauge" and p.scope == "dqmon" for p in receiver.points())


def test_run_once_exports_the_status_gauges_with_severity_and_bounds(
        contract_run: dict[str, Any], receiver: OtlpReceiver) -> None:
    """dq.check.* carry the value attributes plus dq.severity; threshold one point per bound."""
    points = [p for p in receiver.points() if p.name.startswith("dq.check.")]
    orders = [p for p in points if p.attributes["dq.table"] == "orders"]
    for check, (passed, up, severity, bounds) in STATUS.items():
        mine = [p for p in orders if p.attributes["dq.check"] == check]
        values = {(p.name, p.attributes.get("dq.bound")): p.value for p in mine}
        assert values[("dq.check.passed", None)] == passed, check
        assert values[("dq.check.up", None)] == up, check
        assert {b: v for (n, b), v in values.items() if n == "dq.check.threshold"} == bounds
        assert {p.attributes["dq.severity"] for p in mine} == {severity}
        assert 0 <= values[("dq.check.duration_seconds", None)] < 60
        last_run = values[("dq.check.last_run_timestamp_seconds", None)]
        assert contract_run["started"] <= last_run <= contract_run["finished"]
    broken = {p.name for p in orders if p.attributes["dq.check"] == "broken"}
    assert "dq.custom_value" not in broken  # an errored check publishes no value
    keys = {frozenset(p.attributes) for p in points if p.name == "dq.check.up"
            and p.attributes["dq.check"] == "email_format"}
    assert keys == {frozenset({"dq.warehouse", "dq.table", "dq.check", "dq.column", "dq.rule",
                               "dq.severity"})}


def test_run_once_exports_units_and_a_stable_resource(
        contract_run: dict[str, Any], receiver: OtlpReceiver) -> None:
    """Metric names and units are exactly SPEC's; the resource names a stable instance."""
    points = receiver.points()
    assert {p.name: p.unit for p in points} == {**UNITS, "dq.monitor.series": "",
                                                "dq.monitor.overflow": ""}
    assert len(receiver.metric_requests) == 1  # run-once flushes exactly once
    resource = points[0].resource
    assert resource["service.name"] == "dqmon"
    assert resource["service.version"] == __version__
    assert resource["service.instance.id"] == "ci-runner-1"
    assert resource["deployment.environment"] == "ci"


def test_run_once_spans_join_the_callers_traceparent(
        contract_run: dict[str, Any], receiver: OtlpReceiver, pg_url: str) -> None:
    """dq.run joins TRACEPARENT; each table is a dq.scan child with SPEC's attributes."""
    spans = {s.name: s for s in receiver.spans()}
    assert set(spans) == {"dq.run", "dq.scan orders", "dq.scan events"}
    root, orders, events = spans["dq.run"], spans["dq.scan orders"], spans["dq.scan events"]
    assert (root.trace_id, root.parent_span_id, root.trace_state) == (TRACE_ID, PARENT_ID,
                                                                      "vendor=abc")
    assert {orders.trace_id, events.trace_id} == {TRACE_ID}
    assert orders.parent_span_id == events.parent_span_id == root.span_id
    assert orders.status == "STATUS_CODE_ERROR"  # the `broken` custom check errored
    assert events.status == "STATUS_CODE_UNSET"
    url = make_url(pg_url)
    attributes = {k: v for k, v in orders.attributes.items() if k != "db.query.text"}
    assert attributes == {
        "dq.warehouse": "pg", "dq.table": "orders", "db.system.name": "postgresql",
        "db.system": "postgresql", "db.namespace": url.database,
        "db.collection.name": "public.otlp_orders", "server.address": url.host,
        "server.port": url.port, "dq.rows": 4}
    assert events.attributes["db.collection.name"] == "otlp_events"
    assert events.attributes["dq.partition"] == next(
        p.attributes["dq.partition"] for p in receiver.points()
        if p.attributes["dq.table"] == "events")
    assert events.attributes["dq.rows"] == 2


def test_scan_span_query_text_has_no_literal_values(
        contract_run: dict[str, Any], receiver: OtlpReceiver) -> None:
    """db.query.text keeps the SQL's shape but drops 'test', 6 and the other literals."""
    text = next(s for s in receiver.spans() if s.name == "dq.scan orders").attributes[
        "db.query.text"]
    assert "status <> ?" in text
    assert "amount > ?" in text
    for literal in ("'test'", "'paid'", "> 6", "'^[^@]+@[^@]+$'"):
        assert literal not in text
    assert "no_such_table_here" in text  # identifiers stay


def test_no_export_sends_nothing(contract_config: Path, receiver: OtlpReceiver) -> None:
    """--no-export pushes neither metrics nor spans, and keeps the data's exit code."""
    proc = run_once(contract_config, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
                    "--no-export")
    assert proc.returncode == 3
    time.sleep(0.2)  # anything sent would have arrived by now
    assert receiver.metric_requests == [] and receiver.span_requests == []


def test_metrics_exporter_none_keeps_spans(contract_config: Path,
                                           receiver: OtlpReceiver) -> None:
    """OTEL_METRICS_EXPORTER=none turns off metrics only; OTEL_TRACES_EXPORTER=none spans only."""
    run_once(contract_config, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                               "OTEL_METRICS_EXPORTER": "none"})
    assert receiver.metric_requests == [] and len(receiver.spans()) == 3
    run_once(contract_config, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                               "OTEL_TRACES_EXPORTER": "none"})
    assert len(receiver.metric_requests) == 1 and len(receiver.spans()) == 3


# --- collector down ----------------------------------------------------------------------------

DOWN_CONFIG = """\
version: 1
warehouses:
  pg:
    url: {url}
tables:
  - name: orders
    table: {orders}
    checks:
      - row_count: {{min: 10}}
"""


@pytest.fixture
def down_config(tmp_path: Path, pg_url: str, make_table: Any) -> Path:
    """A config whose one critical check fails: the data's exit code is 1."""
    orders = make_table("otlp_down", {"id": "integer"}, [(1,), (2,)])
    path = tmp_path / "down.yaml"
    path.write_text(DOWN_CONFIG.format(url=pg_url, orders=orders), encoding="utf-8")
    return path


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_closed_port_keeps_the_exit_code_and_warns_once(down_config: Path) -> None:
    """With nothing listening, run-once prints the same results, exits 1, warns in one line."""
    quiet = run_once(down_config, {}, "--no-export")
    down = run_once(down_config, {"OTEL_EXPORTER_OTLP_ENDPOINT":
                                  f"http://127.0.0.1:{closed_port()}"})
    assert (quiet.returncode, down.returncode) == (1, 1)
    assert down.stdout == quiet.stdout
    lines = _warnings(down.stderr)
    assert len(lines) == 1 and lines[0].startswith("telemetry: export to 127.0.0.1:"), lines


def test_black_holed_collector_keeps_the_exit_code_and_warns_once(down_config: Path) -> None:
    """A collector that accepts and never answers costs one warning line, never the exit code."""
    with BlackHole() as hole:
        proc = run_once(down_config, {"OTEL_EXPORTER_OTLP_ENDPOINT": hole.endpoint})
        assert hole.accepted  # the exporter really connected and waited
    assert proc.returncode == 1
    lines = _warnings(proc.stderr)
    assert len(lines) == 1 and f"127.0.0.1:{hole.port} failed" in lines[0], lines


def test_live_collector_gives_no_warning(down_config: Path, receiver: OtlpReceiver) -> None:
    """A collector that answers leaves stderr empty."""
    proc = run_once(down_config, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
    assert proc.returncode == 1 and proc.stderr == ""
    assert len(receiver.metric_requests) == 1


def test_daemon_warns_once_per_outage_and_once_on_recovery(
        down_config: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Periodic pushes to a down collector warn once, and say once when it answers again."""
    from dqmon.config import load_config

    port = closed_port()
    spec = load_config(down_config).tables[0].checks[0]
    telemetry = Telemetry(daemon=True, env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_METRIC_EXPORT_INTERVAL": "100", "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
        "OTEL_TRACES_EXPORTER": "none"})
    telemetry.record([CheckResult(spec, "pg", None, 2.0, "fail", 0.01, time.time())])
    caplog.set_level(logging.INFO, logger="dqmon.telemetry")
    try:
        time.sleep(1.0)  # several failed exports
        with OtlpReceiver(port=port) as receiver:
            assert receiver.wait_for(lambda r: len(r.metric_requests) >= 2, timeout_s=15)
            telemetry.shutdown(timeout_s=1.0)
    finally:
        telemetry.shutdown(timeout_s=1.0)  # a no-op unless an assertion failed first
    messages = [r.getMessage() for r in caplog.records if r.name == "dqmon.telemetry"]
    assert [m.split(";")[0] for m in messages if "failed" in m] == [
        f"telemetry: export to 127.0.0.1:{port} failed"]
    assert messages.count(f"telemetry: export to 127.0.0.1:{port} works again") == 1
