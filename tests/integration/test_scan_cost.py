"""Per-run cost of a scan (issue 9): statements compiled once per table, sent as text after."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.sql import compiler

from dqmon.checks.timeutil import parse_slice
from dqmon.config import load_config
from dqmon.config.resolved import TableSpec
from dqmon.scan import scan_table
from dqmon.warehouse import Warehouse

from helpers import write_config

ORDERS = """
  - name: orders
    where: "id % 2 = 1 or status = 'x%y'"
    checks:
      - row_count: {min: 1}
      - completeness: {columns: [status]}
      - validity: {name: known_status, column: status, in: ["paid", "x%y"]}
      - uniqueness: {columns: [id]}
      - uniqueness: {name: pair_unique, columns: [id, status]}
"""
EVENTS = """
  - name: events
    partition: {column: at, granularity: day}
    checks:
      - row_count: {min: 0}
      - uniqueness: {columns: [id]}
"""


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Count every statement SQLAlchemy compiles (for display or for execution)."""
    seen: list[str] = []
    original = compiler.SQLCompiler.__init__

    def counting(self: compiler.SQLCompiler, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        seen.append(self.string)

    monkeypatch.setattr(compiler.SQLCompiler, "__init__", counting)
    yield seen


def _load(tmp_path: Path, url: str, tables: str) -> tuple[TableSpec, Warehouse]:
    config = load_config(str(write_config(tmp_path, url, tables)))
    return config.tables[0], Warehouse("main", config.warehouses["main"])


def _values(table: TableSpec, warehouse: Warehouse, **kwargs: Any) -> dict[str, float | None]:
    results = scan_table(table, warehouse, **kwargs)
    assert [r.error for r in results] == [None] * len(results)
    return {r.check: r.value for r in results}


@pytest.fixture
def orders(make_table):  # type: ignore[no-untyped-def]
    """Five orders: ids 1, 1, 2, 3, 4; one NULL status; one status with a percent sign."""
    return make_table("orders", {"id": "int", "status": "text"},
                      [(1, "paid"), (1, "new"), (2, "x%y"), (3, None), (4, "paid")])


@pytest.mark.postgres
def test_later_runs_compile_nothing(orders: str, pg_url: str, tmp_path: Path,
                                    compiles: list[str]) -> None:
    """After a table's first run, its scans send the compiled text: no compile on any later run."""
    table, warehouse = _load(tmp_path, pg_url, ORDERS)
    first = _values(table, warehouse)
    compiles.clear()
    later = [_values(table, warehouse) for _ in range(5)]
    assert compiles == []
    assert later == [first] * 5
    assert first == {"row_count": 4.0, "completeness_status": 0.75, "known_status": 2 / 3,
                     "uniqueness_id": 0.75, "pair_unique": 1.0}
    assert len(warehouse.statements) == 3  # the aggregate scan and two uniqueness queries
    warehouse.dispose()


@pytest.mark.postgres
def test_first_run_compiles_each_statement_for_display_and_for_execution(
        orders: str, pg_url: str, tmp_path: Path, compiles: list[str]) -> None:
    """A table's first run compiles each of its statements twice: span text, then the driver's."""
    table, warehouse = _load(tmp_path, pg_url, ORDERS)
    warehouse.ping()  # the role probe compiles its own catalog queries; not counted below
    compiles.clear()
    _values(table, warehouse)
    assert len(compiles) == 2 * 3
    warehouse.dispose()


@pytest.mark.postgres
def test_each_run_binds_its_own_slice(make_table, pg_url: str, tmp_path: Path,  # type: ignore[no-untyped-def]
                                      compiles: list[str]) -> None:
    """A partitioned table's statement is compiled once; each run counts its own day's rows."""
    make_table("events", {"id": "int", "at": "timestamp"},
               [(1, "2026-11-19 10:00"), (2, "2026-11-20 00:00"), (2, "2026-11-20 23:59"),
                (3, "2026-11-21 00:00")])
    table, warehouse = _load(tmp_path, pg_url, EVENTS)
    warehouse.ping()  # the role probe compiles its own catalog queries; not counted below
    compiles.clear()
    days = ["2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"]
    runs = [_values(table, warehouse, slice_=parse_slice(day, "day")) for day in days]
    assert [r["row_count"] for r in runs] == [1.0, 2.0, 1.0, 0.0]
    assert [r["uniqueness_id"] for r in runs] == [1.0, 0.5, 1.0, 1.0]
    assert len(compiles) == 2 * 2  # two statements, on the first run only
    warehouse.dispose()


def test_sqlite_runs_match_the_first_run(tmp_path: Path, compiles: list[str]) -> None:
    """On SQLite (positional parameters, text partition bounds) later runs equal the first."""
    import sqlite3

    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table events (id int, at text)")
        conn.executemany("insert into events values (?, ?)",
                         [(1, "2026-11-19T10:00:00Z"), (2, "2026-11-20T00:00:00+00:00"),
                          (2, "2026-11-20T23:59:00Z")])
    table, warehouse = _load(tmp_path, f"sqlite:///{db}", EVENTS)
    day = parse_slice("2026-11-20", "day")
    first = _values(table, warehouse, slice_=day)
    compiles.clear()
    assert _values(table, warehouse, slice_=day) == first == {"row_count": 2.0, "uniqueness_id": 0.5}
    assert _values(table, warehouse, slice_=parse_slice("2026-11-19", "day"))["row_count"] == 1.0
    assert compiles == []
    warehouse.dispose()


def test_statements_go_with_their_table(tmp_path: Path) -> None:
    """A reload's replaced TableSpec takes its compiled statements with it (no leak per reload)."""
    import sqlite3

    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table events (id int, at text)")
    table, warehouse = _load(tmp_path, f"sqlite:///{db}", EVENTS)
    _values(table, warehouse, slice_=parse_slice("2026-11-20", "day"))
    assert len(warehouse.statements) == 2
    del table
    gc.collect()
    assert len(warehouse.statements) == 0
    warehouse.dispose()


def test_checks_not_of_the_table_are_not_cached(tmp_path: Path) -> None:
    """Copies of a table's checks run uncached: a reused object id can never pick stale SQL."""
    import dataclasses
    import sqlite3

    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table events (id int, at text)")
        conn.execute("insert into events values (1, '2026-11-20 10:00:00')")
    table, warehouse = _load(tmp_path, f"sqlite:///{db}", EVENTS)
    copies = [dataclasses.replace(spec) for spec in table.checks]
    day = parse_slice("2026-11-20", "day")
    assert _values(table, warehouse, only=copies, slice_=day) == {"row_count": 1.0,
                                                                  "uniqueness_id": 1.0}
    assert len(warehouse.statements) == 0
    warehouse.dispose()
