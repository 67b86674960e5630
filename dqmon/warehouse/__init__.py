"""The only package that opens connections: read-only sessions with a statement timeout.

SPEC section 6: `session` holds the per-dialect rules (read-only transactions, one statement
per call, reset on return), `privileges` the role check; this module wires them together.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.base import Executable

from dqmon import redact
from dqmon.checks import type_family, type_family_from_name
from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.config.urls import COMPILED, checked_url, masked, parse_url, url_secrets
from dqmon.errors import WarehouseError
from dqmon.warehouse import privileges, session
from dqmon.warehouse.deadline import Deadline
from dqmon.warehouse.privileges import RoleReport
from dqmon.warehouse.statements import Params, Statement, StatementCache, execute

__all__ = ["RoleReport", "Statement", "StatementCache", "Warehouse", "open_warehouses",
           "parse_url"]


class Warehouse:
    """One configured warehouse: a lazily built engine whose sessions never write."""

    def __init__(self, name: str, settings: WarehouseSettings) -> None:
        self.name = name
        self.settings = settings
        self.url = checked_url(settings.url)
        self.tz = ZoneInfo(settings.timezone or "UTC")
        self.role: RoleReport | None = None  # what the role may do, once a session asked
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._running: dict[int, Any] = {}  # DBAPI connections inside a session, for cancel
        self.statements = StatementCache()  # compiled once per table, dropped with the warehouse
        redact.register(url_secrets(self.url))

    @property
    def dialect(self) -> str:
        """Return the dialect name (postgresql, sqlite, mysql, duckdb, ...)."""
        return self.url.get_backend_name()

    @property
    def masked_url(self) -> str:
        """Return the URL with the password and credential parameters hidden."""
        return masked(self.url)

    @functools.cached_property
    def sa_dialect(self) -> sa.engine.Dialect:
        """Return the SQLAlchemy dialect, for compiling without connecting (built once)."""
        return self.url.get_dialect()()

    def fetch_one(self, query: Executable | Statement,
                  params: Params | None = None) -> dict[str, Any]:
        """Run a query (or a `Statement` with its per-run `params`); return its one row."""
        with self._session() as conn:
            row = execute(conn, query, params or {}).mappings().one()
            return dict(row)

    def fetch_mappings(self, query: Executable | Statement,
                       params: Params | None = None) -> list[dict[str, Any]]:
        """Run a query (or a `Statement` with its per-run `params`); return every row."""
        with self._session() as conn:
            return [dict(row) for row in execute(conn, query, params or {}).mappings().all()]

    def fetch_all(self, query: Executable) -> list[tuple[Any, ...]]:
        """Run a query and return every row."""
        with self._session() as conn:
            return [tuple(r) for r in conn.execute(query).all()]

    def column_families(self, schema: str | None, table: str) -> dict[str, str] | None:
        """Return {column: type family} of a table, or None when it does not exist."""
        with self._session() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(table, schema=schema):
                return None
            if self.dialect == "duckdb":  # duckdb-engine's reflection fails (PITFALLS.md)
                return _information_schema_families(conn, schema, table)
            columns = inspector.get_columns(table, schema=schema)
            return {c["name"]: type_family(c["type"]) for c in columns}

    def ping(self) -> None:
        """Connect and run a trivial query."""
        self.fetch_all(sa.select(sa.literal(1)))

    def compile(self, query: sa.ClauseElement, *, literal: bool = False) -> str:
        """Render a query in this warehouse's dialect, with placeholders or literal values."""
        kwargs = {"render_postcompile": True, "literal_binds": literal}
        return str(query.compile(dialect=self.sa_dialect, compile_kwargs=kwargs))

    def cancel_running(self) -> int:
        """Ask the server (or SQLite/DuckDB) to cancel every running query; return how many."""
        with self._lock:
            connections = list(self._running.values())
        return sum(session.cancel(conn) for conn in connections)

    def dispose(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # --- sessions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self) -> Iterator[Connection]:
        deadline = Deadline(self.settings.statement_timeout + self._client_grace())
        try:
            conn = self.engine().connect()
        except WarehouseError:
            raise
        except Exception as exc:  # noqa: BLE001 - every driver failure becomes one safe message
            raise self._translate(exc, unreachable=True) from None
        try:
            with conn:
                dbapi = conn.connection.dbapi_connection
                session.begin(self.dialect, dbapi)
                self._vet_role(conn)
                with self._lock:
                    self._running[id(dbapi)] = dbapi
                deadline.start(dbapi)
                try:
                    yield conn
                finally:
                    deadline.cancel()
                    with self._lock:
                        self._running.pop(id(dbapi), None)
                    conn.rollback()  # dqmon never commits
        except Exception as exc:  # noqa: BLE001
            raise self._translate(exc, timeout=deadline.fired) from None

    def _client_grace(self) -> float:
        """SQLite and DuckDB have no server timeout: the client deadline is the timeout."""
        return 0.0 if self.dialect in ("sqlite", "duckdb") else session.CLIENT_GRACE_S

    def _vet_role(self, conn: Connection) -> None:
        """Check the role once per warehouse; refuse a dangerous one (SPEC 6, layer 1)."""
        if self.role is None:
            self.role = privileges.probe(conn, self.dialect)
        if self.role.dangers and not self.settings.allow_privileged_role:
            raise WarehouseError(privileges.refusal(self.role, self.name))

    def engine(self) -> Engine:
        """Return the engine, building it on first use."""
        with self._lock:
            if self._engine is None:
                self._engine = self._build_engine()
            return self._engine

    def _build_engine(self) -> Engine:
        if self.dialect in COMPILED and not self.settings.allow_privileged_role:
            raise WarehouseError(f"dqmon cannot enforce read-only sessions on {self.dialect}: "
                                 "connect with a read-only role and set "
                                 "allow_privileged_role: true (docs/security.md)")
        url, connect_args = session.connect_options(self.url, self.settings, self.tz)
        engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True,
                                  **self._pool_options(url))
        sa.event.listen(engine, "connect", self._on_connect)
        sa.event.listen(engine, "reset", self._on_reset)
        sa.event.listen(engine, "before_cursor_execute", self._before_execute)
        return engine

    def _pool_options(self, url: sa.engine.URL) -> dict[str, Any]:
        if not session.pooled(self.dialect):
            return {"poolclass": NullPool}  # closed after each use: nothing of a session stays
        if self.dialect == "sqlite" and url.database in (None, "", ":memory:"):
            return {}
        return {"pool_size": self.settings.max_connections, "max_overflow": 0,
                "pool_timeout": self.settings.statement_timeout}

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        statements = session.on_connect_statements(self.dialect, self.settings, self.tz)
        session.on_connect(self.dialect, dbapi_conn, statements)

    def _on_reset(self, dbapi_conn: Any, _record: Any, reset_state: Any) -> None:
        if not reset_state.terminate_only:
            session.reset(self.dialect, dbapi_conn)

    def _before_execute(self, conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        session.check_statement(self.dialect, conn.connection.dbapi_connection, statement)

    def _translate(self, exc: BaseException, *, timeout: bool = False,
                   unreachable: bool = False) -> WarehouseError:
        if isinstance(exc, WarehouseError):
            return exc
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        text = redact.scrub(text)
        timeout = timeout or _is_timeout(orig)
        if timeout:
            text = f"statement_timeout ({self.settings.statement_timeout:g}s) exceeded: {text}"
        return WarehouseError(text, timeout=timeout, unreachable=unreachable)


def _information_schema_families(conn: Connection, schema: str | None,
                                 table: str) -> dict[str, str]:
    cols = sa.table("columns", sa.column("column_name"), sa.column("data_type"),
                    sa.column("table_name"), sa.column("table_schema"),
                    schema="information_schema")
    query = sa.select(cols.c.column_name, cols.c.data_type).where(cols.c.table_name == table)
    if schema is not None:
        query = query.where(cols.c.table_schema == schema)
    return {str(name): type_family_from_name(str(kind)) for name, kind in conn.execute(query)}


def _is_timeout(orig: BaseException) -> bool:
    """PostgreSQL's statement timeout (not a cancel by dqmon's own shutdown)."""
    canceled = type(orig).__name__ in ("QueryCanceled", "QueryCanceledError") or (
        getattr(orig, "sqlstate", None) == "57014")
    return canceled and "user request" not in str(orig)


def open_warehouses(settings: Mapping[str, WarehouseSettings]) -> dict[str, Warehouse]:
    """Build a `Warehouse` for each configured one (no connection is made yet)."""
    return {name: Warehouse(name, s) for name, s in settings.items()}
