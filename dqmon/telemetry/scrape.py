"""The reader behind the daemon's `/metrics`: the SDK's Prometheus reader, watched for overflow.

Imported only by the daemon's `Telemetry`: run-once needs neither prometheus_client nor it.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import MetricsData
from prometheus_client import CollectorRegistry

from dqmon.telemetry.cardinality import OverflowWatch

SOURCE = "/metrics"  # how log lines name this reader


class WatchedPrometheusReader(PrometheusMetricReader):
    """A Prometheus reader on `registry` that shows every collection to an `OverflowWatch`."""

    def __init__(self, registry: CollectorRegistry, watch: OverflowWatch) -> None:
        super().__init__(registry=registry)
        self._watch = watch

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
                         **kwargs: Any) -> None:
        self._watch.inspect(SOURCE, metrics_data)
        super()._receive_metrics(metrics_data, timeout_millis, **kwargs)
