"""`dqmon import-dbt`: read a dbt run's artifacts, publish its tests like checks, print, exit.

Imported only when the command runs (issue 11); with --no-export, OpenTelemetry never is.
The mapping itself is pure and lives in `dqmon.dbt` (docs/dbt.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dqmon import dbt
from dqmon.output import render_json, render_text
from dqmon.results import exit_code

if TYPE_CHECKING:
    from dqmon.telemetry.tracing import SpanObserver


@dataclass(frozen=True)
class Request:
    """What the command line asked of one import."""

    run_results: str
    manifest: str | None
    warehouse: str
    json: bool
    export: bool


@dataclass(frozen=True)
class Outcome:
    """What to print on stdout and stderr, and the exit code."""

    text: str
    notes: list[str]
    code: int


def import_dbt(request: Request, clock: Callable[[], float] = time.time) -> Outcome:
    """Read, map and publish the run; return what to print and the exit code (as run-once)."""
    imported = load(request, clock())
    if request.export:
        publish(imported)
    text = render_json(imported.results) if request.json else render_text(imported.results)
    return Outcome(text, imported.notes, int(exit_code(imported.results)))


def load(request: Request, now_s: float) -> dbt.Imported:
    """Read both files (UsageError naming a bad one) and map the run."""
    nodes = dbt.parse_run_results(dbt.read_json(request.run_results, "run-results"),
                                  request.run_results, now_s)
    tests = None if request.manifest is None else \
        dbt.parse_manifest(dbt.read_json(request.manifest, "manifest"), request.manifest)
    return dbt.import_run(nodes, tests, request.warehouse)


def publish(imported: dbt.Imported) -> None:
    """Export the gauges and one span per node under a `dq.run` span joining TRACEPARENT."""
    from dqmon.telemetry import Telemetry
    from dqmon.telemetry.tracing import SpanObserver

    telemetry = Telemetry()
    try:
        with telemetry.run_span():
            observer = telemetry.observer
            if isinstance(observer, SpanObserver):  # Telemetry's is; the property says less
                _record_spans(observer, imported.spans)
            telemetry.record(imported.results)
    finally:
        telemetry.shutdown()  # one bounded flush; an export failure never changes the exit code


def _record_spans(observer: SpanObserver, spans: list[dbt.NodeSpan]) -> None:
    """Record each node's span, with dbt's own start and end, under the current span."""
    for span in spans:
        observer.finished(span.name, span.attributes, span.start_s, span.end_s, span.error)
