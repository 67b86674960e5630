"""`dqmon validate`: --show-sql without connecting, --connect against a real PostgreSQL."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from helpers import run_cli, write_config

pytestmark = pytest.mark.postgres

TABLES = """
  - name: orders
    table: public.orders
    where: "status <> 'test'"
    checks:
      - row_count: {min: 1}
      - completeness: {columns: [id, ghost]}
      - validity: {name: known, column: status, in: [paid]}
"""


def test_show_sql_needs_no_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--show-sql prints the one scan of each table in its dialect, without connecting."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = write_config(tmp_path, f"postgresql+psycopg://u@127.0.0.1:{port}/x", TABLES)
    code, out, err = run_cli(capsys, "validate", "--config", str(config), "--show-sql")
    assert code == 0
    assert "-- table orders (warehouse main, dialect postgresql)" in out
    assert ("SELECT count(*) AS dq_rows, count(id) AS p1_count, count(ghost) AS p2_count, "
            "count(CASE WHEN (status IN ('paid')) THEN 1 END) AS p3_valid, "
            "count(status) AS p4_count \nFROM public.orders \nWHERE (status <> 'test');"
            ) in out
    assert "1 tables, 4 checks: OK" in err


def test_connect_reports_missing_tables_and_columns(make_table, pg_url: str, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """--connect exits 3 naming each missing table and column; 0 when all exist."""
    make_table("orders", {"id": "integer", "status": "text"}, [(1, "paid")])
    tables = TABLES + "  - name: nowhere\n    checks:\n      - row_count: {min: 1}\n"
    config = write_config(tmp_path, pg_url, tables)
    code, _, err = run_cli(capsys, "validate", "--config", str(config), "--connect")
    assert code == 3
    assert "orders: column 'ghost' not found in public.orders" in err
    assert "nowhere: table nowhere not found" in err
    config = write_config(tmp_path, pg_url, TABLES.replace(", ghost", ""))
    code, _, err = run_cli(capsys, "validate", "--config", str(config), "--connect")
    assert (code, err.strip().splitlines()[-1]) == (0, f"{config}: 1 tables, 3 checks: OK")
