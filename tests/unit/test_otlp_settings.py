"""OTLP protocol and endpoint selection (SPEC section 13) and the scan spans' database attributes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from sqlalchemy import make_url

from dqmon.config import parse_config
from dqmon.telemetry.exporters import ExportHealth, metric_exporters, span_exporters
from dqmon.telemetry.settings import read_settings
from dqmon.telemetry.tracing import db_attributes


def targets(env: dict[str, str]) -> tuple[tuple[str, str], tuple[str, str]]:
    """(protocol, endpoint) of metrics and of traces, as the daemon reads `env`."""
    s = read_settings(env, daemon=True)
    return ((s.metrics_otlp.protocol, s.metrics_otlp.endpoint),
            (s.traces_otlp.protocol, s.traces_otlp.endpoint))


def test_default_is_grpc_on_4317() -> None:
    """Without variables both signals go over gRPC to localhost:4317."""
    assert targets({}) == (("grpc", "http://localhost:4317"), ("grpc", "http://localhost:4317"))


def test_http_defaults_to_4318_with_signal_paths() -> None:
    """http/protobuf without an endpoint posts to localhost:4318/v1/metrics and /v1/traces."""
    assert targets({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}) == (
        ("http/protobuf", "http://localhost:4318/v1/metrics"),
        ("http/protobuf", "http://localhost:4318/v1/traces"))


@pytest.mark.parametrize("base", ["https://otel.example:4318", "https://otel.example:4318/"])
def test_http_generic_endpoint_gets_the_signal_path(base: str) -> None:
    """Over HTTP the generic endpoint is a base URL: /v1/<signal> is appended, one slash."""
    assert targets({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": base}) == (
        ("http/protobuf", "https://otel.example:4318/v1/metrics"),
        ("http/protobuf", "https://otel.example:4318/v1/traces"))


def test_signal_endpoints_are_used_as_they_are() -> None:
    """A signal's own endpoint is never extended; the gRPC generic endpoint neither."""
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
           "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9000/otlp/metrics",
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318",
           "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}
    assert targets(env) == (("http/protobuf", "http://m:9000/otlp/metrics"),
                            ("grpc", "http://base:4318"))


def test_signal_protocol_beats_the_generic_one() -> None:
    """OTEL_EXPORTER_OTLP_METRICS_PROTOCOL overrides OTEL_EXPORTER_OTLP_PROTOCOL for metrics."""
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
           "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "HTTP/protobuf"}
    assert targets(env) == (("http/protobuf", "http://localhost:4318/v1/metrics"),
                            ("grpc", "http://localhost:4317"))


def test_unknown_protocols_warn_once_and_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    """http/json and typos: one warning naming them; the signal takes the next setting."""
    caplog.set_level(logging.WARNING, logger="dqmon.telemetry")
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
           "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grcp",
           "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf"}
    assert targets(env) == (("http/protobuf", "http://localhost:4318/v1/metrics"),
                            ("grpc", "http://localhost:4317"))
    assert [r.getMessage() for r in caplog.records] == [
        "telemetry: OTEL_EXPORTER_OTLP_PROTOCOL=http/json, "
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grcp not supported (use grpc or http/protobuf); "
        "ignored"]


def test_http_target_label_is_host_and_port() -> None:
    """Outage warnings name host:port over HTTP too, without the path or credentials."""
    s = read_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                       "OTEL_EXPORTER_OTLP_ENDPOINT": "https://u:pw@otel.example:4318"},
                      daemon=False)
    assert s.metrics_otlp.label == s.traces_otlp.label == "otel.example:4318"


def test_http_exporters_are_the_official_http_ones() -> None:
    """http/protobuf builds the opentelemetry-exporter-otlp-proto-http exporters."""
    settings = read_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, daemon=True)
    health = ExportHealth()
    (metrics,) = metric_exporters(settings, health)
    (spans,) = span_exporters(settings, health)
    inner = [metrics._inner, spans._inner]  # type: ignore[attr-defined]
    assert [type(e).__module__ for e in inner] == [
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter"]
    for exporter in (metrics, spans):
        exporter.shutdown()


LOADED = """
import json, sys
from dqmon.telemetry.exporters import ExportHealth, metric_exporters, span_exporters
from dqmon.telemetry.settings import read_settings
settings = read_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": sys.argv[1]}, daemon=True)
metric_exporters(settings, ExportHealth()), span_exporters(settings, ExportHealth())
print(json.dumps(sorted({m.rsplit(".", 1)[0] for m in sys.modules
                         if m.startswith("opentelemetry.exporter.otlp.proto.")})))
"""


@pytest.mark.parametrize(("protocol", "absent"), [("grpc", "http"), ("http/protobuf", "grpc")])
def test_only_the_protocol_in_use_is_imported(protocol: str, absent: str) -> None:
    """Building the exporters of one protocol never imports the other's package."""
    out = subprocess.run([sys.executable, "-c", LOADED, protocol], capture_output=True,
                         text=True, check=True).stdout
    loaded = json.loads(out)
    assert not any(m.startswith(f"opentelemetry.exporter.otlp.proto.{absent}") for m in loaded)
    assert any(m.startswith(f"opentelemetry.exporter.otlp.proto.{protocol[:4]}") for m in loaded)


# --- database attributes of the dq.scan spans --------------------------------------------------

TABLES = """
version: 1
warehouses:
  main: {url: "sqlite:///unused.db"}
tables:
  - name: orders
    table: sales.orders
    checks: [{row_count: {min: 1}}]
  - name: events
    checks: [{row_count: {min: 1}}]
"""


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql+psycopg://reader:s3cret@db.internal:6432/shop",
     {"db.namespace": "shop", "server.address": "db.internal", "server.port": 6432}),
    ("postgresql+psycopg://reader@db.internal/shop",
     {"db.namespace": "shop", "server.address": "db.internal"}),
    ("postgresql+psycopg:///shop?host=/run/postgresql", {"db.namespace": "shop"}),
    ("mysql+pymysql://u:s3cret@mysql:3307/shop",
     {"db.namespace": "shop", "server.address": "mysql", "server.port": 3307}),
    ("mariadb+pymysql://u@maria/shop", {"db.namespace": "shop", "server.address": "maria"}),
    ("trino://u:s3cret@trino.example:8443/hive/sales",
     {"db.namespace": "hive|sales", "server.address": "trino.example", "server.port": 8443}),
    ("snowflake://u:s3cret@my-account/analytics/public", {"db.namespace": "analytics|public"}),
    ("bigquery://my-project/my_dataset", {"db.namespace": "my_dataset"}),
    ("sqlite:////var/lib/dq/warehouse.db", {"db.namespace": "/var/lib/dq/warehouse.db"}),
    ("sqlite://", {}),
    ("duckdb:///:memory:", {}),
])
def test_db_attributes_per_dialect(url: str, expected: dict[str, object]) -> None:
    """db.namespace, server.address and server.port as the URL gives them; no credentials."""
    parsed = make_url(url)
    orders, events = parse_config(TABLES, env={}).tables
    attributes = db_attributes(parsed.get_backend_name(), parsed, orders)
    dialect = parsed.get_backend_name()
    assert attributes == {"db.system.name": dialect, "db.system": dialect,
                          "db.collection.name": "sales.orders", **expected}
    assert "s3cret" not in repr(attributes) and "reader" not in repr(attributes)
    assert db_attributes(dialect, parsed, events)["db.collection.name"] == "events"
