"""The only part of dqmon that talks OpenTelemetry: providers, `dq.*` gauges, spans, exports.

One `Telemetry` per process owns one MeterProvider and one TracerProvider (SPEC section 3).
The gauges observe a results registry that dqmon owns. OTLP pushes read it through the
MeterProvider, whose cardinality limit is set once, high, and watched (issue 9,
`cardinality.py`); the daemon's `/metrics` text is rendered from the same registry directly
(`exposition.py`), with the same names and labels, at a fraction of the cost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import format_trace_id

from dqmon import __version__
from dqmon.config.resolved import CheckSpec
from dqmon.results import CheckResult
from dqmon.scan import ScanObserver
from dqmon.telemetry import exporters
from dqmon.telemetry.cardinality import CARDINALITY_LIMIT, OverflowWatch, SeriesCounts, limit_views
from dqmon.telemetry.exposition import OPENMETRICS, TEXT, Exposition, wants_openmetrics
from dqmon.telemetry.gauges import GAUGES, MONITOR_GAUGES, register_gauges, register_monitor_gauges
from dqmon.telemetry.oneshot import OneShotExport
from dqmon.telemetry.registry import ResultsRegistry
from dqmon.telemetry.settings import Settings, read_settings
from dqmon.telemetry.tracing import SpanObserver, env_context, sanitize_sql

__all__ = ["CARDINALITY_LIMIT", "GAUGES", "MONITOR_GAUGES", "SCOPE", "Telemetry",
           "sanitize_sql"]

SCOPE = "dqmon"  # the instrumentation scope of every gauge and span

log = logging.getLogger("dqmon.telemetry")
T = TypeVar("T")


class Telemetry:
    """Gauges, spans and their exports for one dqmon process."""

    def __init__(self, *, daemon: bool = False, export: bool = True,
                 env: Mapping[str, str] | None = None,
                 metric_readers: Sequence[MetricReader] = (),
                 span_exporter: SpanExporter | None = None,
                 cardinality_limit: int = CARDINALITY_LIMIT) -> None:
        self._env = os.environ if env is None else env
        self._daemon = daemon
        self._export = export
        self._closed = False
        self._health = exporters.ExportHealth()
        self._watch = OverflowWatch(cardinality_limit)
        self._registry = ResultsRegistry()
        settings = read_settings(self._env, daemon=daemon)
        resource = Resource.create(dict(settings.resource))
        self._exposition = Exposition(resource.attributes, SCOPE, __version__) if daemon else None
        if export:
            exporters.quiet_exporter_logs()
        # run-once exports once, at exit, through exporters built while it scans (oneshot.py)
        self._oneshot = OneShotExport(settings, self._health, self._watch) \
            if export and not daemon else None
        self._meters = MeterProvider(resource=resource, shutdown_on_exit=False,
                                     metric_readers=[*metric_readers, *self._push(settings)],
                                     views=limit_views(SCOPE, cardinality_limit))
        self._register_gauges()
        processors = self._span_processors(settings)
        if span_exporter is not None:
            processors.append(SimpleSpanProcessor(span_exporter))
        self._tracers = _tracer_provider(resource, processors)
        self._tracer = self._tracers.get_tracer(SCOPE, __version__)
        self._observer = SpanObserver(self._tracer)

    def _push(self, settings: Settings) -> list[MetricReader]:
        """Return the readers that export: the daemon's periodic ones, run-once's collector."""
        if self._oneshot is not None:
            return [self._oneshot.reader]
        if not (self._daemon and self._export):
            return []
        return _guarded(lambda: exporters.metric_readers(settings, self._health, self._watch))

    def _span_processors(self, settings: Settings) -> list[SpanProcessor]:
        if self._oneshot is not None:
            return [self._oneshot.span_processor]
        if not (self._daemon and self._export):
            return []
        return _guarded(lambda: exporters.span_processors(settings, self._health))

    def _register_gauges(self) -> None:
        """Create the dq.* gauges, then the dq.monitor.* gauges that count them."""
        meter = self._meters.get_meter(SCOPE, __version__)
        counts = SeriesCounts()
        register_gauges(meter, self._registry, counts)
        register_monitor_gauges(meter, counts, self._watch)

    @property
    def observer(self) -> ScanObserver:
        """Return the scan observer that makes the `dq.scan <table>` spans."""
        return self._observer

    @contextlib.contextmanager
    def run_span(self) -> Iterator[None]:
        """Wrap a run in the root `dq.run` span (run-once joins the caller's TRACEPARENT)."""
        parent = None if self._daemon else env_context(self._env)
        with self._tracer.start_as_current_span("dq.run", context=parent):
            yield

    def record(self, results: Sequence[CheckResult]) -> None:
        """Publish results: the gauges report them from the next collection on."""
        self._registry.record(results)

    def retain(self, specs: Iterable[CheckSpec]) -> None:
        """Stop reporting every check that is not in `specs` (after a reload)."""
        self._registry.retain(specs)

    def metrics_text(self, accept: str | None = None) -> tuple[bytes, str]:
        """Return the Prometheus exposition body and its content type (daemon only)."""
        if self._exposition is None:
            raise RuntimeError("metrics_text() needs Telemetry(daemon=True)")
        openmetrics = wants_openmetrics(accept)
        body = self._exposition.render(self._registry.snapshot(), openmetrics=openmetrics,
                                       overflow=self._watch.overflowing)
        return body, OPENMETRICS if openmetrics else TEXT

    def current_trace_id(self) -> str | None:
        """Return the active span's trace id in hex, or None outside a span."""
        context = trace.get_current_span().get_span_context()
        return format_trace_id(context.trace_id) if context.is_valid else None

    def shutdown(self, timeout_s: float = 3.0) -> None:
        """Flush once and shut down within `timeout_s`; never raises; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout_s
        millis = int(timeout_s * 1000)
        # Metrics and spans flush side by side: a black-holed collector costs one exporter
        # timeout, not two. The threads are daemons: past the deadline, exit does not wait.
        workers = [_start(lambda: self._close_metrics(millis, deadline)),
                   _start(lambda: self._close_traces(millis, deadline))]
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if any(worker.is_alive() for worker in workers):
            log.warning("telemetry: flush did not finish within %.1f s; giving up", timeout_s)

    def _close_metrics(self, millis: int, deadline: float) -> None:
        if not self._daemon:
            self._meters.force_flush(timeout_millis=millis)  # readers given by the caller
        if self._oneshot is not None:
            self._oneshot.export_metrics(deadline)  # run-once's one export
        self._meters.shutdown(timeout_millis=millis)

    def _close_traces(self, millis: int, deadline: float) -> None:
        self._tracers.force_flush(timeout_millis=millis)
        if self._oneshot is not None:
            self._oneshot.export_spans(deadline)
        self._tracers.shutdown()


def _tracer_provider(resource: Resource, processors: Sequence[SpanProcessor]) -> TracerProvider:
    """Build the TracerProvider; `shutdown()` closes it, so no exit hook."""
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def _guarded(build: Callable[[], list[T]]) -> list[T]:
    """Build exporters; a broken exporter setting costs its export, never the run."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - e.g. an unreadable certificate file
        log.warning("telemetry: cannot set up the exporter (%s); exporting nothing",
                    type(exc).__name__)
        return []


def _start(work: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - shutdown never raises (telemetry API)
            log.warning("telemetry: shutdown failed (%s)", type(exc).__name__)

    thread = threading.Thread(target=run, name="dqmon-telemetry-flush", daemon=True)
    thread.start()
    return thread
