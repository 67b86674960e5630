"""DuckDB and MariaDB/MySQL against the real engines: same data, same answers (SPEC §7)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import need_service
from helpers import run_json, write_config

NOW = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
ROWS = [  # id, email, amount, status, created_at (naive UTC)
    (1, "a@x.io", 5.0, "paid", NOW - timedelta(hours=3)),
    (2, "bad-email", -1.0, "paid", NOW - timedelta(hours=2)),
    (2, None, None, "lost", NOW - timedelta(hours=1)),
    (None, "c@x.io", 50.0, None, datetime(2001, 1, 1)),
]
TABLE = """
  - name: t
    checks:
      - freshness: {column: created_at, max_age: 2h}
      - row_count: {min: 4, max: 4}
      - completeness: {columns: [id, email]}
      - validity: {name: positive, condition: "amount > 0"}
      - validity: {name: email_format, column: email, regex: '^[^@]+@[^@]+[.][a-z]+$'}
      - validity: {name: status_known, column: status, in: [paid]}
      - validity: {name: amount_range, column: amount, between: [-1, 10]}
      - uniqueness: {columns: [id]}
      - schema: {columns: {id: integer, amount: numeric, created_at: timestamp, status: text}}
      - custom: {name: paid, sql: "select count(*) from t where status = 'paid'", min: 2, max: 2}
      - custom: {name: wipe, sql: "delete from t", max: 0}
"""
EXPECTED = {
    "row_count": 4, "completeness_id": 0.75, "completeness_email": 0.75, "positive": 0.5,
    "email_format": pytest.approx(2 / 3), "status_known": pytest.approx(2 / 3),
    "amount_range": pytest.approx(2 / 3), "uniqueness_id": pytest.approx(2 / 3), "schema": 0,
    "paid": 2,
}


def _check(results: dict[str, dict[str, object]]) -> None:
    assert {k: results[k]["value"] for k in EXPECTED} == EXPECTED
    assert 3600 <= float(results["freshness"]["value"]) < 3600 + 120  # type: ignore[arg-type]
    assert results["wipe"]["status"] == "error"


@pytest.fixture
def duckdb_url(tmp_path: Path) -> str:
    """A DuckDB file with the shared rows."""
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "w.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE t (id INTEGER, email VARCHAR, amount DECIMAL(10,2), "
                 "status VARCHAR, created_at TIMESTAMP)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", ROWS)
    conn.close()
    return f"duckdb:///{path}"


def test_duckdb(duckdb_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every check kind gives the same exact values on DuckDB, which stays read-only."""
    _, results = run_json(capsys, write_config(tmp_path, duckdb_url, TABLE))
    _check(results)
    assert "read-only" in str(results["wipe"]["error"]).lower()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A throwaway MariaDB/MySQL database with the shared rows."""
    pymysql = pytest.importorskip("pymysql")
    try:
        admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                                autocommit=True, connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        need_service("MariaDB", str(exc))
    name = f"dqmon_test_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
        cur.execute(f"CREATE TABLE {name}.t (id INT, email VARCHAR(64), amount DECIMAL(10,2), "
                    "status VARCHAR(16), created_at DATETIME)")
        cur.executemany(f"INSERT INTO {name}.t VALUES (%s, %s, %s, %s, %s)", ROWS)
    yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {name}")
    admin.close()


def test_mariadb(mariadb_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every check kind gives the same exact values on MariaDB, in a read-only session."""
    _, results = run_json(capsys, write_config(tmp_path, mariadb_url, TABLE))
    _check(results)
    assert "read only" in str(results["wipe"]["error"]).lower()
