"""The dq.* gauges, spans, settings and export reporting, through the real OpenTelemetry SDK."""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import socket
import time
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import (
    Gauge,
    InMemoryMetricReader,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import StatusCode
from prometheus_client.parser import text_string_to_metric_families

from dqmon import __version__
from dqmon.config import CheckSpec, Config, parse_config
from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.results import CheckResult, Status
from dqmon.telemetry import GAUGES, Telemetry, sanitize_sql
from dqmon.telemetry.cardinality import OverflowWatch
from dqmon.telemetry.exporters import ExportHealth, ReportingMetricExporter
from dqmon.telemetry.registry import PARTITIONS_KEPT
from dqmon.telemetry.settings import RUN_ONCE_TIMEOUT_S, read_settings
from dqmon.warehouse import Warehouse

CONFIG = """\
version: 1
warehouses:
  main: {url: "sqlite:///unused.db"}
tables:
  - name: orders
    checks:
      - freshness: {column: created_at, max_age: 2h}
      - row_count: {min: 1, max: 100}
      - completeness: {columns: [id]}
      - validity: {name: positive, condition: "amount > 0", min_ratio: 0.9}
      - validity: {name: known, column: status, in: [a, b], severity: warning}
      - uniqueness: {columns: [id, day]}
      - schema: {columns: {id: integer}}
      - custom: {name: late, sql: "select 1", max: 10}
      - schema_change: {}
      - statistic: {column: amount, stat: avg, min: 1}
      - reference: {column: customer_id, to: customers.id}
  - name: events
    partition: {column: at, granularity: day}
    checks:
      - row_count: {min: 1}
"""

# SPEC section 3: OTel name -> (unit, Prometheus name).
SPEC = {
    "dq.freshness_seconds": ("s", "dq_freshness_seconds"),
    "dq.row_count": ("{row}", "dq_row_count"),
    "dq.completeness_ratio": ("1", "dq_completeness_ratio"),
    "dq.validity_ratio": ("1", "dq_validity_ratio"),
    "dq.uniqueness_ratio": ("1", "dq_uniqueness_ratio"),
    "dq.schema_mismatches": ("{column}", "dq_schema_mismatches"),
    "dq.custom_value": ("", "dq_custom_value"),
    "dq.schema_changes": ("{column}", "dq_schema_changes"),  # SPEC 9
    "dq.statistic_value": ("", "dq_statistic_value"),  # SPEC 8
    "dq.reference_ratio": ("1", "dq_reference_ratio"),  # SPEC 8
    "dq.check.passed": ("", "dq_check_passed"),
    "dq.check.up": ("", "dq_check_up"),
    "dq.check.duration_seconds": ("s", "dq_check_duration_seconds"),
    "dq.check.last_run_timestamp_seconds": ("s", "dq_check_last_run_timestamp_seconds"),
    "dq.check.threshold": ("", "dq_check_threshold"),
}

Series = dict[tuple[str, frozenset[tuple[str, Any]]], float]


@pytest.fixture(scope="module")
def config() -> Config:
    """The test config, parsed once."""
    return parse_config(CONFIG, env={})


def spec(config: Config, table: str, check: str) -> CheckSpec:
    """Return one check of the test config."""
    found = config.table(table)
    assert found is not None
    result = found.check(check)
    assert result is not None
    return result


def result(check: CheckSpec, value: float | None, status: Status | None = None,
           partition: str | None = None, started: float = 1_700_000_000.0) -> CheckResult:
    """Build a result whose status follows the threshold unless given."""
    if status is None:
        status = "pass" if value is not None and check.threshold.passes(value) else "fail"
    return CheckResult(check, "main", partition, value, status, 0.125, started,
                       "boom" if status == "error" else None)


class Harness:
    """A Telemetry with no export, read through an InMemoryMetricReader and span exporter."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.reader = InMemoryMetricReader()
        self.spans = InMemorySpanExporter()
        self.telemetry = Telemetry(export=False, env=env or {}, metric_readers=[self.reader],
                                   span_exporter=self.spans)

    def collect(self) -> tuple[Series, dict[str, str], dict[str, Any]]:
        """Return {(name, attrs): value}, {name: unit} and the resource of one collection."""
        data = self.reader.get_metrics_data()
        series: Series = {}
        units: dict[str, str] = {}
        resource: dict[str, Any] = {}
        for rm in data.resource_metrics if data else []:
            resource = dict(rm.resource.attributes)
            for sm in rm.scope_metrics:
                assert sm.scope.name == "dqmon" and sm.scope.version == __version__
                for metric in sm.metrics:
                    if metric.name.startswith("dq.monitor."):
                        continue  # about dqmon itself, not a check (issue 9): tested apart
                    units[metric.name] = metric.unit or ""
                    for point in metric.data.data_points:
                        key = (metric.name, frozenset(point.attributes.items()))
                        series[key] = point.value  # type: ignore[union-attr]
        return series, units, resource


@pytest.fixture
def harness() -> Harness:
    """A fresh Telemetry per test."""
    return Harness()


def key(name: str, **attrs: str) -> tuple[str, frozenset[tuple[str, str]]]:
    """Build a series key from dq.* attributes written with underscores (dq_check=...)."""
    return name, frozenset((k.replace("_", "."), v) for k, v in attrs.items())


def orders(check: str, **extra: str) -> dict[str, str]:
    """The value attributes of a check of the orders table."""
    return {"dq_warehouse": "main", "dq_table": "orders", "dq_check": check, **extra}


# --- gauges ------------------------------------------------------------------------------------

def test_gauges_have_the_spec_names_and_units(harness: Harness, config: Config) -> None:
    """The twelve gauges of SPEC section 3 and section 9's dq.schema_changes, with their units."""
    harness.telemetry.record([result(c, 1.0) for t in config.tables for c in t.checks])
    _, units, _ = harness.collect()
    assert units == {name: unit for name, (unit, _) in SPEC.items()}
    assert [g.name for g in GAUGES] == list(SPEC)


def test_value_gauges_carry_exactly_the_spec_attributes(harness: Harness, config: Config) -> None:
    """dq.column, dq.rule, dq.stat and dq.partition appear exactly where SPEC 3 and 8 say."""
    t = config.tables[0]
    harness.telemetry.record([result(c, 0.5) for c in t.checks])
    harness.telemetry.record([result(spec(config, "events", "row_count"), 7.0,
                                     partition="2026-11-20")])
    series, _, _ = harness.collect()
    values = {k: v for k, v in series.items() if not k[0].startswith("dq.check.")}
    assert values == {
        key("dq.freshness_seconds", **orders("freshness", dq_column="created_at")): 0.5,
        key("dq.row_count", **orders("row_count")): 0.5,
        key("dq.completeness_ratio", **orders("completeness_id", dq_column="id")): 0.5,
        key("dq.validity_ratio", **orders("positive", dq_rule="positive")): 0.5,
        key("dq.validity_ratio", **orders("known", dq_column="status", dq_rule="known")): 0.5,
        key("dq.uniqueness_ratio", **orders("uniqueness_id_day", dq_column="id,day")): 0.5,
        key("dq.schema_mismatches", **orders("schema")): 0.5,
        key("dq.custom_value", **orders("late")): 0.5,
        key("dq.schema_changes", **orders("schema_change")): 0.5,
        key("dq.statistic_value", **orders("avg_amount", dq_column="amount", dq_stat="avg")): 0.5,
        key("dq.reference_ratio", **orders("reference_customer_id", dq_column="customer_id")): 0.5,
        key("dq.row_count", dq_warehouse="main", dq_table="events", dq_check="row_count",
            dq_partition="2026-11-20"): 7.0,
    }


def test_status_gauges_add_severity_and_one_threshold_point_per_bound(
        harness: Harness, config: Config) -> None:
    """dq.check.* = value attributes + dq.severity; dq.check.threshold adds dq.bound."""
    row_count, known = spec(config, "orders", "row_count"), spec(config, "orders", "known")
    harness.telemetry.record([result(row_count, 150.0, started=1_800_000_000.5),
                              result(known, 1.0)])
    series, _, _ = harness.collect()
    rc = orders("row_count", dq_severity="critical")
    assert series[key("dq.check.passed", **rc)] == 0.0
    assert series[key("dq.check.up", **rc)] == 1.0
    assert series[key("dq.check.duration_seconds", **rc)] == 0.125
    assert series[key("dq.check.last_run_timestamp_seconds", **rc)] == 1_800_000_000.5
    assert series[key("dq.check.threshold", **rc, dq_bound="min")] == 1.0
    assert series[key("dq.check.threshold", **rc, dq_bound="max")] == 100.0
    kn = orders("known", dq_column="status", dq_rule="known", dq_severity="warning")
    assert series[key("dq.check.passed", **kn)] == 1.0
    thresholds = {k: v for k, v in series.items() if k[0] == "dq.check.threshold"}
    assert thresholds == {key("dq.check.threshold", **rc, dq_bound="min"): 1.0,
                          key("dq.check.threshold", **rc, dq_bound="max"): 100.0,
                          key("dq.check.threshold", **kn, dq_bound="min"): 1.0}


def test_an_error_keeps_the_last_value_and_reports_down(harness: Harness, config: Config) -> None:
    """After an error the value gauge keeps its last value; up and passed drop to 0 (SPEC 6)."""
    check = spec(config, "orders", "row_count")
    harness.telemetry.record([result(check, 42.0)])
    harness.telemetry.record([result(check, None, "error")])
    series, _, _ = harness.collect()
    assert series[key("dq.row_count", **orders("row_count"))] == 42.0
    status = orders("row_count", dq_severity="critical")
    assert series[key("dq.check.up", **status)] == 0.0
    assert series[key("dq.check.passed", **status)] == 0.0


def test_an_error_before_any_value_publishes_no_value(harness: Harness, config: Config) -> None:
    """A check that never produced a value has no value point, only its status gauges."""
    harness.telemetry.record([result(spec(config, "orders", "late"), None, "error")])
    series, _, _ = harness.collect()
    assert {name for name, _ in series} == {"dq.check.passed", "dq.check.up",
                                             "dq.check.duration_seconds",
                                             "dq.check.last_run_timestamp_seconds",
                                             "dq.check.threshold"}


def test_infinite_freshness_publishes_no_value_but_fails(harness: Harness, config: Config) -> None:
    """An empty scope's +Inf freshness drops the value point (no stale number) and passed=0."""
    check = spec(config, "orders", "freshness")
    harness.telemetry.record([result(check, 60.0)])
    harness.telemetry.record([result(check, math.inf)])
    series, _, _ = harness.collect()
    assert not any(name == "dq.freshness_seconds" for name, _ in series)
    status = orders("freshness", dq_column="created_at", dq_severity="critical")
    assert series[key("dq.check.passed", **status)] == 0.0
    assert series[key("dq.check.up", **status)] == 1.0


def test_nan_is_never_written(harness: Harness, config: Config) -> None:
    """A NaN value becomes no point at all, never a NaN sample."""
    harness.telemetry.record([result(spec(config, "orders", "late"), math.nan, "fail")])
    series, _, _ = harness.collect()
    assert not any(name == "dq.custom_value" for name, _ in series)
    assert all(math.isfinite(v) for v in series.values())


def test_retain_stops_reporting_removed_checks_and_updates_thresholds(
        harness: Harness, config: Config) -> None:
    """After a reload, removed checks vanish and kept ones show the new threshold at once."""
    harness.telemetry.record([result(c, 5.0) for c in config.tables[0].checks])
    new = parse_config(CONFIG.replace("row_count: {min: 1, max: 100}", "row_count: {min: 3}"),
                       env={})
    harness.telemetry.retain([spec(new, "orders", "row_count")])
    series, _, _ = harness.collect()
    assert {dict(attrs)["dq.check"] for _, attrs in series} == {"row_count"}
    thresholds = {dict(a)["dq.bound"]: v for n, a in series if n == "dq.check.threshold"
                  for v in [series[(n, a)]]}
    assert thresholds == {"min": 3.0}


def test_retain_drops_a_check_whose_kind_changed(harness: Harness, config: Config) -> None:
    """A check renamed onto another kind does not publish the old metric under the new one."""
    harness.telemetry.record([result(spec(config, "orders", "late"), 5.0)])
    other = parse_config(CONFIG.replace("name: positive", "name: late").replace(
        "custom: {name: late", "custom: {name: other"), env={})
    harness.telemetry.retain([spec(other, "orders", "late")])
    series, _, _ = harness.collect()
    assert series == {}


def test_partition_series_are_bounded(harness: Harness, config: Config) -> None:
    """Only the most recently run slices of a check are reported."""
    check = spec(config, "events", "row_count")
    days = [f"2026-11-{d:02d}" for d in range(1, 8)]
    for day in days:
        harness.telemetry.record([result(check, 1.0, partition=day)])
    harness.telemetry.record([result(check, 2.0, partition=days[0])])  # a backfill, run last
    series, _, _ = harness.collect()
    reported = {dict(a)["dq.partition"] for n, a in series if n == "dq.row_count"}
    assert reported == {days[0], *days[-(PARTITIONS_KEPT - 1):]}


# --- Prometheus names --------------------------------------------------------------------------

def collector_name(name: str, unit: str) -> str:
    """The OTel Collector's prometheus exporter for a gauge (translator/prometheus rules)."""
    tokens = [t for t in re.split(r"[^a-zA-Z0-9]+", name) if t]
    main = re.sub(r"\{.*\}", "", unit)
    word = {"s": "seconds", "1": ""}.get(main, main)
    if word and word not in tokens:
        tokens.append(word)
    if unit == "1" and "ratio" not in tokens:
        tokens.append("ratio")
    return "_".join(tokens)


def test_prometheus_names_agree_through_both_naming_paths() -> None:
    """The Python /metrics exporter and a Collector both yield SPEC section 3's names."""
    telemetry = Telemetry(daemon=True, export=False, env={})
    spec_check = parse_config(CONFIG, env={}).tables[0].checks
    telemetry.record([result(c, 1.0) for c in spec_check])
    body, _ = telemetry.metrics_text()
    telemetry.shutdown()
    python_names = {f.documentation: f.name for f in text_string_to_metric_families(body.decode())}
    for gauge in GAUGES:
        unit, prometheus = SPEC[gauge.name]
        assert python_names[gauge.description] == prometheus, gauge.name
        assert collector_name(gauge.name, unit) == prometheus, gauge.name
    assert len({collector_name(n, u) for n, (u, _) in SPEC.items()}) == len(SPEC)


def test_collector_rule_would_rename_a_ratio_without_its_unit_word() -> None:
    """The reference Collector rule really appends _ratio (so the test above can fail)."""
    assert collector_name("dq.completeness", "1") == "dq_completeness_ratio"
    assert collector_name("dq.freshness", "s") == "dq_freshness_seconds"


def test_metrics_text_needs_daemon_mode(harness: Harness) -> None:
    """run-once telemetry has no /metrics reader and says so."""
    with pytest.raises(RuntimeError, match="daemon=True"):
        harness.telemetry.metrics_text()


# --- resource and settings --------------------------------------------------------------------

def test_resource_defaults_are_stable(harness: Harness, config: Config) -> None:
    """service.name dqmon, the package version, and the host name as instance id."""
    harness.telemetry.record([result(spec(config, "orders", "late"), 1.0)])
    _, _, resource = harness.collect()
    assert resource["service.name"] == "dqmon"
    assert resource["service.version"] == __version__
    assert resource["service.instance.id"] == socket.gethostname()


def test_resource_honours_otel_variables_and_dqmon_instance(config: Config) -> None:
    """OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME, then DQMON_INSTANCE win."""
    h = Harness({"OTEL_RESOURCE_ATTRIBUTES": "team=data%20eng,service.name=x,"
                                             "service.instance.id=from-otel",
                 "OTEL_SERVICE_NAME": "dq-prod", "DQMON_INSTANCE": "pod-a"})
    h.telemetry.record([result(spec(config, "orders", "late"), 1.0)])
    _, _, resource = h.collect()
    assert (resource["service.name"], resource["service.instance.id"], resource["team"]) == (
        "dq-prod", "pod-a", "data eng")


def test_exporter_selection_reads_otel_variables() -> None:
    """OTEL_METRICS_EXPORTER / OTEL_TRACES_EXPORTER: lists, `none`, unknown names skipped."""
    s = read_settings({"OTEL_METRICS_EXPORTER": "otlp, Prometheus,zipkin",
                       "OTEL_TRACES_EXPORTER": "none"}, daemon=True)
    assert s.metrics_exporters == {"otlp", "prometheus"}
    assert s.traces_exporters == frozenset()
    assert read_settings({}, daemon=True).metrics_exporters == {"otlp"}


def test_otlp_target_settings() -> None:
    """Signal variables beat generic ones; timeouts are milliseconds; run-once caps them."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317",
           "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4317",
           "OTEL_EXPORTER_OTLP_TIMEOUT": "5000", "OTEL_EXPORTER_OTLP_HEADERS": "Api-Key=a%20b"}
    daemon = read_settings(env, daemon=True)
    assert (daemon.metrics_otlp.endpoint, daemon.metrics_otlp.insecure) == ("collector:4317", False)
    assert (daemon.traces_otlp.endpoint, daemon.traces_otlp.insecure) == ("http://traces:4317",
                                                                          True)
    assert daemon.metrics_otlp.timeout_s == 5.0
    assert dict(daemon.metrics_otlp.headers) == {"api-key": "a b"}
    assert read_settings(env, daemon=False).metrics_otlp.timeout_s == RUN_ONCE_TIMEOUT_S
    default = read_settings({}, daemon=True).metrics_otlp
    assert (default.endpoint, default.insecure, default.timeout_s) == (
        "http://localhost:4317", True, 10.0)


def test_endpoint_label_hides_credentials() -> None:
    """Log lines name host:port, never user:password from the endpoint URL."""
    s = read_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://u:secret@otel.example:4317"},
                      daemon=False)
    assert s.metrics_otlp.label == "otel.example:4317"


def test_console_exporter_writes_to_stderr(capsys: pytest.CaptureFixture[str],
                                           config: Config) -> None:
    """OTEL_METRICS_EXPORTER=console never mixes telemetry into stdout (the results)."""
    telemetry = Telemetry(env={"OTEL_METRICS_EXPORTER": "console", "OTEL_TRACES_EXPORTER": "none"})
    telemetry.record([result(spec(config, "orders", "late"), 4.0)])
    telemetry.shutdown()
    out, err = capsys.readouterr()
    assert out == "" and '"dq.custom_value"' in err


# --- spans -------------------------------------------------------------------------------------

def _warehouse() -> Warehouse:
    return Warehouse("main", WarehouseSettings(url="postgresql+psycopg://u:pw@db/x"))


def test_scan_span_attributes_and_error_status(harness: Harness, config: Config) -> None:
    """dq.scan <table> carries SPEC's attributes, sanitized SQL, and ERROR on a check error."""
    table = config.tables[1]
    with harness.telemetry.run_span(), harness.telemetry.observer.scan(
            table, _warehouse(), "2026-11-20") as recorder:
        recorder.query("select count(*) from t where status <> 'x' and n > 5")
        recorder.query("select 1")
        recorder.rows(12)
        recorder.error("relation does not exist")
    scan, run = harness.spans.get_finished_spans()
    assert (scan.name, run.name) == ("dq.scan events", "dq.run")
    assert scan.parent is not None and scan.parent.span_id == run.context.span_id
    assert dict(scan.attributes or {}) == {
        "dq.warehouse": "main", "dq.table": "events", "db.system.name": "postgresql",
        "db.system": "postgresql", "db.namespace": "x", "db.collection.name": "events",
        "server.address": "db", "dq.partition": "2026-11-20", "dq.rows": 12,
        "db.query.text": "select count(*) from t where status <> ? and n > ?;\nselect ?"}
    assert scan.status.status_code is StatusCode.ERROR
    assert scan.status.description == "relation does not exist"


def test_run_span_joins_traceparent_in_run_once() -> None:
    """run-once's dq.run continues the caller's trace from TRACEPARENT and TRACESTATE."""
    h = Harness({"TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                 "TRACESTATE": "congo=t61rcWkgMzE"})
    with h.telemetry.run_span():
        assert h.telemetry.current_trace_id() == "0af7651916cd43dd8448eb211c80319c"
    (run,) = h.spans.get_finished_spans()
    assert run.parent is not None and format(run.parent.span_id, "016x") == "b7ad6b7169203331"
    assert run.context.trace_state.to_header() == "congo=t61rcWkgMzE"
    assert h.telemetry.current_trace_id() is None


@pytest.mark.parametrize("env", [
    {"TRACEPARENT": "not-a-traceparent"},
    {"TRACESTATE": "congo=t61rcWkgMzE"},
])
def test_run_span_starts_a_new_trace_without_a_valid_traceparent(env: dict[str, str]) -> None:
    """A missing or malformed TRACEPARENT makes dq.run a root span."""
    h = Harness(env)
    with h.telemetry.run_span():
        pass
    (run,) = h.spans.get_finished_spans()
    assert run.parent is None


def test_daemon_runs_never_join_traceparent() -> None:
    """The daemon's runs are roots: its environment's TRACEPARENT belongs to no run."""
    spans = InMemorySpanExporter()
    telemetry = Telemetry(daemon=True, export=False, span_exporter=spans,
                          env={"TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-"
                                              "b7ad6b7169203331-01"})
    with telemetry.run_span():
        pass
    telemetry.shutdown()
    assert spans.get_finished_spans()[0].parent is None


@pytest.mark.parametrize(("sql", "expected"), [
    ("status <> 'test' and amount > 0.5", "status <> ? and amount > ?"),
    ("name = 'O''Brien' or code = E'x'", "name = ? or code = ?"),
    ('"col 1" = 3 and t1.c2 = %(param_1)s and x = $1', '"col 1" = ? and t1.c2 = %(param_1)s '
     "and x = $1"),
    ("created_at >= '2026-11-20' and n < 1e3", "created_at >= ? and n < ?"),
    ("value='a'", "value=?"),
])
def test_sanitize_sql_drops_literals_only(sql: str, expected: str) -> None:
    """String and number literals become ?; identifiers and bind placeholders stay."""
    assert sanitize_sql(sql) == expected


# --- export reporting and shutdown ------------------------------------------------------------

class _Flaky(MetricExporter):
    """An exporter whose outcomes are scripted (unit test of the reporting wrapper only)."""

    def __init__(self, outcomes: Sequence[MetricExportResult | Exception]) -> None:
        super().__init__()
        self.outcomes = list(outcomes)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def test_export_failures_warn_once_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    """Three failures give one warning; recovery one info line; a new outage warns again."""
    ok, bad = MetricExportResult.SUCCESS, MetricExportResult.FAILURE
    exporter = ReportingMetricExporter(_Flaky([bad, bad, RuntimeError("x"), ok, ok, bad]),
                                       "collector:4317", ExportHealth())
    caplog.set_level(logging.INFO, logger="dqmon.telemetry")
    data = MetricsData(resource_metrics=[])
    outcomes = [exporter.export(data) for _ in range(6)]
    assert outcomes == [bad, bad, bad, ok, ok, bad]
    assert [(r.levelname, r.getMessage().split(";")[0]) for r in caplog.records] == [
        ("WARNING", "telemetry: export to collector:4317 failed"),
        ("INFO", "telemetry: export to collector:4317 works again"),
        ("WARNING", "telemetry: export to collector:4317 failed"),
    ]


def test_shutdown_flushes_once_and_is_idempotent(harness: Harness, config: Config,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """shutdown exports the recorded results; a second call does nothing and logs nothing."""
    harness.telemetry.record([result(spec(config, "orders", "late"), 1.0)])
    harness.telemetry.shutdown(timeout_s=1.0)
    flushed = harness.reader.get_metrics_data()
    assert flushed is not None and "dq.custom_value" in flushed.to_json()
    caplog.set_level(logging.DEBUG)
    harness.telemetry.shutdown(timeout_s=1.0)
    assert caplog.records == []


# --- cardinality (issue 9) ---------------------------------------------------------------------

def monitor_series(reader: InMemoryMetricReader) -> dict[tuple[str, frozenset[tuple[str, Any]]],
                                                          float]:
    """Collect once; return the dq.monitor.* points as {(name, attributes): value}."""
    data = reader.get_metrics_data()
    return {(m.name, frozenset(p.attributes.items())): p.value  # type: ignore[union-attr]
            for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics
            for m in sm.metrics if m.name.startswith("dq.monitor.")
            for p in m.data.data_points}


def many_checks(config: Config, count: int) -> list[CheckResult]:
    """Return `count` passing results of distinct completeness checks on distinct tables."""
    base = spec(config, "orders", "completeness_id")
    return [result(dataclasses.replace(base, table=f"t{i}", name=f"completeness_c{i}"), 1.0)
            for i in range(count)]


def test_monitor_series_counts_each_gauges_points(harness: Harness, config: Config) -> None:
    """dq.monitor.series reports, per dq.metric, the points that gauge reported; overflow is 0."""
    harness.telemetry.record([result(c, 1.0) for t in config.tables for c in t.checks])
    series = monitor_series(harness.reader)
    counts = {dict(attrs)["dq.metric"]: v for (name, attrs), v in series.items()
              if name == "dq.monitor.series"}
    assert counts["dq.check.up"] == 12 and counts["dq.validity_ratio"] == 2
    bounds = [b for t in config.tables for c in t.checks for b in c.threshold.as_dict()]
    assert counts["dq.check.threshold"] == len(bounds)
    assert set(counts) == {g.name for g in GAUGES}
    assert series[("dq.monitor.overflow", frozenset())] == 0


def test_more_than_2000_checks_keep_every_series(config: Config) -> None:
    """The SDK's default 2,000 attribute sets per instrument no longer caps dqmon's gauges."""
    reader = InMemoryMetricReader()
    telemetry = Telemetry(export=False, env={}, metric_readers=[reader])
    telemetry.record(many_checks(config, 2_100))
    data = reader.get_metrics_data()
    assert data is not None
    up = [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
          if m.name == "dq.check.up" for p in m.data.data_points]
    assert len(up) == 2_100
    assert not any("otel.metric.overflow" in p.attributes for p in up)


def test_more_points_than_the_limit_report_overflow_at_once(config: Config) -> None:
    """With more points than the limit, dq.monitor.overflow is 1 in that very collection."""
    reader = InMemoryMetricReader()
    telemetry = Telemetry(export=False, env={}, metric_readers=[reader], cardinality_limit=5)
    telemetry.record(many_checks(config, 6))
    assert monitor_series(reader)[("dq.monitor.overflow", frozenset())] == 1


def test_a_low_limit_warns_once_and_publishes_overflow(config: Config,
                                                       caplog: pytest.LogCaptureFixture,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """An injected limit of 5 folds exported series away: one warning per outage, and the
    daemon's /metrics (which no limit applies to) shows every check and overflow=1."""
    caplog.set_level(logging.INFO, logger="dqmon.telemetry")
    telemetry = Telemetry(daemon=True, cardinality_limit=5, env={
        "OTEL_METRICS_EXPORTER": "console", "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRIC_EXPORT_INTERVAL": "50"})
    checks = [c for t in config.tables for c in t.checks]
    telemetry.record([result(c, 1.0) for c in checks])
    time.sleep(0.5)  # about ten exports: the warning must still be one
    body, _ = telemetry.metrics_text()
    telemetry.shutdown()
    assert '"otel.metric.overflow": true' in capsys.readouterr().err
    families = {f.name: f.samples for f in text_string_to_metric_families(body.decode())}
    assert [s.value for s in families["dq_monitor_overflow"]] == [1.0]
    assert len(families["dq_check_up"]) == len(checks) > 5
    assert not any("otel_metric_overflow" in s.labels for s in families["dq_check_up"])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "series lost to the OpenTelemetry cardinality limit"]
    fields = getattr(warnings[0], "dq_fields", {})
    assert (fields["source"], fields["limit"]) == ("console", 5)
    assert "dq.check.up" in fields["metrics"].split(",")


def _metrics_data(overflow: bool) -> MetricsData:
    """Build one export holding a dq.check.up point, folded into overflow or not."""
    attributes = {"otel.metric.overflow": True} if overflow else {"dq.check": "a"}
    point = NumberDataPoint(attributes=attributes, start_time_unix_nano=None,
                            time_unix_nano=1, value=1.0)
    metric = Metric("dq.check.up", None, None, Gauge(data_points=[point]))
    scope = ScopeMetrics(InstrumentationScope("dqmon"), [metric], "")
    return MetricsData([ResourceMetrics(Resource.create({}), [scope], "")])


def test_overflow_watch_reports_once_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    """Overflow in three exports is one warning; the first clean export is one info line."""
    caplog.set_level(logging.INFO, logger="dqmon.telemetry")
    watch = OverflowWatch(limit=10)
    for overflow in (True, True, True, False, False, True):
        watch.inspect("collector:4317", _metrics_data(overflow))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "series lost to the OpenTelemetry cardinality limit"),
        ("INFO", "no series lost to the OpenTelemetry cardinality limit any more"),
        ("WARNING", "series lost to the OpenTelemetry cardinality limit"),
    ]
    assert watch.overflowing


def test_overflow_watch_keeps_sources_apart() -> None:
    """One source's clean export does not clear another source's overflow."""
    watch = OverflowWatch(limit=10)
    watch.inspect("/metrics", _metrics_data(True))
    watch.inspect("collector:4317", _metrics_data(False))
    assert watch.overflowing
    watch.inspect("/metrics", _metrics_data(False))
    assert not watch.overflowing
