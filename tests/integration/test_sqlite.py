"""The embedded SQLite warehouse: the demo, ISO-8601 text timestamps, read-only, timeouts."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.demo import build_demo
from dqmon.errors import WarehouseError
from dqmon.warehouse import Warehouse

from helpers import run_cli, run_json, write_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    """The repo's checks.yaml, pointed at a freshly built demo warehouse."""
    db = build_demo(tmp_path / "warehouse.db")
    text = (REPO / "checks.yaml").read_text()
    config = tmp_path / "checks.yaml"
    config.write_text(text.replace("sqlite:///demo/warehouse.db", f"sqlite:///{db}"))
    return config


def test_demo_orders_pass_with_warnings(demo_config: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The README's main job: orders pass their critical checks; the planted defects show."""
    code, results = run_json(capsys, demo_config, "--table", "orders")
    rows = 2398  # 2400 orders minus the 2 test orders excluded by `where`
    assert results["row_count"]["value"] == rows
    assert results["completeness_customer_id"]["value"] == pytest.approx(1 - 3 / rows)
    assert results["amount_positive"]["value"] == pytest.approx(1 - 1 / rows)
    assert results["status_known"]["value"] == pytest.approx(1 - 1 / rows)
    assert results["email_format"]["value"] == pytest.approx(1 - 5 / rows)
    assert results["uniqueness_order_id"]["value"] == pytest.approx(1 - 1 / rows)
    assert 7 * 60 <= results["freshness"]["value"] < 7 * 60 + 120
    assert results["schema"]["value"] == 0
    failing = {n: r["severity"] for n, r in results.items() if r["status"] != "pass"}
    assert failing == {"email_format": "warning", "uniqueness_order_id": "warning"}
    assert code == 0


def test_demo_customers_fail(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The customers table is stale and has a duplicate key: exit 1."""
    code, results = run_json(capsys, demo_config, "--table", "customers")
    assert results["freshness"]["status"] == "fail"
    assert results["uniqueness_customer_id"]["value"] == pytest.approx(900 / 901)
    assert code == 1


def test_demo_is_deterministic(tmp_path: Path) -> None:
    """Two builds at the same instant are byte-for-byte the same data."""
    now = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()
    dumps, newest = [], []
    for name in ("a.db", "b.db"):
        with sqlite3.connect(build_demo(tmp_path / name, now_s=now)) as db:
            dumps.append("\n".join(db.iterdump()))
            newest.append(db.execute("select max(julianday(created_at)) from orders").fetchone()[0])
        db.close()
    assert dumps[0] == dumps[1]
    age_s = (now - (newest[0] - 2440587.5) * 86400)
    assert 7 * 60 <= age_s <= 7 * 60 + 30  # the newest order is 7 minutes old


@pytest.fixture
def text_times(tmp_path: Path) -> str:
    """A SQLite table whose timestamps are ISO-8601 text in three spellings and two offsets."""
    db = tmp_path / "t.db"
    now = datetime.now(UTC).replace(microsecond=0)
    hour_ago = now - timedelta(hours=1)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE ev (at TEXT)")
        conn.executemany("INSERT INTO ev VALUES (?)", [
            ((hour_ago - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),),
            # the newest row, written with a +05:00 offset (lexically it looks older)
            (hour_ago.astimezone(timezone(timedelta(hours=5))).isoformat(),),
            ((hour_ago - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),),
            ("2001-11-20T23:30:00-01:00",),  # 2001-11-21 00:30 UTC
            ("2001-11-20 00:00:00",),
        ])
    conn.close()
    return f"sqlite:///{db}"


def test_sqlite_text_timestamps(text_times: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """Freshness and slices read ISO text with offsets as the instants they name."""
    table = ("\n  - name: ev\n    checks:\n      - freshness: {column: at, max_age: 2h}\n")
    _, results = run_json(capsys, write_config(tmp_path, text_times, table))
    assert 3600 <= results["freshness"]["value"] < 3600 + 60
    table = ("\n  - name: ev\n    partition: {column: at}\n"
             "    checks:\n      - row_count: {min: 1}\n")
    config = write_config(tmp_path, text_times, table)
    for day in ("2001-11-20", "2001-11-21"):  # the -01:00 row belongs to the 21st in UTC
        _, results = run_json(capsys, config, "--partition", day)
        assert results["row_count"]["value"] == 1, day


def _digest(url: str) -> str:
    """Return the SHA-256 of a SQLite URL's file, read independently of dqmon."""
    return hashlib.sha256(Path(url.removeprefix("sqlite:///")).read_bytes()).hexdigest()


def test_sqlite_write_is_refused_at_load(text_times: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A write in custom SQL is a located config error (exit 2) and the file is unchanged."""
    before = _digest(text_times)
    table = ("\n  - name: ev\n    checks:\n"
             "      - custom: {name: wipe, sql: 'delete from ev returning 1', max: 0}\n")
    config = write_config(tmp_path, text_times, table)
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--no-export")
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"{config}:9 tables[0].checks[0].custom.sql: must be a SELECT query (found DELETE)"]
    assert _digest(text_times) == before


def test_sqlite_session_is_read_only_without_the_loader(text_times: str) -> None:
    """Sent straight to a session, a write is denied, and still fails with the authorizer off."""
    before = _digest(text_times)
    warehouse = Warehouse("main", WarehouseSettings(url=text_times))
    try:
        with pytest.raises(WarehouseError, match="not authorized"):
            warehouse.fetch_all(sa.text("delete from ev returning 1"))
        # Below the authorizer: the mode=ro file and query_only still refuse the write.
        raw = warehouse.engine().raw_connection()
        try:
            raw.driver_connection.set_authorizer(None)  # type: ignore[union-attr]
            with pytest.raises(sqlite3.OperationalError, match="readonly database"):
                raw.driver_connection.execute("delete from ev")  # type: ignore[union-attr]
        finally:
            raw.invalidate()  # never hand the authorizer-less connection back to the pool
    finally:
        warehouse.dispose()
    assert _digest(text_times) == before


def test_sqlite_statement_timeout(text_times: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite has no server-side timeout: the client interrupts the query at the deadline."""
    slow = ("with recursive n(i) as (select 1 union all select i + 1 from n) "
            "select count(*) from n")
    table = ("\n  - name: ev\n    checks:\n      - row_count: {min: 1}\n"
             f"      - custom: {{name: forever, sql: \"{slow}\", max: 0}}\n")
    config = write_config(tmp_path, text_times, table, warehouse_extra="    statement_timeout: 0.3s\n")
    code, results = run_json(capsys, config)
    assert results["row_count"]["status"] == "pass"
    assert results["forever"]["error"].startswith("statement_timeout (0.3s) exceeded")
    assert code == 3


def test_missing_sqlite_file_is_an_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A SQLite path that does not exist is a check error (exit 3), not a new empty file."""
    missing = tmp_path / "nope.db"
    table = "\n  - name: ev\n    checks:\n      - row_count: {min: 1}\n"
    code, out, _ = run_cli(capsys, "run-once", "--no-export", "--config",
                           str(write_config(tmp_path, f"sqlite:///{missing}", table)))
    assert code == 3
    assert f"SQLite database file not found: {missing}" in out
    assert not missing.exists()


def test_scan_plan_keeps_order_and_connection_limit(tmp_path: Path) -> None:
    """run-once scans tables concurrently, never more at once than max_connections, in order."""
    import contextlib
    import threading
    import time as clock

    from dqmon.config import parse_config
    from dqmon.plan import scan_plan
    from dqmon.scan import NullObserver
    from dqmon.warehouse import open_warehouses

    db = build_demo(tmp_path / "w.db")
    tables = "".join(f"  - {{name: t{i}, table: orders, checks: [{{row_count: {{min: 1}}}}]}}\n"
                     for i in range(6))
    config = parse_config("version: 1\nwarehouses:\n  main: {url: 'sqlite:///" + str(db) +
                          "', max_connections: 2}\ntables:\n" + tables, env={})
    active, peak, lock = 0, 0, threading.Lock()

    class Counting(NullObserver):
        @contextlib.contextmanager
        def scan(self, table, warehouse, partition):  # type: ignore[no-untyped-def,override]
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            clock.sleep(0.05)
            try:
                with super().scan(table, warehouse, partition) as recorder:
                    yield recorder
            finally:
                with lock:
                    active -= 1

    warehouses = open_warehouses(config.warehouses)
    plan = [(t, t.checks, None) for t in config.tables]
    results = scan_plan(plan, warehouses, observer=Counting())
    assert [r.table for r in results] == [f"t{i}" for i in range(6)]
    assert [r.value for r in results] == [2400.0] * 6
    assert peak == 2
