"""Metadata monitors against real engines (SPEC 9): catalog row counts, change times, schema
changes and one catalog query per warehouse and schema, on PostgreSQL, MariaDB, DuckDB and
SQLite's fallback, through the real CLI and through `scan_table` with real warehouses."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from dqmon.catalog import Catalog, catalog_of
from dqmon.cli import render_json
from dqmon.config import TableSpec, parse_config
from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.results import CheckResult
from dqmon.scan import scan_table
from dqmon.warehouse import Warehouse, open_warehouses

from conftest import mariadb_admin
from helpers import run_cli

METADATA_CHECKS = ("[volume: {}, freshness: {source: metadata, max_age: 1d}, "
                   "schema_change: {}]")


# --- helpers -----------------------------------------------------------------------------------

class Clock:
    """A clock the test moves by hand (far from real time, so a mixed-up clock shows)."""

    def __init__(self, now_s: float = 1_000_000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def config_text(url: str, tables: str, *, warehouse_extra: str = "") -> str:
    """Return a checks.yaml with one warehouse `main` at `url` and the given `tables:` block."""
    return (f"version: 1\nwarehouses:\n  main:\n    url: \"{url}\"\n{warehouse_extra}"
            "defaults:\n  schedule: every 1s\ntables:\n" + tables)


def write_config(tmp_path: Path, url: str, tables: str, **kwargs: str) -> Path:
    """Write config_text(...) to tmp_path/checks.yaml and return the path."""
    path = tmp_path / "checks.yaml"
    path.write_text(config_text(url, tables, **kwargs))
    return path


def tables_of(url: str, tables: str) -> dict[str, TableSpec]:
    """Return the resolved tables of a config, by name."""
    return {t.name: t for t in parse_config(config_text(url, tables), env={}).tables}


def run_once(capsys: pytest.CaptureFixture[str],
             config: Path) -> tuple[int, dict[tuple[str, str], dict[str, Any]]]:
    """Run `dqmon run-once --format json`; return the exit code and results by (table, check)."""
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--format", "json",
                             "--no-export")
    assert out, f"no JSON on stdout; stderr: {err}"
    return code, {(r["table"], r["check"]): r for r in json.loads(out)["results"]}


def by_check(results: list[CheckResult]) -> dict[str, CheckResult]:
    """Key one table's results by check name, after making sure none errored."""
    errors = [(r.check, r.error) for r in results if r.status == "error"]
    assert not errors, errors
    return {r.check: r for r in results}


def controlled_catalog(monkeypatch: pytest.MonkeyPatch, warehouse: Warehouse,
                       clock: Callable[[], float]) -> Catalog:
    """Make the scans of `warehouse` use one long-lived Catalog that runs on `clock`.

    catalog_of() builds its Catalog on time.time whatever clock scan_table is given (see
    test_pg_scan_table_clock_alone_sets_metadata_freshness), so the test hands scan.py a Catalog
    on the same clock as the scans: snapshot ages and change times are then exact.
    """
    catalog = Catalog(warehouse)
    monkeypatch.setattr("dqmon.scan.catalog_of",
                        lambda w: catalog if w is warehouse else catalog_of(w))
    return catalog


@dataclass
class Opened:
    """The warehouses a CLI run opened, and every statement their engines sent."""

    warehouses: dict[str, Warehouse] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)

    def sent(self, needle: str) -> list[str]:
        """Return the statements that contain `needle` (case-insensitive)."""
        return [s for s in self.statements if needle.lower() in s.lower()]


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Opened:
    """Record the Warehouses `run-once` opens (to ask their Catalog) and the SQL they send."""
    found = Opened()

    def opening(settings: Any) -> dict[str, Warehouse]:
        warehouses = open_warehouses(settings)
        for warehouse in warehouses.values():
            sa.event.listen(warehouse.engine(), "before_cursor_execute",
                            lambda _c, _cur, statement, *_: found.statements.append(statement))
        found.warehouses.update(warehouses)
        return warehouses

    monkeypatch.setattr("dqmon.runonce.open_warehouses", opening)
    return found


def assert_metadata_attributes(result: dict[str, Any], metric: str, *, source: bool) -> None:
    """Check a JSON result's metric name and whether it carries dq.source=metadata."""
    assert result["metric"] == metric
    assert result["attributes"].get("dq.source") == ("metadata" if source else None)


# --- PostgreSQL --------------------------------------------------------------------------------

@pytest.fixture
def pg_schemas(pg_conn: psycopg.Connection[Any]) -> Iterator[Callable[[], str]]:
    """Create fresh schemas on demand (the reader role reads them through pg_read_all_data)."""
    made: list[str] = []

    def make() -> str:
        name = f"md_{uuid.uuid4().hex[:8]}"
        pg_conn.execute(f"CREATE SCHEMA {name}")
        made.append(name)
        return name

    yield make
    for name in made:
        pg_conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def pg_table(conn: psycopg.Connection[Any], name: str, rows: int) -> None:
    """Create `name` (id, amount, note) with `rows` rows and ANALYZE it."""
    conn.execute(f"CREATE TABLE {name} (id integer, amount numeric(10,2), note text)")
    conn.execute(f"INSERT INTO {name} SELECT i, i / 10.0, 'n' || i "
                 f"FROM generate_series(1, {rows}) i")
    conn.execute(f"ANALYZE {name}")


def pg_write(conn: psycopg.Connection[Any], *statements: str) -> None:
    """Run writes, then flush this backend's statistics so other sessions see the counters."""
    for statement in statements:
        conn.execute(statement)
    conn.execute("SELECT pg_stat_force_next_flush()")  # PG 15: flushed before ReadyForQuery


def pg_reads(conn: psycopg.Connection[Any], schema: str) -> dict[str, int]:
    """Return each table's sequential plus index scans, as the statistics say now."""
    rows = conn.execute("SELECT relname, seq_scan + coalesce(idx_scan, 0) FROM "
                        "pg_stat_user_tables WHERE schemaname = %s", (schema,)).fetchall()
    return {str(name): int(count) for name, count in rows}


def pg_count(conn: psycopg.Connection[Any], name: str) -> int:
    """Count a table's rows through the test's own superuser connection."""
    row = conn.execute(f"SELECT count(*) FROM {name}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
def test_pg_volume_is_the_analyzed_row_count(
        tmp_path: Path, pg_url: str, pg_conn: psycopg.Connection[Any],
        pg_schemas: Callable[[], str], capsys: pytest.CaptureFixture[str]) -> None:
    """After ANALYZE, run-once's volume is count(*) exactly, as dq.row_count with dq.source."""
    schema = pg_schemas()
    for name, rows in (("big", 5000), ("small", 3), ("empty", 0)):
        pg_table(pg_conn, f"{schema}.{name}", rows)
    tables = "".join(f"  - {{name: {n}, table: {schema}.{n}, checks: [volume: {{min: 1}}, "
                     "freshness: {source: metadata, max_age: 1d}, schema_change: {}]}\n"
                     for n in ("big", "small", "empty"))
    code, results = run_once(capsys, write_config(tmp_path, pg_url, tables))
    # ANALYZE samples 300 x default_statistics_target (30,000) rows; these tables are smaller,
    # so reltuples is the exact count, not an extrapolation.
    for name in ("big", "small", "empty"):
        volume = results[(name, "volume")]
        assert volume["value"] == pg_count(pg_conn, f"{schema}.{name}"), name
        assert_metadata_attributes(volume, "dq.row_count", source=True)
    assert results[("big", "volume")]["value"] == 5000
    assert results[("empty", "volume")]["status"] == "fail"  # 0 < min 1: exit 1
    assert code == 1
    for name in ("big", "small", "empty"):
        freshness, change = results[(name, "freshness")], results[(name, "schema_change")]
        assert_metadata_attributes(freshness, "dq.freshness_seconds", source=True)
        assert_metadata_attributes(change, "dq.schema_changes", source=False)
        assert 0 <= freshness["value"] < 5  # PostgreSQL has no change time: first seen = now
        assert (change["value"], change["status"], "details" in change) == (0, "pass", False)


@pytest.mark.postgres
def test_pg_metadata_freshness_moves_on_writes_only(
        pg_url: str, pg_conn: psycopg.Connection[Any], pg_schemas: Callable[[], str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: freshness grows with the clock, and an insert, update or delete resets it."""
    schema = pg_schemas()
    pg_table(pg_conn, f"{schema}.f", 10)
    table = tables_of(pg_url, f"  - {{name: f, table: {schema}.f, checks: "
                              "[freshness: {source: metadata, max_age: 1m}]}\n")["f"]
    warehouse, clock = Warehouse("main", WarehouseSettings(url=pg_url)), Clock()
    controlled_catalog(monkeypatch, warehouse, clock)

    def freshness(after_s: float) -> float | None:
        clock.advance(after_s)
        return by_check(scan_table(table, warehouse, clock=clock))["freshness"].value

    try:
        assert freshness(0) == 0  # the first look counts as a change now
        pg_conn.execute(f"SELECT count(*) FROM {schema}.f")  # reads and ANALYZE write nothing
        pg_conn.execute(f"ANALYZE {schema}.f")
        assert freshness(100) == 100
        by = by_check(scan_table(table, warehouse, clock=clock))["freshness"]
        assert (by.value, by.status) == (100, "fail")  # over max_age 1m
        pg_write(pg_conn, f"INSERT INTO {schema}.f VALUES (11, 1, 'new')")
        assert freshness(50) == 0
        assert freshness(30) == 30
        pg_write(pg_conn, f"UPDATE {schema}.f SET note = 'changed' WHERE id = 1")
        assert freshness(20) == 0
        assert freshness(10) == 10
        pg_write(pg_conn, f"DELETE FROM {schema}.f WHERE id = 2")
        assert freshness(5) == 0
    finally:
        warehouse.dispose()


@pytest.mark.postgres
def test_pg_scan_table_clock_alone_sets_metadata_freshness(
        pg_url: str, pg_conn: psycopg.Connection[Any], pg_schemas: Callable[[], str]) -> None:
    """scan_table's clock alone sets metadata freshness: 100 s on and no write reads 100."""
    schema = pg_schemas()
    pg_table(pg_conn, f"{schema}.f", 3)
    table = tables_of(pg_url, f"  - {{name: f, table: {schema}.f, checks: "
                              "[freshness: {source: metadata, max_age: 1m}]}\n")["f"]
    warehouse, clock = Warehouse("main", WarehouseSettings(url=pg_url)), Clock()
    try:
        first = by_check(scan_table(table, warehouse, clock=clock))["freshness"].value
        clock.advance(100)
        later = by_check(scan_table(table, warehouse, clock=clock))["freshness"].value
    finally:
        warehouse.dispose()
    assert (first, later) == (0, 100)


@pytest.mark.postgres
def test_pg_schema_change_counts_added_removed_and_retyped_columns(
        pg_url: str, pg_conn: psycopg.Connection[Any], pg_schemas: Callable[[], str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: first look 0; then add, drop and retype count 3, named in the JSON details."""
    schema = pg_schemas()
    pg_table(pg_conn, f"{schema}.sc", 5)
    table = tables_of(pg_url, f"  - {{name: sc, table: {schema}.sc, checks: "
                              "[schema_change: {}, volume: {}]}\n")["sc"]
    warehouse, clock = Warehouse("main", WarehouseSettings(url=pg_url)), Clock()
    controlled_catalog(monkeypatch, warehouse, clock)
    try:
        first = by_check(scan_table(table, warehouse, clock=clock))["schema_change"]
        assert (first.value, first.status, first.details) == (0, "pass", None)
        pg_conn.execute(f"ALTER TABLE {schema}.sc ADD COLUMN added_col text, "
                        "DROP COLUMN note, ALTER COLUMN id TYPE bigint")
        clock.advance(10)
        changed = by_check(scan_table(table, warehouse, clock=clock))
        clock.advance(10)
        after = by_check(scan_table(table, warehouse, clock=clock))["schema_change"]
    finally:
        warehouse.dispose()
    change = changed["schema_change"]
    assert (change.value, change.status) == (3, "fail")
    expected = {"added": ["added_col"], "removed": ["note"], "retyped": ["id"]}
    assert change.to_json()["details"] == expected
    printed = json.loads(render_json(list(changed.values())))["results"]
    assert [r["details"] for r in printed if r["check"] == "schema_change"] == [expected]
    assert_metadata_attributes(change.to_json(), "dq.schema_changes", source=False)
    assert (after.value, after.details) == (0, None)  # the changed columns are the new baseline


@pytest.mark.postgres
def test_pg_schema_change_is_seen_by_a_slow_table_beside_a_fast_one(
        pg_url: str, pg_conn: psycopg.Connection[Any], pg_schemas: Callable[[], str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An hourly table's added column counts on its next run, though a per-minute table of the
    same schema refreshed the catalog snapshot in between."""
    schema = pg_schemas()
    pg_table(pg_conn, f"{schema}.slow", 1)
    pg_table(pg_conn, f"{schema}.fast", 1)
    tables = tables_of(pg_url, "".join(
        f"  - {{name: {n}, table: {schema}.{n}, schedule: {every}, checks: [schema_change: {{}}]}}\n"
        for n, every in (("slow", "every 1h"), ("fast", "every 1m"))))
    warehouse, clock = Warehouse("main", WarehouseSettings(url=pg_url)), Clock()
    controlled_catalog(monkeypatch, warehouse, clock)
    try:
        by_check(scan_table(tables["slow"], warehouse, clock=clock))
        pg_conn.execute(f"ALTER TABLE {schema}.slow ADD COLUMN added_col int")
        clock.advance(60)
        by_check(scan_table(tables["fast"], warehouse, clock=clock))
        clock.advance(3600)
        change = by_check(scan_table(tables["slow"], warehouse, clock=clock))["schema_change"]
    finally:
        warehouse.dispose()
    assert (change.value, change.details) == (1, {"added": ["added_col"], "removed": [],
                                                   "retyped": []})


@pytest.mark.postgres
def test_pg_partitioned_table_volume_and_freshness_follow_its_partitions(
        pg_url: str, pg_conn: psycopg.Connection[Any], pg_schemas: Callable[[], str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A partitioned table's volume counts its partitions' rows and a write to a partition
    resets its metadata freshness."""
    schema = pg_schemas()
    pg_conn.execute(f"CREATE TABLE {schema}.ev (d date, v int) PARTITION BY RANGE (d)")
    pg_conn.execute(f"CREATE TABLE {schema}.ev_a PARTITION OF {schema}.ev "
                    "FOR VALUES FROM ('2020-01-01') TO ('2030-01-01')")
    table = tables_of(pg_url, f"  - {{name: ev, table: {schema}.ev, checks: [volume: {{}}, "
                              "freshness: {source: metadata, max_age: 1h}]}\n")["ev"]
    warehouse, clock = Warehouse("main", WarehouseSettings(url=pg_url)), Clock()
    controlled_catalog(monkeypatch, warehouse, clock)
    try:
        by_check(scan_table(table, warehouse, clock=clock))
        pg_write(pg_conn, f"INSERT INTO {schema}.ev SELECT '2024-01-01', i "
                          "FROM generate_series(1, 100) i", f"ANALYZE {schema}.ev_a")
        clock.advance(60)
        results = by_check(scan_table(table, warehouse, clock=clock))
    finally:
        warehouse.dispose()
    assert (results["volume"].value, results["freshness"].value) == (100, 0)


@pytest.mark.postgres
def test_pg_one_catalog_query_per_schema_and_no_row_read(
        tmp_path: Path, pg_url: str, pg_conn: psycopg.Connection[Any],
        pg_schemas: Callable[[], str], opened: Opened,
        capsys: pytest.CaptureFixture[str]) -> None:
    """One run-once over 5 + 2 tables in two schemas sends one catalog query per schema and
    scans none of their rows; a scanned control table shows the scan counter works."""
    # pg_stat_statements is installed but not in shared_preload_libraries here (a server
    # restart would be needed): the statements are counted at the driver instead, and the
    # tables' own scan counters say whether any of them was read.
    one, two = pg_schemas(), pg_schemas()
    names = [(one, f"vol_tbl_{i}") for i in range(5)] + [(two, f"vol_tbl_{i}") for i in range(2)]
    for schema, name in names:
        pg_table(pg_conn, f"{schema}.{name}", 20)
    pg_table(pg_conn, f"{two}.ctl_tbl", 20)
    tables = "".join(f"  - {{name: {s}_{n}, table: {s}.{n}, checks: {METADATA_CHECKS}}}\n"
                     for s, n in names)
    tables += f"  - {{name: ctl, table: {two}.ctl_tbl, checks: [row_count: {{min: 1}}]}}\n"
    before = {schema: pg_reads(pg_conn, schema) for schema in (one, two)}
    config = write_config(tmp_path, pg_url, tables,
                          warehouse_extra="    max_connections: 1\n")  # one backend
    code, results = run_once(capsys, config)
    assert code == 0, results
    assert len(results) == 3 * len(names) + 1
    assert all(r["status"] == "pass" for r in results.values())
    assert {results[(f"{s}_{n}", "volume")]["value"] for s, n in names} == {20}
    catalog = catalog_of(opened.warehouses["main"])
    assert (catalog.queries(one), catalog.queries(two)) == (1, 1)
    assert len(opened.sent("pg_stat_get_tuples_inserted")) == 2  # the catalog query, per schema
    assert opened.sent("vol_tbl_") == []  # no statement names a monitored table
    assert len(opened.sent("ctl_tbl")) == 1  # the control's one aggregate scan

    # The reader's backend flushes its statistics when run-once closes it; once the control's
    # scan shows, every scan that backend made shows too.
    deadline = time.monotonic() + 10
    while pg_reads(pg_conn, two)["ctl_tbl"] == before[two]["ctl_tbl"]:
        assert time.monotonic() < deadline, "the control scan never reached the statistics"
        time.sleep(0.1)
    after = {schema: pg_reads(pg_conn, schema) for schema in (one, two)}
    assert after[two].pop("ctl_tbl") == before[two].pop("ctl_tbl") + 1
    assert after == before  # metadata checks never read a monitored table


# --- MariaDB -----------------------------------------------------------------------------------

@pytest.fixture
def mariadb() -> Iterator[dict[str, Any]]:
    """A throwaway MariaDB database, a user who may only SELECT in it, and a root cursor."""
    admin = mariadb_admin()
    suffix = uuid.uuid4().hex[:8]
    name, reader = f"dqmon_md_{suffix}", f"dqmon_mdr_{suffix}"
    cursor = admin.cursor()
    try:
        cursor.execute(f"CREATE DATABASE {name}")
        cursor.execute(f"CREATE USER '{reader}'@'%' IDENTIFIED BY 'reader-pw'")
        cursor.execute(f"GRANT SELECT ON {name}.* TO '{reader}'@'%'")
        yield {"url": f"mysql+pymysql://{reader}:reader-pw@127.0.0.1:3306/{name}",
               "name": name, "cursor": cursor}
    finally:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"DROP USER IF EXISTS '{reader}'@'%'")
        cursor.close()
        admin.close()


def maria_table(cursor: Any, name: str, rows: int) -> None:
    """Create an InnoDB table (id primary key, amount, note) with `rows` rows."""
    cursor.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, amount decimal(10,2), "
                   "note varchar(32)) ENGINE=InnoDB")
    if rows:
        cursor.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s)",
                           [(i, i / 10, f"n{i}") for i in range(1, rows + 1)])


def test_mariadb_volume_is_innodbs_estimate_within_tolerance(
        tmp_path: Path, mariadb: dict[str, Any], opened: Opened,
        capsys: pytest.CaptureFixture[str]) -> None:
    """After ANALYZE TABLE, MariaDB's volume is within 10% of count(*), in one catalog query."""
    db, cursor = mariadb["name"], mariadb["cursor"]
    sizes = {"big": 2000, "mid": 300, "small": 3}
    for name, rows in sizes.items():
        maria_table(cursor, f"{db}.{name}", rows)
        cursor.execute(f"ANALYZE TABLE {db}.{name}")
    tables = "".join(f"  - {{name: {n}, checks: {METADATA_CHECKS}}}\n" for n in sizes)
    code, results = run_once(capsys, write_config(tmp_path, mariadb["url"], tables))
    assert code == 0, results
    for name, rows in sizes.items():
        cursor.execute(f"SELECT count(*) FROM {db}.{name}")
        assert cursor.fetchone()[0] == rows
        volume = results[(name, "volume")]
        # InnoDB's table_rows comes from persistent statistics that sample
        # innodb_stats_persistent_sample_pages (20) leaf pages of the primary key and scale up;
        # these tables fit in a few 16 KiB pages, so ANALYZE reads every page and the estimate
        # should be exact. 10% still allows for the estimate MariaDB documents table_rows to
        # be, without letting a wrong source (0, data_length, another table) pass.
        assert volume["value"] == pytest.approx(rows, rel=0.10), name
        assert_metadata_attributes(volume, "dq.row_count", source=True)
        assert_metadata_attributes(results[(name, "freshness")], "dq.freshness_seconds",
                                   source=True)
        assert results[(name, "schema_change")]["value"] == 0
    assert catalog_of(opened.warehouses["main"]).queries(db) == 1
    assert len(opened.sent("information_schema.tables")) == 1


def test_mariadb_metadata_freshness_follows_update_time(
        mariadb: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """MariaDB: freshness is now minus UPDATE_TIME: it grows without writes, an UPDATE resets it."""
    db, cursor = mariadb["name"], mariadb["cursor"]
    created = time.time()
    maria_table(cursor, f"{db}.f", 10)
    table = tables_of(mariadb["url"], "  - {name: f, checks: "
                                      "[freshness: {source: metadata, max_age: 1m}]}\n")["f"]
    warehouse = Warehouse("main", WarehouseSettings(url=mariadb["url"]))
    # Real time: UPDATE_TIME is the server's clock, in whole seconds.
    controlled_catalog(monkeypatch, warehouse, time.time)

    def freshness() -> float:
        value = by_check(scan_table(table, warehouse))["freshness"].value
        assert value is not None
        return value

    try:
        time.sleep(max(0.0, created + 2.0 - time.time()))  # the insert is 2 s old
        first, first_at = freshness(), time.time()
        assert 1.0 <= first < 4.0  # 2 s, give or take UPDATE_TIME's whole second
        cursor.execute(f"SELECT count(*) FROM {db}.f")  # a read changes nothing
        time.sleep(1.0)
        second, second_at = freshness(), time.time()
        assert second - first == pytest.approx(second_at - first_at, abs=0.25)
        cursor.execute(f"UPDATE {db}.f SET note = 'changed' WHERE id = 1")
        written_at = time.time()
        time.sleep(1.0)  # past the snapshot's max age (0.9 x every 1s)
        third, third_at = freshness(), time.time()
    finally:
        warehouse.dispose()
    # Unmoved it would read second + >= 1 s (>= 3 s); moved it is the time since the UPDATE,
    # plus at most UPDATE_TIME's truncated second.
    assert third <= third_at - written_at + 1.0 + 0.25
    assert third < second


def test_mariadb_schema_change_counts_added_removed_and_retyped_columns(
        mariadb: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """MariaDB: first look 0; then ADD, DROP and MODIFY count 3, named in the details."""
    db, cursor = mariadb["name"], mariadb["cursor"]
    maria_table(cursor, f"{db}.sc", 5)
    table = tables_of(mariadb["url"], "  - {name: sc, checks: [schema_change: {}]}\n")["sc"]
    warehouse, clock = Warehouse("main", WarehouseSettings(url=mariadb["url"])), Clock()
    controlled_catalog(monkeypatch, warehouse, clock)
    try:
        first = by_check(scan_table(table, warehouse, clock=clock))["schema_change"]
        cursor.execute(f"ALTER TABLE {db}.sc ADD COLUMN added_col int, DROP COLUMN note, "
                       "MODIFY amount decimal(12,4)")
        clock.advance(10)
        change = by_check(scan_table(table, warehouse, clock=clock))["schema_change"]
    finally:
        warehouse.dispose()
    assert (first.value, first.details) == (0, None)
    assert (change.value, change.status) == (3, "fail")
    assert change.to_json()["details"] == {
        "added": ["added_col"], "removed": ["note"], "retyped": ["amount"]}


# --- DuckDB ------------------------------------------------------------------------------------

@pytest.fixture
def duck(tmp_path: Path) -> tuple[str, Path]:
    """A DuckDB file with t (1234 rows) and u (7 rows); return its URL and path."""
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as conn:
        for name, rows in (("t", 1234), ("u", 7)):
            conn.execute(f"CREATE TABLE {name} (id INTEGER, amount DECIMAL(10,2), note VARCHAR)")
            conn.execute(f"INSERT INTO {name} SELECT i, i / 10, 'n' || i FROM range({rows}) r(i)")
    return f"duckdb:///{path}", path


def duck_run(path: Path, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements on the DuckDB file through a connection of the test's own."""
    import duckdb

    with duckdb.connect(str(path)) as conn:
        rows: list[tuple[Any, ...]] = []
        for statement in statements:
            rows = conn.execute(statement).fetchall()
        return rows


def test_duckdb_volume_is_the_estimated_size(
        tmp_path: Path, duck: tuple[str, Path], opened: Opened,
        capsys: pytest.CaptureFixture[str]) -> None:
    """DuckDB: volume is estimated_size, exact for appended rows, from one catalog query."""
    url, path = duck
    tables = "".join(f"  - {{name: {n}, checks: {METADATA_CHECKS}}}\n" for n in ("t", "u"))
    code, results = run_once(capsys, write_config(tmp_path, url, tables))
    assert code == 0, results
    # estimated_size counts the rows appended to the table's row groups: exact until rows are
    # deleted (deleted rows stay counted until the row group is rewritten).
    for name in ("t", "u"):
        assert results[(name, "volume")]["value"] == duck_run(
            path, f"SELECT count(*) FROM {name}")[0][0]
        assert_metadata_attributes(results[(name, "volume")], "dq.row_count", source=True)
        assert_metadata_attributes(results[(name, "freshness")], "dq.freshness_seconds",
                                   source=True)
    assert results[("t", "volume")]["value"] == 1234
    assert catalog_of(opened.warehouses["main"]).queries("main") == 1
    assert len(opened.sent("duckdb_tables()")) == 1


def test_duckdb_metadata_freshness_moves_when_rows_are_appended(
        duck: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB: freshness grows with the clock and resets when estimated_size moves."""
    url, path = duck
    table = tables_of(url, "  - {name: t, checks: "
                           "[freshness: {source: metadata, max_age: 1m}]}\n")["t"]
    warehouse, clock = Warehouse("main", WarehouseSettings(url=url)), Clock()
    controlled_catalog(monkeypatch, warehouse, clock)

    def freshness(after_s: float) -> float | None:
        clock.advance(after_s)
        return by_check(scan_table(table, warehouse, clock=clock))["freshness"].value

    try:
        assert freshness(0) == 0
        duck_run(path, "SELECT count(*) FROM t")  # a read (and a checkpoint) changes nothing
        assert freshness(100) == 100
        duck_run(path, "INSERT INTO t VALUES (5000, 1, 'new')")
        assert freshness(50) == 0
        assert freshness(30) == 30
    finally:
        warehouse.dispose()


def test_duckdb_schema_change_counts_added_removed_and_retyped_columns(
        duck: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB: first look 0; then ADD, DROP and ALTER TYPE count 3, named in the details."""
    url, path = duck
    table = tables_of(url, "  - {name: u, checks: [schema_change: {}]}\n")["u"]
    warehouse, clock = Warehouse("main", WarehouseSettings(url=url)), Clock()
    controlled_catalog(monkeypatch, warehouse, clock)
    try:
        first = by_check(scan_table(table, warehouse, clock=clock))["schema_change"]
        duck_run(path, "ALTER TABLE u ADD COLUMN added_col INTEGER", "ALTER TABLE u DROP note",
                 "ALTER TABLE u ALTER id TYPE BIGINT")
        clock.advance(10)
        change = by_check(scan_table(table, warehouse, clock=clock))["schema_change"]
    finally:
        warehouse.dispose()
    assert (first.value, first.details) == (0, None)
    assert (change.value, change.status) == (3, "fail")
    assert change.to_json()["details"] == {
        "added": ["added_col"], "removed": ["note"], "retyped": ["id"]}


# --- SQLite ------------------------------------------------------------------------------------

@pytest.fixture
def lite(tmp_path: Path) -> tuple[str, Path]:
    """A SQLite file with a (250 rows), b (1 row) and c (empty); return its URL and path."""
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        for name, rows in (("a", 250), ("b", 1), ("c", 0)):
            conn.execute(f"CREATE TABLE {name} (id INTEGER, amount NUMERIC, note TEXT)")
            conn.executemany(f"INSERT INTO {name} VALUES (?, ?, ?)",
                             [(i, i / 10, f"n{i}") for i in range(rows)])
    conn.close()
    return f"sqlite:///{path}", path


def test_sqlite_volume_is_an_exact_count_in_one_query(
        tmp_path: Path, lite: tuple[str, Path], opened: Opened,
        capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite has no catalog counts: volume is count(*), all tables counted in one query."""
    url, _ = lite
    tables = "".join(f"  - {{name: {n}, checks: [volume: {{}}, schema_change: {{}}]}}\n"
                     for n in ("a", "b", "c"))
    code, results = run_once(capsys, write_config(tmp_path, url, tables))
    assert code == 0, results
    assert {n: results[(n, "volume")]["value"] for n in ("a", "b", "c")} == {
        "a": 250, "b": 1, "c": 0}
    assert_metadata_attributes(results[("a", "volume")], "dq.row_count", source=True)
    assert results[("a", "schema_change")]["value"] == 0
    assert catalog_of(opened.warehouses["main"]).queries("main") == 1
    assert len(opened.sent("pragma_table_info")) == 1


def test_sqlite_metadata_freshness_is_a_config_error(
        tmp_path: Path, lite: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite records no change time: freshness with source metadata is refused, exit 2."""
    url, _ = lite
    config = write_config(tmp_path, url, "  - name: a\n    checks:\n"
                                         "      - freshness: {source: metadata, max_age: 1d}\n")
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--no-export")
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"{config}:10 tables[0].checks[0].freshness: SQLite records no "
                                "change time: give freshness a column"]


def test_sqlite_schema_change_counts_added_removed_and_retyped_columns(
        lite: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: first look 0; then an added, a dropped and a retyped column count 3."""
    url, path = lite
    table = tables_of(url, "  - {name: a, checks: [schema_change: {}, volume: {}]}\n")["a"]
    warehouse, clock = Warehouse("main", WarehouseSettings(url=url)), Clock()
    controlled_catalog(monkeypatch, warehouse, clock)
    try:
        first = by_check(scan_table(table, warehouse, clock=clock))["schema_change"]
        with sqlite3.connect(path) as conn:  # SQLite retypes by rebuilding the table
            conn.executescript(
                "CREATE TABLE a_new (id INTEGER, amount REAL, note TEXT);"
                "INSERT INTO a_new SELECT id, amount, note FROM a; DROP TABLE a;"
                "ALTER TABLE a_new RENAME TO a; ALTER TABLE a ADD COLUMN added_col INTEGER;"
                "ALTER TABLE a DROP COLUMN note;")
        conn.close()
        clock.advance(10)
        changed = by_check(scan_table(table, warehouse, clock=clock))
    finally:
        warehouse.dispose()
    assert (first.value, first.details) == (0, None)
    assert (changed["schema_change"].value, changed["volume"].value) == (3, 250)
    assert changed["schema_change"].to_json()["details"] == {
        "added": ["added_col"], "removed": ["note"], "retyped": ["amount"]}
