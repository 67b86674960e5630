"""run-once's export: exporters built while the scan runs, one export of everything at exit.

A periodic reader and a batch span processor need their exporters when the providers are
built, so run-once paid the gRPC (or HTTP) import and the exporters' set-up (about 0.1 s)
before its first query, and then flushed through machinery made for a daemon. Here the providers get
in-memory collectors, a background thread imports and builds the exporters while the scan
waits on the warehouse, and `export_*` hands the collected data to them once (issue 11).
"""

from __future__ import annotations

import logging
import threading
import time

from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dqmon.telemetry import exporters
from dqmon.telemetry.cardinality import OverflowWatch
from dqmon.telemetry.settings import Settings

log = logging.getLogger("dqmon.telemetry")


class OneShotExport:
    """Collects a run's metrics and spans in memory; exports them once, at shutdown."""

    def __init__(self, settings: Settings, health: exporters.ExportHealth,
                 watch: OverflowWatch) -> None:
        self.reader = InMemoryMetricReader()
        self._spans = InMemorySpanExporter()
        self._metric_exporters: list[MetricExporter] = []
        self._span_exporters: list[SpanExporter] = []
        self._builder = threading.Thread(target=self._build, args=(settings, health, watch),
                                         name="dqmon-telemetry-setup", daemon=True)
        self._builder.start()

    @property
    def span_processor(self) -> SpanProcessor:
        """Return the processor that keeps ended spans for the export at exit."""
        return SimpleSpanProcessor(self._spans)

    def _build(self, settings: Settings, health: exporters.ExportHealth,
               watch: OverflowWatch) -> None:
        try:
            self._metric_exporters = exporters.metric_exporters(settings, health, watch)
            self._span_exporters = exporters.span_exporters(settings, health)
        except Exception as exc:  # noqa: BLE001 - a broken exporter setting costs its export
            log.warning("telemetry: cannot set up the exporter (%s); exporting nothing",
                        type(exc).__name__)

    def export_metrics(self, deadline_s: float) -> None:
        """Export the run's metrics once to every metric exporter (a monotonic deadline)."""
        if not self._ready(deadline_s):
            return
        data = self.reader.get_metrics_data()
        for exporter in self._metric_exporters:
            if data is not None:
                exporter.export(data, timeout_millis=_left_ms(deadline_s))
            exporter.shutdown(timeout_millis=_left_ms(deadline_s))

    def export_spans(self, deadline_s: float) -> None:
        """Export the run's spans once to every span exporter."""
        if not self._ready(deadline_s):
            return
        spans = self._spans.get_finished_spans()
        for exporter in self._span_exporters:
            if spans:
                exporter.export(spans)
            exporter.shutdown()

    def _ready(self, deadline_s: float) -> bool:
        """Wait for the exporters to be built, at most until the deadline."""
        self._builder.join(max(0.0, deadline_s - time.monotonic()))
        return not self._builder.is_alive()


def _left_ms(deadline_s: float) -> float:
    return max(0.0, deadline_s - time.monotonic()) * 1000
