"""Spans: `dq.scan <table>` per scan (SPEC section 3), SQL without literals, TRACEPARENT joins.

Database attributes follow the OpenTelemetry database semantic conventions: `db.system.name`,
`db.namespace`, `db.collection.name`, `server.address` and `server.port`; the deprecated
`db.system` is kept beside `db.system.name` until dqmon 1.0 (SPEC section 13, issue 13).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from sqlalchemy.engine import URL

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


# Dialects whose URL host is a network address (Snowflake's is an account, BigQuery's a project).
_SERVER_DIALECTS = frozenset({"postgresql", "mysql", "mariadb", "trino"})
# Dialects whose URL database is a file: SQLite and DuckDB name no server.
_FILE_DIALECTS = frozenset({"sqlite", "duckdb"})


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
        attributes: dict[str, AttributeValue] = {
            "dq.warehouse": warehouse.name, "dq.table": table.name,
            **db_attributes(warehouse.dialect, warehouse.url, table)}
        if partition is not None:
            attributes["dq.partition"] = partition
        with self._tracer.start_as_current_span(f"dq.scan {table.name}", kind=SpanKind.CLIENT,
                                                attributes=attributes) as span:
            recorder = SpanRecorder(span)
            try:
                yield recorder
            finally:
                recorder.close()

    def finished(self, name: str, attributes: Mapping[str, str | int | float], start_s: float,
                 end_s: float, error: str | None = None) -> None:
        """Record a span that ran elsewhere (a dbt node, issue 13) under the current one."""
        span = self._tracer.start_span(name, attributes=attributes,
                                       start_time=int(start_s * 1e9))
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, redact.scrub_literals(error)))
        span.end(end_time=int(end_s * 1e9))


def db_attributes(dialect: str, url: URL, table: TableSpec) -> dict[str, AttributeValue]:
    """Return the semantic conventions' database attributes of a scan: never credentials."""
    attributes: dict[str, AttributeValue] = {
        "db.system.name": dialect,
        "db.system": dialect,  # deprecated by the conventions; kept until dqmon 1.0
        "db.collection.name": f"{table.schema}.{table.table}" if table.schema else table.table,
    }
    namespace = db_namespace(dialect, url.database)
    if namespace:
        attributes["db.namespace"] = namespace
    if dialect in _SERVER_DIALECTS and url.host:
        attributes["server.address"] = url.host  # the host alone: no user, no password
        if url.port:
            attributes["server.port"] = url.port
    return attributes


def db_namespace(dialect: str, database: str | None) -> str | None:
    """Return db.namespace: the database, its parts most general first, joined by `|`.

    PostgreSQL's convention is `{database}|{schema}` with the connection's schema; that
    schema is known only by asking the server, so it is left out, as the convention allows.
    MySQL and MariaDB: the database. Trino and Snowflake URLs hold `catalog/schema` and
    `database/schema`. SQLite and DuckDB: the database file (none for an in-memory one).
    """
    if not database or database == ":memory:":
        return None
    if dialect in _FILE_DIALECTS:
        return database
    return "|".join(part for part in database.split("/") if part) or None


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
