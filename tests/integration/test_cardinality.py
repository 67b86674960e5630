"""2,100 checks of one kind in one process: every series on /metrics and over OTLP, none folded.

The OpenTelemetry SDK keeps 2,000 attribute sets per instrument by default and folds the rest
into one `otel.metric.overflow=true` series, silently (SPEC section 11, issue 9). These tests
scan a SQLite file with 2,100 completeness checks, publish the results through one daemon-mode
Telemetry, scrape its real `/metrics` endpoint and flush it to a real OTLP gRPC receiver.
"""

from __future__ import annotations

import logging
import sqlite3
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from dqmon.config import Config, parse_config
from dqmon.http import HealthServer
from dqmon.plan import scan_plan
from dqmon.results import CheckResult
from dqmon.telemetry import Telemetry
from dqmon.warehouse import open_warehouses

from otlp_receiver import MetricPoint, OtlpReceiver

TABLES, COLUMNS, ROWS = 42, 50, 3
CHECKS = TABLES * COLUMNS  # 2,100, all completeness: more than 2,000 of one kind
SDK_DEFAULT_LIMIT = 2_000

# Every gauge a completeness check publishes, OTel name -> Prometheus name.
GAUGES = {"dq.completeness_ratio": "dq_completeness_ratio", "dq.check.passed": "dq_check_passed",
          "dq.check.up": "dq_check_up", "dq.check.duration_seconds": "dq_check_duration_seconds",
          "dq.check.last_run_timestamp_seconds": "dq_check_last_run_timestamp_seconds",
          "dq.check.threshold": "dq_check_threshold"}

Key = tuple[str, str]  # (dq.table, dq.check)
Scrape = dict[str, list[Sample]]  # Prometheus family name -> samples


def expected_ratio(column: int) -> float:
    """Column c<i> has i % 3 nulls among its 3 rows."""
    return (ROWS - column % ROWS) / ROWS


def expected_checks() -> set[Key]:
    """Every (table, check) the config declares."""
    return {(f"t{t}", f"completeness_c{c}") for t in range(TABLES) for c in range(COLUMNS)}


def wide_config(url: str, tables: int, columns: int) -> Config:
    """Tables t0.. with columns c0.., one completeness check per column."""
    names = ", ".join(f"c{c}" for c in range(columns))
    checks = f"      - completeness: {{columns: [{names}], min_ratio: 0.5}}\n"
    body = "".join(f"  - name: t{t}\n    checks:\n{checks}" for t in range(tables))
    return parse_config(f"version: 1\nwarehouses:\n  main: {{url: '{url}'}}\ntables:\n{body}",
                        env={})


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """A SQLite file with 42 tables of 50 columns, and one completeness check per column."""
    db = tmp_path_factory.mktemp("cardinality") / "wide.db"
    with sqlite3.connect(db) as conn:
        for t in range(TABLES):
            conn.execute(f"create table t{t} ({', '.join(f'c{c} integer' for c in range(COLUMNS))})")
            rows = [[None if row < c % ROWS else row for c in range(COLUMNS)]
                    for row in range(ROWS)]
            conn.executemany(f"insert into t{t} values ({', '.join('?' * COLUMNS)})", rows)
    return wide_config(f"sqlite:///{db}", TABLES, COLUMNS)


@dataclass(frozen=True)
class Published:
    """What one process with 2,100 checks published, through both export paths."""

    results: list[CheckResult]
    scrape: Scrape
    points: list[MetricPoint]


@pytest.fixture(scope="module")
def published(config: Config) -> Published:
    """Scan every table, record, scrape /metrics over HTTP, then flush to an OTLP receiver."""
    warehouses = open_warehouses(config.warehouses)
    with OtlpReceiver() as receiver:
        telemetry = Telemetry(daemon=True, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRIC_EXPORT_INTERVAL": "3600000", "DQMON_INSTANCE": "cardinality"})
        try:
            results = scan_plan([(t, t.checks, None) for t in config.tables], warehouses,
                                observer=telemetry.observer)
            telemetry.record(results)
            scrape = scrape_metrics(telemetry)
        finally:
            telemetry.shutdown(timeout_s=30)  # the daemon's last push: here its one export
            for warehouse in warehouses.values():
                warehouse.dispose()
        receiver.wait_for(lambda r: len(series_at_otlp(r.points(), "dq.check.up")) >= CHECKS)
        return Published(results, parse(scrape), receiver.points())


def scrape_metrics(telemetry: Telemetry) -> str:
    """GET /metrics from dqmon's own HTTP server, serving `telemetry`."""
    server = HealthServer(("127.0.0.1", 0), telemetry.metrics_text, lambda: True)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=60) as response:
            assert response.status == 200
            return str(response.read().decode())
    finally:
        server.stop()


def parse(text: str) -> Scrape:
    """Parse a scrape as Prometheus does, once (the parser is slow): {family: samples}."""
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def series_on_metrics(scrape: Scrape, name: str) -> dict[Key, float]:
    """Index a family's samples by (dq_table, dq_check); overflow samples have neither."""
    return {(s.labels["dq_table"], s.labels["dq_check"]): s.value
            for s in scrape[name] if s.labels.get("dq_table")}


def series_at_otlp(points: Iterable[MetricPoint], name: str) -> dict[Key, float]:
    """Index a metric's points by (dq.table, dq.check); overflow points have neither."""
    return {(p.attributes["dq.table"], p.attributes["dq.check"]): p.value
            for p in points if p.name == name and "dq.table" in p.attributes}


def overflow_on_metrics(scrape: Scrape) -> list[Sample]:
    """Return every /metrics sample folded into the SDK's overflow series."""
    # The Python exporter gives every sample of a family the union of its label names, so
    # a family with an overflow point shows otel_metric_overflow="" on all the others.
    return [s for family in scrape.values() for s in family
            if s.labels.get("otel_metric_overflow") == "true"]


def test_the_scan_answers_every_check(published: Published) -> None:
    """One process ran 2,100 completeness checks, none of them errored."""
    assert len(published.results) == CHECKS
    assert {r.spec.kind for r in published.results} == {"completeness"}
    assert {(r.table, r.check) for r in published.results if r.status != "error"} == \
        expected_checks()


def test_metrics_endpoint_shows_every_series(published: Published) -> None:
    """/metrics has one series per check in each gauge, with the scanned values."""
    for name in GAUGES.values():
        assert set(series_on_metrics(published.scrape, name)) == expected_checks(), name
    ratios = series_on_metrics(published.scrape, "dq_completeness_ratio")
    assert all(v == pytest.approx(expected_ratio(int(check.rpartition("_c")[2])))
               for (_, check), v in ratios.items())


def test_otlp_receiver_gets_every_series(published: Published) -> None:
    """The OTLP gRPC export carries one point per check in each gauge, with the same values."""
    for name in GAUGES:
        assert set(series_at_otlp(published.points, name)) == expected_checks(), name
    assert series_at_otlp(published.points, "dq.completeness_ratio") == \
        series_on_metrics(published.scrape, "dq_completeness_ratio")


def test_no_series_is_folded_into_overflow(published: Published) -> None:
    """No otel.metric.overflow series anywhere, and the monitor gauges say so."""
    assert overflow_on_metrics(published.scrape) == []
    assert [p for p in published.points if "otel.metric.overflow" in p.attributes] == []
    assert [s.value for s in published.scrape["dq_monitor_overflow"]] == [0.0]
    assert [p.value for p in published.points if p.name == "dq.monitor.overflow"] == [0.0]
    counts = {s.labels["dq_metric"]: s.value for s in published.scrape["dq_monitor_series"]}
    assert {name: counts[name] for name in GAUGES} == dict.fromkeys(GAUGES, CHECKS)


def test_the_sdk_default_limit_would_fold_otlp_series(published: Published,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """At the SDK's default limit the OTLP export folds series, loudly (so the tests above
    bite); /metrics, rendered by dqmon from its own registry, still shows every series and
    publishes the OTLP overflow in dq_monitor_overflow."""
    caplog.set_level(logging.INFO, logger="dqmon.telemetry")
    with OtlpReceiver() as receiver:
        telemetry = Telemetry(daemon=True, cardinality_limit=SDK_DEFAULT_LIMIT, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRIC_EXPORT_INTERVAL": "3600000"})
        telemetry.record(published.results)
        telemetry.shutdown(timeout_s=30)
        receiver.wait_for(lambda r: any(p.name == "dq.check.up" for p in r.points()))
        points = receiver.points()
    assert len(series_at_otlp(points, "dq.check.up")) == SDK_DEFAULT_LIMIT
    assert {p.name for p in points if "otel.metric.overflow" in p.attributes} == set(GAUGES)
    scrape = parse(telemetry.metrics_text()[0].decode())
    assert set(series_on_metrics(scrape, "dq_check_up")) == expected_checks()
    assert overflow_on_metrics(scrape) == []
    assert [s.value for s in scrape["dq_monitor_overflow"]] == [1.0]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "series lost to the OpenTelemetry cardinality limit"]
    fields: dict[str, Any] = getattr(warnings[0], "dq_fields", {})
    assert fields["source"] != "/metrics" and fields["limit"] == SDK_DEFAULT_LIMIT
