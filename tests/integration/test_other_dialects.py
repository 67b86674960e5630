"""DuckDB and MariaDB/MySQL against the real engines: same data, same answers (SPEC §7)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.errors import WarehouseError
from dqmon.warehouse import Warehouse

from conftest import mariadb_admin
from helpers import run_cli, run_json, write_config


def rows() -> list[tuple[object, ...]]:
    """The shared rows, timed from now (a module-level `now` ages while a long suite runs)."""
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    return [  # id, email, amount, status, created_at (naive UTC)
        (1, "a@x.io", 5.0, "paid", now - timedelta(hours=3)),
        (2, "bad-email", -1.0, "paid", now - timedelta(hours=2)),
        (2, None, None, "lost", now - timedelta(hours=1)),
        (None, "c@x.io", 50.0, None, datetime(2001, 1, 1)),
    ]


ROW_COUNT = 4
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
"""
WIPE = """
  - name: t
    checks:
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


def _refused_at_load(capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str) -> None:
    """Run the WIPE config: the loader refuses it with one located line, before connecting."""
    config = write_config(tmp_path, url, WIPE)
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--no-export")
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"{config}:9 tables[0].checks[0].custom.sql: must be a SELECT query (found DELETE)"]


@pytest.fixture
def duckdb_url(tmp_path: Path) -> str:
    """A DuckDB file with the shared rows."""
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "w.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE t (id INTEGER, email VARCHAR, amount DECIMAL(10,2), "
                 "status VARCHAR, created_at TIMESTAMP)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows())
    conn.close()
    return f"duckdb:///{path}"


def _duckdb_rows(url: str) -> int:
    """Count t's rows through a connection of the test's own, not dqmon's."""
    import duckdb

    with duckdb.connect(url.removeprefix("duckdb:///"), read_only=True) as conn:
        row = conn.execute("SELECT count(*) FROM t").fetchone()
    assert row is not None
    return int(row[0])


def test_duckdb(duckdb_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every check kind gives the same exact values on DuckDB."""
    _, results = run_json(capsys, write_config(tmp_path, duckdb_url, TABLE))
    _check(results)


def test_duckdb_write_is_refused_at_load(duckdb_url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A DELETE in custom SQL is a located config error on DuckDB (exit 2); no row goes."""
    _refused_at_load(capsys, tmp_path, duckdb_url)
    assert _duckdb_rows(duckdb_url) == ROW_COUNT


def test_duckdb_session_is_read_only_without_the_loader(duckdb_url: str) -> None:
    """Sent straight to a session, a DELETE is refused, and the read-only file refuses it too."""
    import duckdb

    warehouse = Warehouse("main", WarehouseSettings(url=duckdb_url, allow_privileged_role=True))
    try:
        with pytest.raises(WarehouseError, match="exactly one SELECT"):
            warehouse.fetch_all(sa.text("delete from t"))
        # Below dqmon's statement check: the database itself is attached read-only.
        raw = warehouse.engine().raw_connection()
        try:
            with pytest.raises(duckdb.Error, match="read-only mode"):
                raw.driver_connection.execute("delete from t")  # type: ignore[union-attr]
        finally:
            raw.invalidate()
    finally:
        warehouse.dispose()
    assert _duckdb_rows(duckdb_url) == ROW_COUNT


@pytest.fixture
def mariadb() -> Iterator[dict[str, str]]:
    """A throwaway MariaDB/MySQL database with the shared rows, and a user who may only read it."""
    admin = mariadb_admin()
    suffix = uuid.uuid4().hex[:8]
    name, reader = f"dqmon_test_{suffix}", f"dqmon_reader_{suffix}"
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
            cur.execute(f"CREATE TABLE {name}.t (id INT, email VARCHAR(64), "
                        "amount DECIMAL(10,2), status VARCHAR(16), created_at DATETIME)")
            cur.executemany(f"INSERT INTO {name}.t VALUES (%s, %s, %s, %s, %s)", rows())
            cur.execute(f"CREATE USER '{reader}'@'%' IDENTIFIED BY 'reader-pw'")
            cur.execute(f"GRANT SELECT ON {name}.* TO '{reader}'@'%'")
        yield {"url": f"mysql+pymysql://{reader}:reader-pw@127.0.0.1:3306/{name}",
               "admin_url": f"mysql+pymysql://root@127.0.0.1:3306/{name}", "name": name}
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
            cur.execute(f"DROP USER IF EXISTS '{reader}'@'%'")
        admin.close()


def _mariadb_rows(name: str) -> int:
    """Count t's rows through a root connection of the test's own, not dqmon's."""
    import pymysql

    with pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                         database=name) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def test_mariadb(mariadb: dict[str, str], tmp_path: Path,
                 capsys: pytest.CaptureFixture[str]) -> None:
    """Every check kind gives the same exact values on MariaDB, as a SELECT-only user."""
    _, results = run_json(capsys, write_config(tmp_path, mariadb["url"], TABLE))
    _check(results)


def test_mariadb_write_is_refused_at_load(mariadb: dict[str, str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A DELETE in custom SQL is a located config error on MariaDB (exit 2); no row goes."""
    _refused_at_load(capsys, tmp_path, mariadb["url"])
    assert _mariadb_rows(mariadb["name"]) == ROW_COUNT


def test_mariadb_session_is_read_only_without_the_loader(mariadb: dict[str, str]) -> None:
    """Sent straight to a root session, a DELETE fails in the read-only transaction."""
    settings = WarehouseSettings(url=mariadb["admin_url"], allow_privileged_role=True)
    warehouse = Warehouse("main", settings)
    try:
        with pytest.raises(WarehouseError) as raised:
            warehouse.fetch_all(sa.text("delete from t"))
    finally:
        warehouse.dispose()
    assert "read only" in str(raised.value).lower()
    assert _mariadb_rows(mariadb["name"]) == ROW_COUNT
