"""Shared fixtures: a throwaway PostgreSQL database and exact test tables.

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


@pytest.fixture(scope="session")
def pg_database() -> Iterator[dict[str, str]]:
    """Create a fresh database for the session (no parallel workers), drop it after."""
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        need_service("PostgreSQL", str(exc).strip())
    name = f"dqmon_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    # Parallel workers count their own seq scans; one scan must read as exactly one.
    admin.execute(f'ALTER DATABASE "{name}" SET max_parallel_workers_per_gather = 0')
    info = admin.info
    yield {"name": name, "host": info.host, "port": str(info.port), "user": info.user,
           "url": f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{name}",
           "dsn": f"host={info.host} port={info.port} user={info.user} dbname={name}"}
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def pg_url(pg_database: dict[str, str]) -> str:
    """The SQLAlchemy URL of the session's test database."""
    return pg_database["url"]


@pytest.fixture
def pg_conn(pg_database: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    """A writable autocommit connection to the test database (for building data)."""
    with psycopg.connect(pg_database["dsn"], autocommit=True) as conn:
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
