"""Push exporters: OTLP (gRPC or HTTP) and console, each failure reported once per outage.

The OTLP exporter logs every retry and every failure itself; dqmon silences those records
and reports the outcome it sees instead: one warning when a target starts failing, one info
line when it answers again (SPEC section 3: "reported once per outage"). Every metric export
also passes an `OverflowWatch`, which reports series lost to the cardinality limit.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

from dqmon.outages import Outages
from dqmon.telemetry.cardinality import OverflowWatch
from dqmon.telemetry.settings import HTTP, OtlpTarget, Settings

log = logging.getLogger("dqmon.telemetry")

_EXPORTER_LOGGERS = ("opentelemetry.exporter.otlp.proto.grpc.exporter",
                     "opentelemetry.exporter.otlp.proto.http.metric_exporter",
                     "opentelemetry.exporter.otlp.proto.http.trace_exporter",
                     "opentelemetry.exporter.otlp.common.http")
# Data points per OTLP request. Unsplit, the one request of ~4,900 checks or more (~29,000
# points of ~140 bytes) exceeds gRPC's and the Collector's default 4 MiB message size and
# every export is refused (issue 9); 5,000 points are ~0.7 MB, well under it even with long
# table and column names. The HTTP exporter splits the same way (the Collector's HTTP
# receiver takes 20 MiB bodies by default, other OTLP/HTTP backends less).
OTLP_BATCH_POINTS = 5_000


class ExportHealth:
    """Remembers which targets are failing, to warn once per outage rather than per export."""

    def __init__(self) -> None:
        self._outages = Outages()

    def report(self, target: str, ok: bool) -> None:
        """Record one export's outcome; log only when the target's state changes."""
        changed = self._outages.changed(target, ok)
        if changed and not ok:
            log.warning("telemetry: export to %s failed; metrics and spans are dropped until "
                        "it answers (the checks' results and exit code are unaffected)", target)
        elif changed:
            log.info("telemetry: export to %s works again", target)


class ReportingMetricExporter(MetricExporter):
    """Delegates to an exporter; reports outcomes to an `ExportHealth`, batches to a watch."""

    def __init__(self, inner: MetricExporter, target: str, health: ExportHealth,
                 watch: OverflowWatch | None = None) -> None:
        super().__init__(preferred_temporality=inner._preferred_temporality,
                         preferred_aggregation=inner._preferred_aggregation)
        self._inner, self._target, self._health, self._watch = inner, target, health, watch

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        """Export and report; never raises."""
        if self._watch is not None:
            self._watch.inspect(self._target, metrics_data)
        try:
            result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:  # noqa: BLE001 - an exporter bug must not reach the checks
            result = MetricExportResult.FAILURE
        self._health.report(self._target, result is MetricExportResult.SUCCESS)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the wrapped exporter."""
        return self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the wrapped exporter down."""
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class ReportingSpanExporter(SpanExporter):
    """Delegates to a span exporter and reports each outcome to an `ExportHealth`."""

    def __init__(self, inner: SpanExporter, target: str, health: ExportHealth) -> None:
        self._inner, self._target, self._health = inner, target, health

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export and report; never raises."""
        try:
            result = self._inner.export(spans)
        except Exception:  # noqa: BLE001 - an exporter bug must not reach the checks
            result = SpanExportResult.FAILURE
        self._health.report(self._target, result is SpanExportResult.SUCCESS)
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self._inner.shutdown()


def metric_exporters(settings: Settings, health: ExportHealth,
                     watch: OverflowWatch | None = None) -> list[MetricExporter]:
    """Build the push exporters `OTEL_METRICS_EXPORTER` asks for (prometheus is pull: none)."""
    exporters: list[MetricExporter] = []
    if "otlp" in settings.metrics_exporters:
        target = settings.metrics_otlp
        exporters.append(ReportingMetricExporter(otlp_metric_exporter(target), target.label,
                                                 health, watch))
    if "console" in settings.metrics_exporters:
        exporters.append(ReportingMetricExporter(  # stdout carries the results
            ConsoleMetricExporter(out=sys.stderr), "console", health, watch))
    return exporters


def otlp_metric_exporter(target: OtlpTarget) -> MetricExporter:
    """Build the OTLP metric exporter of the target's protocol, importing only that one."""
    # Imported here: gRPC costs a tenth of a second that --no-export need not pay, and an
    # HTTP user need not load gRPC at all (nor a gRPC user requests).
    if target.protocol == HTTP:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter(**_http_args(target), max_export_batch_size=OTLP_BATCH_POINTS)
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(**_grpc_args(target), max_export_batch_size=OTLP_BATCH_POINTS)


def metric_readers(settings: Settings, health: ExportHealth,
                   watch: OverflowWatch | None = None) -> list[MetricReader]:
    """Build the daemon's periodic push readers, one per exporter."""
    return [PeriodicExportingMetricReader(exporter,
                                          export_interval_millis=settings.export_interval_s * 1000,
                                          export_timeout_millis=export_timeout_ms(settings))
            for exporter in metric_exporters(settings, health, watch)]


def span_exporters(settings: Settings, health: ExportHealth) -> list[SpanExporter]:
    """Build the span exporters `OTEL_TRACES_EXPORTER` asks for."""
    exporters: list[SpanExporter] = []
    if "otlp" in settings.traces_exporters:
        target = settings.traces_otlp
        exporters.append(ReportingSpanExporter(otlp_span_exporter(target), target.label, health))
    if "console" in settings.traces_exporters:
        exporters.append(ConsoleSpanExporter(out=sys.stderr))
    return exporters


def otlp_span_exporter(target: OtlpTarget) -> SpanExporter:
    """Build the OTLP span exporter of the target's protocol, importing only that one."""
    if target.protocol == HTTP:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter(**_http_args(target))
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(**_grpc_args(target))


def span_processors(settings: Settings, health: ExportHealth) -> list[SpanProcessor]:
    """Build the daemon's batching span processors, one per exporter."""
    return [BatchSpanProcessor(exporter) for exporter in span_exporters(settings, health)]


def quiet_exporter_logs() -> None:
    """Drop the OTLP exporter's own retry and failure records: `ExportHealth` reports instead."""
    for name in _EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _BelowWarning) for f in logger.filters):
            logger.addFilter(_BelowWarning())


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


def _grpc_args(target: OtlpTarget) -> dict[str, Any]:
    return {"endpoint": target.endpoint, "insecure": target.insecure,
            "headers": dict(target.headers) or None, "timeout": target.timeout_s}


def _http_args(target: OtlpTarget) -> dict[str, Any]:
    # No `insecure` over HTTP: the URL's scheme decides (http:// plaintext, https:// TLS).
    return {"endpoint": target.endpoint, "headers": dict(target.headers) or None,
            "timeout": target.timeout_s}


def export_timeout_ms(settings: Settings) -> float:
    """Return how long one export may take, in milliseconds."""
    # A little above the exporter's own deadline, so the exporter is what gives up.
    return (settings.metrics_otlp.timeout_s + 1) * 1000
