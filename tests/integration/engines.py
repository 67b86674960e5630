"""The `engine` fixture: each live engine in turn, PostgreSQL, SQLite, DuckDB and MariaDB.

A pytest plugin (`pytest_plugins = ["engines"]`): the statistics and segments tests build
their tables through `Engine.make` and run the real CLI against `Engine.url` (a
least-privilege reader where the engine has roles). The rows they share are in rows.py.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import mariadb_admin

ENGINES = ("postgresql", "sqlite", "duckdb", "mariadb")

# A column's logical type -> its SQL type per engine.
TYPES = {
    "int": {"postgresql": "integer", "sqlite": "INTEGER", "duckdb": "INTEGER", "mariadb": "INT"},
    "text": {"postgresql": "text", "sqlite": "TEXT", "duckdb": "VARCHAR",
             "mariadb": "VARCHAR(200)"},
    "money": {"postgresql": "numeric(10,2)", "sqlite": "NUMERIC", "duckdb": "DECIMAL(10,2)",
              "mariadb": "DECIMAL(10,2)"},
    "timestamp": {"postgresql": "timestamp", "sqlite": "TEXT", "duckdb": "TIMESTAMP",
                  "mariadb": "DATETIME"},
    "timestamptz": {"postgresql": "timestamptz", "sqlite": "TEXT", "duckdb": "TIMESTAMPTZ",
                    "mariadb": "DATETIME"},
    "date": {"postgresql": "date", "sqlite": "TEXT", "duckdb": "DATE", "mariadb": "DATE"},
}


@dataclass
class Engine:
    """A live database the test may fill: its name, dqmon's URL, and a table builder."""

    name: str
    url: str
    make: Callable[[str, dict[str, str], Sequence[Sequence[Any]]], None]


def _sqlite_value(value: Any) -> Any:
    """SQLite stores times as ISO-8601 text and has no Decimal adapter."""
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return float(value) if isinstance(value, Decimal) else value


def _columns(columns: dict[str, str], engine: str) -> str:
    return ", ".join(f"{name} {TYPES[kind][engine]}" for name, kind in columns.items())


def _sqlite(tmp_path: Path) -> Engine:
    path = tmp_path / "w.db"

    def make(name: str, columns: dict[str, str], rows: Sequence[Sequence[Any]]) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(f"CREATE TABLE {name} ({_columns(columns, 'sqlite')})")
            marks = ", ".join("?" * len(columns))
            conn.executemany(f"INSERT INTO {name} VALUES ({marks})",
                             [[_sqlite_value(v) for v in row] for row in rows])
        conn.close()

    return Engine("sqlite", f"sqlite:///{path}", make)


def _duckdb(tmp_path: Path) -> Engine:
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "w.duckdb"

    def make(name: str, columns: dict[str, str], rows: Sequence[Sequence[Any]]) -> None:
        with duckdb.connect(str(path)) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute(f"CREATE TABLE {name} ({_columns(columns, 'duckdb')})")
            if rows:
                marks = ", ".join("?" * len(columns))
                conn.executemany(f"INSERT INTO {name} VALUES ({marks})",
                                 [list(row) for row in rows])

    return Engine("duckdb", f"duckdb:///{path}", make)


def _postgres(request: pytest.FixtureRequest) -> Engine:
    make_table = request.getfixturevalue("make_table")
    url = request.getfixturevalue("pg_url")

    def make(name: str, columns: dict[str, str], rows: Sequence[Sequence[Any]]) -> None:
        make_table(name, {c: TYPES[k]["postgresql"] for c, k in columns.items()}, rows)

    return Engine("postgresql", url, make)


@pytest.fixture
def mariadb_engine() -> Iterator[Engine]:
    """A throwaway MariaDB database and a user who may only read it."""
    admin = mariadb_admin(charset="utf8mb4")
    suffix = uuid.uuid4().hex[:8]
    name, reader = f"dqmon_test_{suffix}", f"dqmon_reader_{suffix}"

    def make(table: str, columns: dict[str, str], rows: Sequence[Sequence[Any]]) -> None:
        with admin.cursor() as cur:
            cur.execute(f"CREATE TABLE {name}.{table} ({_columns(columns, 'mariadb')}) "
                        "CHARACTER SET utf8mb4")
            if rows:
                marks = ", ".join(["%s"] * len(columns))
                cur.executemany(f"INSERT INTO {name}.{table} VALUES ({marks})", rows)

    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
            cur.execute(f"CREATE USER '{reader}'@'%' IDENTIFIED BY 'reader-pw'")
            cur.execute(f"GRANT SELECT ON {name}.* TO '{reader}'@'%'")
        yield Engine("mariadb",
                     f"mysql+pymysql://{reader}:reader-pw@127.0.0.1:3306/{name}?charset=utf8mb4",
                     make)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
            cur.execute(f"DROP USER IF EXISTS '{reader}'@'%'")
        admin.close()


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.postgres) if name == "postgresql"
                        else name for name in ENGINES])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """Each live engine in turn (PostgreSQL and MariaDB skip outside CI when absent)."""
    if request.param == "postgresql":
        return _postgres(request)
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    if request.param == "duckdb":
        return _duckdb(tmp_path)
    engine: Engine = request.getfixturevalue("mariadb_engine")
    return engine
