"""Spans: `dq.scan <table>` per scan (SPEC section 3), SQL without literals, TRACEPARENT joins."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from dqmon import redact
from dqmon.config.resolved import TableSpec
from dqmon.scan import ScanRecorder
from dqmon.warehouse import Warehouse

# Quoted identifiers are kept; string and numeric literals become `?` (OTel's db.query.text
# sanitization), so `where`, `condition` and custom SQL leak no data into traces.
_SQL_TOKENS = re.compile(r"""
    (?P<ident>"(?:[^"]|"")*"|`[^`]*`)
  | (?P<string>(?:(?<!\w)[eEnNbBxX])?'(?:[^']|'')*')
  | (?P<number>(?<![\w.$:%])(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
""", re.VERBOSE)


def sanitize_sql(sql: str) -> str:
    """Replace the literal values in `sql` by `?`, keeping identifiers and placeholders."""
    return _SQL_TOKENS.sub(lambda m: m.group("ident") or "?", sql)


def env_context(env: Mapping[str, str]) -> Context | None:
    """Return the caller's context from TRACEPARENT / TRACESTATE (the OTel env carrier)."""
    # The SDK's environment getter is private (and changed in 1.44): read the two keys here.
    carrier = {key.lower(): env[key] for key in ("TRACEPARENT", "TRACESTATE") if env.get(key)}
    if "traceparent" not in carrier:
        return None
    return TraceContextTextMapPropagator().extract(carrier)


class SpanObserver:
    """A `dqmon.scan.ScanObserver` that wraps every scan in a `dq.scan <table>` span."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    @contextlib.contextmanager
    def scan(self, table: TableSpec, warehouse: Warehouse,
             partition: str | None) -> Iterator[ScanRecorder]:
        """Open the scan's span; the recorder fills in queries, rows and errors."""
        attributes = {"dq.warehouse": warehouse.name, "dq.table": table.name,
                      "db.system": warehouse.dialect}
        if partition is not None:
            attributes["dq.partition"] = partition
        with self._tracer.start_as_current_span(f"dq.scan {table.name}", kind=SpanKind.CLIENT,
                                                attributes=attributes) as span:
            recorder = SpanRecorder(span)
            try:
                yield recorder
            finally:
                recorder.close()


class SpanRecorder:
    """Records one scan on its span: sanitized query text, rows in scope, check errors."""

    def __init__(self, span: Span) -> None:
        self._span = span
        self._queries: list[str] = []

    def query(self, sql: str) -> None:
        """Remember a query the scan ran (literals removed)."""
        self._queries.append(redact.scrub(sanitize_sql(sql)))

    def rows(self, count: int) -> None:
        """Set dq.rows, the number of rows in scope."""
        self._span.set_attribute("dq.rows", count)

    def error(self, message: str) -> None:
        """Mark the scan's span as failed (a check errored)."""
        self._span.set_status(Status(StatusCode.ERROR, redact.scrub_literals(message)))

    def close(self) -> None:
        """Write db.query.text: every statement of the scan, in the order they ran."""
        if self._queries:
            self._span.set_attribute("db.query.text", ";\n".join(self._queries))
