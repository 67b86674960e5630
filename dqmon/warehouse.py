"""The only module that opens connections: read-only sessions with a statement timeout."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.sql.base import Executable

from dqmon.checks import type_family, type_family_from_name
from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.errors import WarehouseError

CONNECT_TIMEOUT_S = 10


def parse_url(url: str) -> URL:
    """Parse a database URL; raise ValueError without echoing the password."""
    try:
        return make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy raises several types; all mean "bad URL"
        raise ValueError("not a database URL (expected dialect+driver://user@host/db)") from None


class Warehouse:
    """One configured warehouse: a lazily built engine whose sessions never write."""

    def __init__(self, name: str, settings: WarehouseSettings) -> None:
        self.name = name
        self.settings = settings
        self.url = parse_url(settings.url)
        self.tz = ZoneInfo(settings.timezone or "UTC")
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._running: dict[int, Any] = {}  # DBAPI connections inside a session, for cancel
        self._secrets = [s for s in (self.url.password,) if s]

    @property
    def dialect(self) -> str:
        """Return the dialect name (postgresql, sqlite, mysql, duckdb, ...)."""
        return self.url.get_backend_name()

    @property
    def masked_url(self) -> str:
        """Return the URL with the password hidden."""
        return self.url.render_as_string(hide_password=True)

    @property
    def sa_dialect(self) -> sa.engine.Dialect:
        """Return the SQLAlchemy dialect, for compiling without connecting."""
        return self.url.get_dialect()()

    def fetch_one(self, query: Executable) -> dict[str, Any]:
        """Run a query that returns one row; return it as a mapping."""
        with self._session() as conn:
            row = conn.execute(query).mappings().one()
            return dict(row)

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
        return sum(_cancel(conn) for conn in connections)

    def dispose(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # --- sessions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self) -> Iterator[Connection]:
        timer: threading.Timer | None = None
        try:
            conn = self.engine().connect()
        except WarehouseError:
            raise
        except Exception as exc:  # noqa: BLE001 - every driver failure becomes one safe message
            raise self._translate(exc, 0.0, unreachable=True) from None
        started = time.monotonic()
        try:
            with conn:
                dbapi = conn.connection.dbapi_connection
                with self._lock:
                    self._running[id(dbapi)] = dbapi
                timer = self._client_deadline(conn)
                try:
                    yield conn
                finally:
                    with self._lock:
                        self._running.pop(id(dbapi), None)
                    conn.rollback()  # dqmon never commits
        except Exception as exc:  # noqa: BLE001
            raise self._translate(exc, time.monotonic() - started) from None
        finally:
            if timer is not None:
                timer.cancel()

    def engine(self) -> Engine:
        """Return the engine, building it on first use."""
        with self._lock:
            if self._engine is None:
                self._engine = self._build_engine()
            return self._engine

    def _build_engine(self) -> Engine:
        url, connect_args = _session_options(self.url, self.settings, self.tz)
        pool: dict[str, Any] = {}
        if self.dialect != "sqlite" or url.database not in (None, "", ":memory:"):
            pool = {"pool_size": self.settings.max_connections, "max_overflow": 0,
                    "pool_timeout": self.settings.statement_timeout}
        engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True,
                                  **pool)
        sa.event.listen(engine, "connect", self._on_connect)
        return engine

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        for statement in _on_connect_statements(self.dialect, self.settings, self.tz):
            cursor = dbapi_conn.cursor()
            with contextlib.suppress(Exception):  # e.g. MySQL vs MariaDB timeout variables
                cursor.execute(statement)
            cursor.close()

    def _client_deadline(self, conn: Connection) -> threading.Timer | None:
        """Interrupt the query from the client where the server cannot time it out."""
        if self.dialect not in ("sqlite", "duckdb"):
            return None
        dbapi = conn.connection.dbapi_connection
        interrupt = getattr(dbapi, "interrupt", None)
        if interrupt is None:
            return None
        timer = threading.Timer(self.settings.statement_timeout, interrupt)
        timer.daemon = True
        timer.start()
        return timer

    def _translate(self, exc: BaseException, elapsed_s: float, *,
                   unreachable: bool = False) -> WarehouseError:
        if isinstance(exc, WarehouseError):
            return exc
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        timeout = _is_timeout(orig) or (
            "interrupted" in text.lower() and elapsed_s >= self.settings.statement_timeout * 0.9)
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
    return {name: type_family_from_name(kind) for name, kind in conn.execute(query)}


def _cancel(dbapi_conn: Any) -> bool:
    for name in ("cancel_safe", "cancel", "interrupt"):  # psycopg 3.2+, psycopg, sqlite3/duckdb
        method = getattr(dbapi_conn, name, None)
        if callable(method):
            with contextlib.suppress(Exception):
                method()
                return True
    return False


def _is_timeout(orig: BaseException) -> bool:
    """PostgreSQL's statement timeout (not a cancel by dqmon's own shutdown)."""
    canceled = type(orig).__name__ in ("QueryCanceled", "QueryCanceledError") or (
        getattr(orig, "sqlstate", None) == "57014")
    return canceled and "user request" not in str(orig)


def _session_options(url: URL, settings: WarehouseSettings,
                     tz: ZoneInfo) -> tuple[URL, dict[str, Any]]:
    """Return the URL and driver arguments that make every session read-only (SPEC 6)."""
    backend = url.get_backend_name()
    timeout_ms = int(settings.statement_timeout * 1000)
    if backend == "postgresql":
        options = (f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms} "
                   f"-c TimeZone={tz.key}")
        # keepalives: a network that dies mid-query is noticed in ~1 min, not hours
        return url, {"options": options, "connect_timeout": CONNECT_TIMEOUT_S,
                     "application_name": "dqmon", "keepalives": 1, "keepalives_idle": 30,
                     "keepalives_interval": 10, "keepalives_count": 3}
    if backend == "sqlite":
        return _sqlite_read_only(url), {"check_same_thread": False}
    if backend == "duckdb":
        return url, {"read_only": True}
    if backend in ("mysql", "mariadb"):
        return url, {"connect_timeout": CONNECT_TIMEOUT_S}
    return url, {}


def _sqlite_read_only(url: URL) -> URL:
    database = url.database
    if database in (None, "", ":memory:") or (database or "").startswith("file:"):
        return url
    if not Path(database or "").exists():
        raise WarehouseError(f"SQLite database file not found: {database}")
    return url.set(database=f"file:{database}", query={**url.query, "mode": "ro", "uri": "true"})


def _on_connect_statements(backend: str, settings: WarehouseSettings,
                           tz: ZoneInfo) -> list[str]:
    timeout_ms = int(settings.statement_timeout * 1000)
    if backend == "sqlite":
        return ["PRAGMA query_only = ON"]
    if backend in ("mysql", "mariadb"):
        # UTC sessions: CURRENT_TIMESTAMP is then UTC, as age_seconds() expects.
        return ["SET SESSION TRANSACTION READ ONLY",
                "SET SESSION time_zone = '+00:00'",
                f"SET SESSION max_execution_time = {timeout_ms}",  # MySQL
                f"SET SESSION max_statement_time = {timeout_ms / 1000}"]  # MariaDB
    if backend == "duckdb":
        return [f"SET TimeZone = '{tz.key}'"]
    return []


def open_warehouses(settings: Mapping[str, WarehouseSettings]) -> dict[str, Warehouse]:
    """Build a `Warehouse` for each configured one (no connection is made yet)."""
    return {name: Warehouse(name, s) for name, s in settings.items()}
