"""Per-dialect session rules: read-only transactions, one statement per call, clean returns.

SPEC section 6, layers 3 and 4. Each function here answers one question for one dialect;
`dqmon.warehouse.Warehouse` wires them into SQLAlchemy's pool and engine events.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy.engine import URL

from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.errors import WarehouseError

CONNECT_TIMEOUT_S = 10
CLIENT_GRACE_S = 2.0  # the client-side deadline fires this long after the server's own

# SQLite's authorizer: what a read-only query needs, and the pragmas that only read the schema
# (SQLAlchemy's inspector uses them for the schema check).
_SQLITE_READS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                 sqlite3.SQLITE_RECURSIVE}
_SQLITE_SCHEMA_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
                          "foreign_key_list", "database_list", "table_list"}
_SQLITE_DENIED_FUNCTIONS = {"load_extension", "fts3_tokenizer", "readfile", "writefile"}


def connect_options(url: URL, settings: WarehouseSettings,
                    tz: ZoneInfo) -> tuple[URL, dict[str, Any]]:
    """Return the URL and driver arguments that make every session read-only (SPEC 6)."""
    backend = url.get_backend_name()
    timeout_ms = int(settings.statement_timeout * 1000)
    if backend == "postgresql":
        options = (f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms} "
                   f"-c TimeZone={tz.key} -c standard_conforming_strings=on")
        # keepalives: a network that dies mid-query is noticed in ~1 min, not hours
        return url, {"options": options, "connect_timeout": CONNECT_TIMEOUT_S,
                     "application_name": "dqmon", "keepalives": 1, "keepalives_idle": 30,
                     "keepalives_interval": 10, "keepalives_count": 3,
                     "prepare_threshold": 0}  # every query prepared: the extended protocol
    if backend == "sqlite":
        return sqlite_read_only(url), {"check_same_thread": False}
    if backend == "duckdb":
        return url, {"read_only": True}
    if backend in ("mysql", "mariadb"):
        # the client-side deadline: a read that outlives the server's own timeout fails
        return url, {"connect_timeout": CONNECT_TIMEOUT_S,
                     "read_timeout": int(settings.statement_timeout + CLIENT_GRACE_S)}
    return url, {}


def sqlite_read_only(url: URL) -> URL:
    """Open every file-backed SQLite URL as a `mode=ro` URI, whatever form it was written in."""
    database = url.database
    if database in (None, "", ":memory:"):
        return url  # nothing to protect on disk; the authorizer and query_only still hold
    path = Path(database or "")
    if not path.exists():
        raise WarehouseError(f"SQLite database file not found: {database}")
    uri = f"file:{quote(str(path.resolve()))}"
    return url.set(database=uri, query={**url.query, "mode": "ro", "uri": "true"})


def on_connect_statements(backend: str, settings: WarehouseSettings, tz: ZoneInfo) -> list[str]:
    """Return what dqmon runs once on each new connection, before any config SQL."""
    timeout_ms = int(settings.statement_timeout * 1000)
    if backend == "sqlite":
        return ["PRAGMA query_only = ON"]
    if backend in ("mysql", "mariadb"):
        # UTC sessions: CURRENT_TIMESTAMP is then UTC, as age_seconds() expects. Backslash
        # escapes on, as sqlglot reads MySQL strings (no parser differential on '\\').
        return ["SET SESSION TRANSACTION READ ONLY",
                "SET SESSION time_zone = '+00:00'",
                "SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
                f"SET SESSION max_execution_time = {timeout_ms}",  # MySQL
                f"SET SESSION max_statement_time = {timeout_ms / 1000}"]  # MariaDB
    if backend == "duckdb":
        # external access off, then the configuration locked: no SET can undo either
        return [f"SET TimeZone = '{tz.key}'", "SET enable_external_access = false",
                "SET lock_configuration = true"]
    return []


def on_connect(backend: str, dbapi_conn: Any, statements: list[str]) -> None:
    """Run the connect statements; on SQLite also install the authorizer and limits."""
    if backend == "duckdb":
        # Two first connections of one database instance must not both find it unlocked:
        # the second SET would then fail on the configuration the first just locked.
        with _DUCKDB_SETUP:
            if not _duckdb_locked(dbapi_conn):  # else another connection locked it down
                _execute_all(dbapi_conn, statements)
        return
    _execute_all(dbapi_conn, statements)
    if backend == "sqlite":
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        dbapi_conn.set_authorizer(sqlite_authorizer)
    if backend == "postgresql":
        dbapi_conn.read_only = True  # psycopg then opens every transaction BEGIN READ ONLY


_DUCKDB_SETUP = threading.Lock()


def _execute_all(dbapi_conn: Any, statements: list[str]) -> None:
    for statement in statements:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(statement)
        except Exception:  # noqa: BLE001 - MySQL and MariaDB know different timeout variables
            if "time" not in statement:
                raise
        finally:
            cursor.close()


def _duckdb_locked(dbapi_conn: Any) -> bool:
    """Tell whether this DuckDB instance runs with external access off and a locked config."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("SELECT current_setting('lock_configuration'), "
                       "current_setting('enable_external_access')")
        locked, external = cursor.fetchone()
    finally:
        cursor.close()
    return bool(locked) and not external


def sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None,
                      _trigger: str | None) -> int:
    """Allow reads, schema-reading pragmas and `query_only = ON`; deny everything else."""
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if (arg2 or "").lower() in _SQLITE_DENIED_FUNCTIONS \
            else sqlite3.SQLITE_OK
    if action in _SQLITE_READS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 in ("sqlite_master", "sqlite_schema"):
        # asked while pragma_table_info() loads the schema (the catalog query); no write can
        # follow: the file is mode=ro, query_only is on and writable_schema is denied
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        turning_on = name == "query_only" and (arg2 or "").lower() in ("1", "on", "true")
        return sqlite3.SQLITE_OK if name in _SQLITE_SCHEMA_PRAGMAS or turning_on \
            else sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_DENY


def begin(backend: str, dbapi_conn: Any) -> None:
    """Open each checkout's transaction read-only by itself, whatever the session says."""
    statement = {"mysql": "START TRANSACTION READ ONLY", "mariadb": "START TRANSACTION READ ONLY",
                 "sqlite": "PRAGMA query_only = ON"}.get(backend)
    if backend == "postgresql" and dbapi_conn.read_only is not True:
        dbapi_conn.read_only = True  # set at connect; nothing config SQL sends can unset it
    if statement is not None:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()


def reset(backend: str, dbapi_conn: Any) -> None:
    """Return a connection to the pool with nothing of its session left (SPEC 6 layer 4)."""
    if backend != "postgresql":
        return  # MySQL connections are never pooled; SQLite and DuckDB hold no server state
    # DISCARD ALL (settings, prepared statements, temp tables and advisory locks all go)
    # cannot run inside a transaction; SQLAlchemy's own rollback follows this hook.
    dbapi_conn.rollback()
    dbapi_conn.autocommit = True
    try:
        dbapi_conn.execute("DISCARD ALL", prepare=False)
    finally:
        dbapi_conn.autocommit = False


def check_statement(backend: str, dbapi_conn: Any, statement: str) -> None:
    """Refuse, before it is sent, anything but exactly one SELECT where the driver runs many."""
    if backend != "duckdb":
        return  # psycopg: extended protocol; pymysql: no multi-statement flag; sqlite3: one
    found = dbapi_conn.extract_statements(statement)  # DuckDB's own parser
    kinds = [s.type.name for s in found]
    if kinds != ["SELECT"]:
        raise WarehouseError(f"refused: dqmon sends exactly one SELECT (got {', '.join(kinds)})")


def pooled(backend: str) -> bool:
    """Tell whether connections may be reused: only where a reset clears the whole session.

    MySQL has no reset in PyMySQL; a DuckDB connection keeps temp objects, variables and its
    random seed. Both are closed after each use (a DuckDB connection to an open database is
    cheap: the instance stays while another connection holds it).
    """
    return backend not in ("mysql", "mariadb", "duckdb")


def cancel(dbapi_conn: Any) -> bool:
    """Ask the server (or SQLite/DuckDB) to stop the running query; True when asked."""
    for name in ("cancel_safe", "cancel", "interrupt"):  # psycopg 3.2+, psycopg, sqlite3/duckdb
        method = getattr(dbapi_conn, name, None)
        if callable(method):
            with contextlib.suppress(Exception):
                method()
                return True
    return False
