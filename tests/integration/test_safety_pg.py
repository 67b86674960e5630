"""Read-only sessions, statement timeouts and password masking on PostgreSQL (SPEC §6)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from helpers import run_cli, run_json, write_config

pytestmark = pytest.mark.postgres

SECRET = "Sup3r-Secret-pw"


@pytest.fixture
def accounts(make_table, pg_conn):  # type: ignore[no-untyped-def]
    """A small table and a sequence that a write attempt would change."""
    pg_conn.execute("DROP SEQUENCE IF EXISTS dq_seq")
    pg_conn.execute("CREATE SEQUENCE dq_seq")
    yield make_table("accounts", {"id": "integer", "balance": "integer"},
                     [(1, 10), (2, 20), (3, 30)])
    pg_conn.execute("DROP SEQUENCE IF EXISTS dq_seq")


def test_writes_fail_and_change_nothing(accounts: str, pg_url: str, pg_conn, tmp_path: Path,  # type: ignore[no-untyped-def]
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A write hidden in where, condition or custom.sql errors out; the data is unchanged."""
    tables = """
  - name: via_custom
    table: accounts
    checks:
      - custom: {name: wipe, sql: "with d as (delete from accounts returning 1) select count(*) from d", max: 0}
      - custom: {name: bump, sql: "select count(*) from (update accounts set balance = 0 returning 1) u", max: 0}
  - name: via_condition
    table: accounts
    checks:
      - validity: {name: seq, condition: "nextval('dq_seq') > 0"}
  - name: via_where
    table: accounts
    where: "id in (select id from accounts for update)"
    checks:
      - row_count: {min: 0}
"""
    code, results = run_json(capsys, write_config(tmp_path, pg_url, tables))
    assert {n: r["status"] for n, r in results.items()} == {
        "wipe": "error", "bump": "error", "seq": "error", "row_count": "error"}
    assert "read-only transaction" in results["wipe"]["error"]
    assert "read-only transaction" in results["seq"]["error"]
    assert "read-only transaction" in results["row_count"]["error"]
    assert code == 3
    assert pg_conn.execute("SELECT sum(balance), count(*) FROM accounts").fetchone() == (60, 3)
    assert pg_conn.execute("SELECT last_value, is_called FROM dq_seq").fetchone() == (1, False)


def test_statement_timeout_cuts_one_check(accounts: str, pg_url: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A query slower than statement_timeout is cancelled and costs only its own check."""
    tables = """
  - name: accounts
    checks:
      - row_count: {min: 3}
      - custom: {name: slow, sql: "select count(*) from accounts, pg_sleep(5)", max: 100}
"""
    config = write_config(tmp_path, pg_url, tables, warehouse_extra="    statement_timeout: 0.5s\n")
    code, results = run_json(capsys, config)
    assert results["row_count"]["status"] == "pass"
    assert results["slow"]["status"] == "error"
    assert results["slow"]["error"].startswith("statement_timeout (0.5s) exceeded")
    assert results["slow"]["duration_seconds"] < 4.5  # cut, not waited out
    assert code == 3


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_password_never_shown(accounts: str, pg_database: dict[str, str], tmp_path: Path,
                              fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A password in the URL appears in no output, whether the server is up or unreachable."""
    live = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:5432/{pg_database['name']}"
    dead = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{_dead_port()}/nowhere"
    tables = ("\n  - name: accounts\n    checks:\n      - row_count: {min: 1}\n"
              "      - custom: {name: bad, sql: 'select nope', max: 1}\n")
    for url in (live, dead):
        config = write_config(tmp_path, url, tables)
        code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--no-export",
                                 "--format", fmt)
        assert code == 3
        assert SECRET not in out + err
        code, out, err = run_cli(capsys, "validate", "--config", str(config), "--connect",
                                 "--show-sql")
        assert SECRET not in out + err
    assert code == 3  # the dead warehouse fails validate --connect
    assert "postgres:***@127.0.0.1" in err
