"""Reference checks on the real engines: exact ratios with NULLs, scopes, partitions (SPEC 8)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import mariadb_admin
from helpers import run_cli, write_config

ORDERS = [  # id, customer_id, status, created_at (naive UTC)
    (1, 1, "paid", datetime(2026, 11, 20, 10)),
    (2, 2, "paid", datetime(2026, 11, 20, 11)),
    (3, 7, "paid", datetime(2026, 11, 20, 12)),  # 7: no such customer
    (4, None, "paid", datetime(2026, 11, 20, 13)),  # NULL: not considered
    (5, 8, "test", datetime(2026, 11, 21, 9)),  # out of the table's scope (where)
    (6, 2, "paid", datetime(2026, 11, 21, 10)),
    (7, 9, "paid", datetime(2026, 11, 21, 11)),  # 9: no such customer
]
CUSTOMERS = [(1,), (2,), (2,), (3,), (None,)]  # a duplicate and a NULL in the referenced column


def tables(to: str) -> str:
    """Three views of `orders` referencing `to`: whole scope, by day, and one always empty."""
    checks = (f"      - reference: {{column: customer_id, to: {to}, min_ratio: 0.5}}\n"
              f"      - reference: {{name: strict, column: customer_id, to: {to}, min_ratio: 0.9}}\n"
              f"      - reference: {{name: capped, column: customer_id, to: {to}, min_ratio: 0,"
              f" max_ratio: 0.5}}\n")
    return ("  - name: orders\n    where: \"status <> 'test'\"\n    checks:\n" + checks
            + "  - name: daily\n    table: orders\n    where: \"status <> 'test'\"\n"
              "    partition: {column: created_at, granularity: day}\n    checks:\n" + checks
            + "  - name: nothing\n    table: orders\n    where: \"1 = 0\"\n    checks:\n" + checks)


def assert_exact(capsys: pytest.CaptureFixture[str], url: str, to: str, tmp_path: Path,
                 warehouse_extra: str = "") -> None:
    """Whole scope 3/5; 2026-11-20 2/3; 2026-11-21 1/2; an empty scope 1.0, passing."""
    config = write_config(tmp_path, url, tables(to), warehouse_extra=warehouse_extra)
    code, results = _run(capsys, config, "--table", "orders", "--table", "nothing")
    assert code == 1, [r["error"] for r in results.values()]  # `strict` fails: critical
    assert _values(results, "orders") == {
        "reference_customer_id": (0.6, "pass"), "strict": (0.6, "fail"),
        "capped": (0.6, "fail")}  # 3 of the 5 non-null values in scope: 1, 2, 2 (7, 9 not)
    assert _values(results, "nothing") == {
        "reference_customer_id": (1.0, "pass"), "strict": (1.0, "pass"),
        "capped": (1.0, "fail")}
    first = results[("orders", "reference_customer_id")]
    assert (first["metric"], first["threshold"], first["attributes"]) == (
        "dq.reference_ratio", {"min": 0.5},
        {"dq.warehouse": "main", "dq.table": "orders", "dq.check": "reference_customer_id",
         "dq.column": "customer_id"})
    assert results[("orders", "capped")]["threshold"] == {"min": 0.0, "max": 0.5}
    for day, expected in (("2026-11-20", 2 / 3), ("2026-11-21", 0.5), ("2026-11-25", 1.0)):
        _, daily = _run(capsys, config, "--table", "daily", "--partition", day)
        result = daily[("daily", "reference_customer_id")]
        assert result["value"] == pytest.approx(expected)
        assert result["attributes"]["dq.partition"] == day


Results = dict[tuple[str, str], dict[str, Any]]


def _run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, Results]:
    """run-once --format json; results keyed by (table, check)."""
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--format", "json",
                             "--no-export", *args)
    assert out, f"no JSON on stdout; stderr: {err}"
    return code, {(r["table"], r["check"]): r for r in json.loads(out)["results"]}


def _values(results: Results, table: str) -> dict[str, tuple[float, str]]:
    return {check: (r["value"], r["status"]) for (t, check), r in results.items() if t == table}


# --- PostgreSQL: the referenced table in another schema, both names quoted ------------------

@pytest.fixture
def crm_schema(pg_conn: psycopg.Connection[Any]) -> Iterator[str]:
    """A mixed-case schema holding "Customers"; dropped after the test."""
    name = f"Crm_{uuid.uuid4().hex[:8]}"
    pg_conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        pg_conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.mark.postgres
def test_postgresql(make_table, crm_schema: str, pg_url: str, tmp_path: Path,  # type: ignore[no-untyped-def]
                    capsys: pytest.CaptureFixture[str]) -> None:
    """PostgreSQL: exact ratios against a table in another (mixed-case) schema."""
    make_table("orders", {"id": "integer", "customer_id": "integer", "status": "text",
                          "created_at": "timestamp"}, ORDERS)
    make_table(f'"{crm_schema}"."Customers"', {"id": "integer"}, CUSTOMERS)
    assert_exact(capsys, pg_url, f"{crm_schema}.Customers.id", tmp_path)


@pytest.mark.postgres
def test_postgresql_runs_one_hash_join(make_table, crm_schema: str, pg_url: str,  # type: ignore[no-untyped-def]
                                       pg_conn: psycopg.Connection[Any]) -> None:
    """The plan reads each table once and joins them by hash, whatever the data."""
    from zoneinfo import ZoneInfo

    from dqmon.checks.reference import reference_query
    from dqmon.checks.scope import Scope
    from dqmon.config import parse_config
    from dqmon.warehouse import Warehouse

    make_table("orders", {"id": "integer", "customer_id": "integer", "status": "text",
                          "created_at": "timestamp"}, ORDERS)
    make_table(f'"{crm_schema}"."Customers"', {"id": "integer"}, CUSTOMERS)
    config = parse_config(f"version: 1\nwarehouses: {{main: {{url: '{pg_url}'}}}}\n"
                          "tables:\n" + tables(f"{crm_schema}.Customers.id"), env={})
    spec = config.tables[0].checks[0]
    sql = Warehouse("main", config.warehouses["main"]).compile(
        reference_query(Scope(config.tables[0], "postgresql", ZoneInfo("UTC")), spec),
        literal=True)
    pg_conn.execute("SET enable_nestloop = off")  # tiny tables: only a nested loop could win
    plan = "\n".join(row[0] for row in pg_conn.execute(f"EXPLAIN {sql}"))
    assert "Hash Left Join" in plan or "Hash Right Join" in plan, plan
    assert plan.count("Seq Scan on orders") == 1 and plan.count('Seq Scan on "Customers"') == 1


# --- SQLite, DuckDB, MariaDB ----------------------------------------------------------------

def _text_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(v.isoformat(" ") if isinstance(v, datetime) else v for v in row)
            for row in rows]


def test_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite: exact ratios, timestamps as ISO-8601 text."""
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, customer_id INTEGER, status TEXT, "
                     "created_at TEXT)")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", _text_rows(ORDERS))
        conn.execute("CREATE TABLE customers (id INTEGER)")
        conn.executemany("INSERT INTO customers VALUES (?)", CUSTOMERS)
    assert_exact(capsys, f"sqlite:///{path}", "customers.id", tmp_path)


def test_duckdb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DuckDB: exact ratios against a table in another schema."""
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, customer_id INTEGER, status VARCHAR, "
                     "created_at TIMESTAMP)")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", ORDERS)
        conn.execute("CREATE SCHEMA crm")
        conn.execute("CREATE TABLE crm.customers (id INTEGER)")
        conn.executemany("INSERT INTO crm.customers VALUES (?)", CUSTOMERS)
    # one connection: two first connections at once race to lock DuckDB's configuration
    # (dqmon/warehouse/session.py on_connect; reported with issue 10's reference work)
    assert_exact(capsys, f"duckdb:///{path}", "crm.customers.id", tmp_path,
                 warehouse_extra="    max_connections: 1\n")


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A throwaway MariaDB database with the rows, and a user who may only read it."""
    admin = mariadb_admin()
    suffix = uuid.uuid4().hex[:8]
    name, reader = f"dqmon_test_{suffix}", f"dqmon_reader_{suffix}"
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
            cur.execute(f"CREATE TABLE {name}.orders (id INT, customer_id INT, "
                        "status VARCHAR(16), created_at DATETIME)")
            cur.executemany(f"INSERT INTO {name}.orders VALUES (%s, %s, %s, %s)", ORDERS)
            cur.execute(f"CREATE TABLE {name}.customers (id INT)")
            cur.executemany(f"INSERT INTO {name}.customers VALUES (%s)", CUSTOMERS)
            cur.execute(f"CREATE USER '{reader}'@'%' IDENTIFIED BY 'reader-pw'")
            cur.execute(f"GRANT SELECT ON {name}.* TO '{reader}'@'%'")
        yield f"mysql+pymysql://{reader}:reader-pw@127.0.0.1:3306/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
            cur.execute(f"DROP USER IF EXISTS '{reader}'@'%'")
        admin.close()


def test_mariadb(mariadb_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """MariaDB: exact ratios, as a SELECT-only user."""
    assert_exact(capsys, mariadb_url, "customers.id", tmp_path)
