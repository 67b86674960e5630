"""/metrics, served from Telemetry.metrics_text() over real HTTP, parsed as Prometheus does."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from dqmon.config import parse_config
from dqmon.results import CheckResult
from dqmon.telemetry import GAUGES, MONITOR_GAUGES, Telemetry

CONFIG = """\
version: 1
warehouses:
  main: {url: "sqlite:///unused.db"}
tables:
  - name: orders
    checks:
      - freshness: {column: created_at, max_age: 2h}
      - row_count: {min: 1}
      - completeness: {columns: [id]}
      - validity: {name: positive, column: amount, between: [0, 10]}
      - uniqueness: {columns: [id, day]}
      - schema: {columns: {id: integer}}
      - custom: {name: late, sql: "select 1", max: 10, severity: warning}
      - schema_change: {}
      - statistic: {column: amount, stat: avg, min: 1}
      - reference: {column: customer_id, to: customers.id}
"""

# SPEC section 3, third column: the names Prometheus must see.
SPEC_NAMES = {"dq_freshness_seconds", "dq_row_count", "dq_completeness_ratio",
              "dq_validity_ratio", "dq_uniqueness_ratio", "dq_schema_mismatches",
              "dq_custom_value", "dq_check_passed", "dq_check_up", "dq_check_duration_seconds",
              "dq_check_last_run_timestamp_seconds", "dq_check_threshold",
              "dq_schema_changes",  # SPEC section 9
              "dq_statistic_value", "dq_reference_ratio"}  # SPEC section 8
# Issue 9: the gauges about dqmon itself (series per gauge, cardinality overflow).
MONITOR_NAMES = {"dq_monitor_series", "dq_monitor_overflow"}

VALUES = {"freshness": 90.0, "row_count": 12.0, "completeness_id": 1.0, "positive": 0.5,
          "uniqueness_id_day": 0.75, "schema": 0.0, "late": 3.0, "schema_change": 0.0,
          "avg_amount": 12.5, "reference_customer_id": 0.95}


def _results() -> list[CheckResult]:
    config = parse_config(CONFIG, env={})
    now = time.time()
    return [CheckResult(spec, "main", None, VALUES[spec.name],
                        "pass" if spec.threshold.passes(VALUES[spec.name]) else "fail",
                        0.25, now) for spec in config.tables[0].checks]


@pytest.fixture
def scrape() -> Iterator[str]:
    """Serve a daemon-mode Telemetry's /metrics on a free port; yield one scrape of it."""
    telemetry = Telemetry(daemon=True, export=False, env={"DQMON_INSTANCE": "scrape-test"})
    telemetry.record(_results())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body, content_type = telemetry.metrics_text()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            yield response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        telemetry.shutdown()


def test_metrics_endpoint_uses_the_spec_names_exactly(scrape: str) -> None:
    """The scrape holds exactly SPEC section 3's names, the two monitor names and target_info."""
    names = {family.name for family in text_string_to_metric_families(scrape)}
    assert names == SPEC_NAMES | MONITOR_NAMES | {"target_info"}


def test_no_two_otel_gauges_share_a_prometheus_name(scrape: str) -> None:
    """Each OTel gauge becomes its own Prometheus family (its help text says which)."""
    families = {f.name: f for f in text_string_to_metric_families(scrape)}
    helps = {f.documentation for name, f in families.items() if name != "target_info"}
    assert helps == {gauge.description for gauge in GAUGES + MONITOR_GAUGES}
    assert len(helps) == len(GAUGES + MONITOR_GAUGES) == len(SPEC_NAMES | MONITOR_NAMES)
    assert all(f.type == "gauge" for f in families.values())


def _samples(scrape: str, name: str) -> list[Sample]:
    return [s for f in text_string_to_metric_families(scrape) if f.name == name
            for s in f.samples]


def test_metrics_endpoint_labels_and_values(scrape: str) -> None:
    """Labels are the dq.* attributes with dots as underscores; values are the recorded ones."""
    (validity,) = _samples(scrape, "dq_validity_ratio")
    assert validity.value == 0.5
    assert {k: v for k, v in validity.labels.items() if not k.startswith("otel_scope")} == {
        "dq_warehouse": "main", "dq_table": "orders", "dq_check": "positive",
        "dq_column": "amount", "dq_rule": "positive"}
    (unique,) = _samples(scrape, "dq_uniqueness_ratio")
    assert unique.labels["dq_column"] == "id,day" and unique.value == 0.75
    bounds = {s.labels["dq_bound"]: s.value for s in _samples(scrape, "dq_check_threshold")
              if s.labels["dq_check"] == "late"}
    assert bounds == {"max": 10.0}
    passed = {s.labels["dq_check"]: (s.value, s.labels["dq_severity"])
              for s in _samples(scrape, "dq_check_passed")}
    assert passed["late"] == (1.0, "warning") and passed["row_count"] == (1.0, "critical")
    (target,) = _samples(scrape, "target_info")
    assert target.labels["service_instance_id"] == "scrape-test"
    assert target.labels["service_name"] == "dqmon"


def test_metrics_text_speaks_openmetrics_when_asked() -> None:
    """An OpenMetrics Accept header gets OpenMetrics with the same family names."""
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as openmetrics_families,
    )

    telemetry = Telemetry(daemon=True, export=False, env={})
    telemetry.record(_results())
    body, content_type = telemetry.metrics_text("application/openmetrics-text; version=1.0.0")
    telemetry.shutdown()
    assert content_type.startswith("application/openmetrics-text")
    names = {f.name for f in openmetrics_families(body.decode())}
    # OpenMetrics names the info family without _info
    assert names == SPEC_NAMES | MONITOR_NAMES | {"target"}
