"""OTLP over HTTP (SPEC section 13): the same metrics and spans as gRPC, the same outage rules.

The contract config, run-once wrapper and down config are test_otlp.py's; here they push to
`OtlpHttpReceiver` (the official protobufs over http.server) and are compared with a push to
the gRPC `OtlpReceiver`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_otlp import contract_config, down_config, run_once

from otlp_receiver import (
    BlackHole,
    MetricPoint,
    OtlpHttpReceiver,
    OtlpReceiver,
    ReceivedSpan,
    closed_port,
)

pytestmark = pytest.mark.postgres
__all__ = ["contract_config", "down_config"]  # fixtures shared with test_otlp.py

HTTP = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
# Gauges whose value is a clock reading or a duration: equal runs differ in them by design.
TIMED = {"dq.freshness_seconds", "dq.check.duration_seconds",
         "dq.check.last_run_timestamp_seconds"}
# SPEC section 3 allows ~3 s for a down collector; the bound is generous, as for gRPC.
OUTAGE_BOUND_S = 6.0


@pytest.fixture
def http_receiver() -> Iterator[OtlpHttpReceiver]:
    """A running OTLP/HTTP receiver."""
    with OtlpHttpReceiver() as running:
        yield running


@pytest.fixture
def grpc_receiver() -> Iterator[OtlpReceiver]:
    """A running OTLP gRPC receiver."""
    with OtlpReceiver() as running:
        yield running


def comparable_points(points: list[MetricPoint]) -> set[tuple[Any, ...]]:
    """Points as (name, unit, kind, attributes, value, scope, resource); timed values dropped."""
    return {(p.name, p.unit, p.kind, frozenset(p.attributes.items()),
             None if p.name in TIMED else p.value, p.scope, frozenset(p.resource.items()))
            for p in points}


def comparable_spans(spans: list[ReceivedSpan]) -> set[tuple[Any, ...]]:
    """Spans without their random ids, the tree kept as the parent's name."""
    names = {s.span_id: s.name for s in spans}
    return {(s.name, names.get(s.parent_span_id, s.parent_span_id), s.trace_id, s.kind,
             frozenset(s.attributes.items()), s.status, s.status_message, s.scope,
             frozenset(s.resource.items())) for s in spans}


def _push(config: Path, env: dict[str, str]) -> int:
    """Run the contract config once inside a fixed trace; return its exit code."""
    proc = run_once(config, {"TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                             "00f067aa0ba902b7-01", "DQMON_INSTANCE": "ci-runner-1", **env})
    assert proc.stderr == "", proc.stderr
    return proc.returncode


def test_http_receiver_gets_what_the_grpc_receiver_gets(
        contract_config: Path, http_receiver: OtlpHttpReceiver,
        grpc_receiver: OtlpReceiver) -> None:
    """One run-once over each protocol: the same points and spans, one request per signal."""
    assert _push(contract_config, {"OTEL_EXPORTER_OTLP_ENDPOINT": grpc_receiver.endpoint}) == 3
    assert _push(contract_config, {**HTTP,
                                   "OTEL_EXPORTER_OTLP_ENDPOINT": http_receiver.endpoint}) == 3
    assert len(http_receiver.metric_requests) == len(http_receiver.span_requests) == 1
    assert comparable_points(http_receiver.points()) == comparable_points(grpc_receiver.points())
    assert comparable_spans(http_receiver.spans()) == comparable_spans(grpc_receiver.spans())
    assert len(http_receiver.points()) > 50 and len(http_receiver.spans()) == 3


def test_per_signal_protocols_and_endpoints(contract_config: Path,
                                            http_receiver: OtlpHttpReceiver,
                                            grpc_receiver: OtlpReceiver) -> None:
    """Metrics over HTTP to a signal URL used as it is, spans over gRPC: each where it was sent."""
    assert _push(contract_config, {
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{http_receiver.endpoint}/v1/metrics",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": grpc_receiver.endpoint}) == 3
    assert (len(http_receiver.metric_requests), len(http_receiver.span_requests)) == (1, 0)
    assert (len(grpc_receiver.metric_requests), len(grpc_receiver.span_requests)) == (0, 1)


def test_unknown_protocol_warns_once_and_uses_grpc(contract_config: Path,
                                                   grpc_receiver: OtlpReceiver) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=http/json: one warning line, then the gRPC default."""
    proc = run_once(contract_config, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                                      "OTEL_EXPORTER_OTLP_ENDPOINT": grpc_receiver.endpoint})
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == [
        "telemetry: OTEL_EXPORTER_OTLP_PROTOCOL=http/json not supported "
        "(use grpc or http/protobuf); ignored"]
    assert len(grpc_receiver.metric_requests) == len(grpc_receiver.span_requests) == 1


def _timed_run(config: Path, env: dict[str, str], *args: str) -> tuple[Any, float]:
    started = time.monotonic()
    proc = run_once(config, env, *args)
    return proc, time.monotonic() - started


def test_closed_http_endpoint_costs_little_and_warns_once(down_config: Path) -> None:
    """Nothing listening on the HTTP port: same stdout and exit code, one line, bounded delay."""
    quiet, quiet_s = _timed_run(down_config, {}, "--no-export")
    port = closed_port()
    down, down_s = _timed_run(down_config, {**HTTP,
                                            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert (quiet.returncode, down.returncode) == (1, 1)
    assert down.stdout == quiet.stdout
    lines = down.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"telemetry: export to 127.0.0.1:{port} failed")
    assert down_s - quiet_s < OUTAGE_BOUND_S


def test_black_holed_http_endpoint_costs_little_and_warns_once(down_config: Path) -> None:
    """An HTTP collector that accepts and never answers: one line, bounded delay, exit code 1."""
    _, quiet_s = _timed_run(down_config, {}, "--no-export")
    with BlackHole() as hole:
        proc, down_s = _timed_run(down_config, {**HTTP, "OTEL_EXPORTER_OTLP_ENDPOINT": hole.endpoint})
        assert hole.accepted  # the exporter really connected and waited
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{hole.port} failed" in lines[0], lines
    assert down_s - quiet_s < OUTAGE_BOUND_S
