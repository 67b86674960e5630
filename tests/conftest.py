"""Shared fixtures: a throwaway PostgreSQL database, a reader role, and exact test tables.

PostgreSQL tests skip when no server answers, except under CI=true, where a missing
server is a failure (the brief: never green by skipping).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
PG_ADMIN = os.environ.get("DQMON_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")

MakeTable = Callable[[str, dict[str, str], Sequence[Sequence[Any]]], str]


def need_service(name: str, reason: str) -> None:
    """Skip the test outside CI; fail it in CI."""
    message = f"{name} is not available: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)


def mariadb_admin(**options: Any) -> Any:
    """Return an autocommit root connection to the local MariaDB (need_service without one)."""
    pymysql = pytest.importorskip("pymysql")
    try:
        return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                               autocommit=True, connect_timeout=5, **options)
    except pymysql.err.OperationalError as exc:
        need_service("MariaDB", str(exc))
        raise  # need_service never returns


@pytest.fixture(scope="session")
def pg_database() -> Iterator[dict[str, str]]:
    """Create a fresh database and a least-privilege reader role for the session; drop both after.

    dqmon refuses a superuser (SPEC 6, layer 1), so "user", "url" and "dsn" are the reader
    role's (what dqmon connects as); "admin_user", "admin_url" and "admin_dsn" are the
    superuser's, for the test's own data building and independent checks.
    """
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        need_service("PostgreSQL", str(exc).strip())
    suffix = uuid.uuid4().hex[:10]
    name, reader = f"dqmon_test_{suffix}", f"dqmon_reader_{suffix}"
    admin.execute(f'CREATE DATABASE "{name}"')
    # Parallel workers count their own seq scans; one scan must read as exactly one.
    admin.execute(f'ALTER DATABASE "{name}" SET max_parallel_workers_per_gather = 0')
    admin.execute(f'CREATE ROLE "{reader}" LOGIN')
    admin.execute(f'GRANT CONNECT ON DATABASE "{name}" TO "{reader}"')
    admin.execute(f'GRANT pg_read_all_data TO "{reader}"')  # SELECT and USAGE, nothing more
    info = admin.info
    host, port, su = info.host, info.port, info.user
    try:
        yield {"name": name, "host": host, "port": str(port), "user": reader,
               "url": f"postgresql+psycopg://{reader}@{host}:{port}/{name}",
               "dsn": f"host={host} port={port} user={reader} dbname={name}",
               "admin_user": su,
               "admin_url": f"postgresql+psycopg://{su}@{host}:{port}/{name}",
               "admin_dsn": f"host={host} port={port} user={su} dbname={name}"}
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{reader}"')
        admin.close()


@pytest.fixture
def pg_url(pg_database: dict[str, str]) -> str:
    """The SQLAlchemy URL of the session's test database, as the least-privilege reader role."""
    return pg_database["url"]


@pytest.fixture
def pg_conn(pg_database: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    """A writable autocommit superuser connection to the test database (for building data)."""
    with psycopg.connect(pg_database["admin_dsn"], autocommit=True) as conn:
        yield conn


@pytest.fixture
def make_table(pg_conn: psycopg.Connection[Any]) -> Iterator[MakeTable]:
    """Build a table with exact columns and rows; every table made is dropped after the test."""
    made: list[str] = []

    def make(name: str, columns: dict[str, str], rows: Sequence[Sequence[Any]]) -> str:
        cols = ", ".join(f'"{c}" {t}' for c, t in columns.items())
        pg_conn.execute(f"DROP TABLE IF EXISTS {name}")
        pg_conn.execute(f"CREATE TABLE {name} ({cols})")
        made.append(name)
        if rows:
            marks = ", ".join(["%s"] * len(columns))
            with pg_conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
        pg_conn.execute(f"ANALYZE {name}")
        return name

    yield make
    for name in reversed(made):
        pg_conn.execute(f"DROP TABLE IF EXISTS {name}")
