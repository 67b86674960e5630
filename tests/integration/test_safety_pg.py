"""Read-only sessions, statement timeouts and password masking on PostgreSQL (SPEC §6)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.errors import WarehouseError
from dqmon.warehouse import Warehouse

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


def _unchanged(pg_conn) -> None:  # type: ignore[no-untyped-def]
    """Assert, through the test's own admin connection, that no write reached the data."""
    assert pg_conn.execute("SELECT sum(balance), count(*) FROM accounts").fetchone() == (60, 3)
    assert pg_conn.execute("SELECT last_value, is_called FROM dq_seq").fetchone() == (1, False)


WRITES_IN_CONFIG = [
    pytest.param("""
  - name: via_custom
    table: accounts
    checks:
      - custom: {name: wipe, sql: "with d as (delete from accounts returning 1) select count(*) from d", max: 0}
""", 10, "tables[0].checks[0].custom.sql", "DELETE is not allowed: dqmon only reads",
                 id="custom-delete-cte"),
    pytest.param("""
  - name: via_custom
    table: accounts
    checks:
      - custom: {name: bump, sql: "select count(*) from (update accounts set balance = 0 returning 1) u", max: 0}
""", 10, "tables[0].checks[0].custom.sql", "cannot be read as one postgres query",
                 id="custom-update-subquery"),
    pytest.param("""
  - name: via_condition
    table: accounts
    checks:
      - validity: {name: seq, condition: "nextval('dq_seq') > 0"}
""", 10, "tables[0].checks[0].validity.condition", "function nextval() is not allowed",
                 id="condition-nextval"),
    pytest.param("""
  - name: via_where
    table: accounts
    where: "id in (select id from accounts for update)"
    checks:
      - row_count: {min: 0}
""", 9, "tables[0].where", "FOR UPDATE / FOR SHARE is not allowed", id="where-for-update"),
]


@pytest.mark.parametrize(("tables", "line", "path", "message"), WRITES_IN_CONFIG)
def test_writes_in_config_are_refused_at_load(  # type: ignore[no-untyped-def]
        accounts: str, pg_url: str, pg_conn, tmp_path: Path, tables: str, line: int, path: str,
        message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A write in custom.sql, a condition or a where is a located config error (exit 2); no change."""
    config = write_config(tmp_path, pg_url, tables)
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--format", "json",
                             "--no-export")
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"{config}:{line} {path}: {message}")
    _unchanged(pg_conn)


@pytest.mark.parametrize(("sql", "says"), [
    pytest.param("with d as (delete from accounts returning 1) select count(*) from d",
                 "read-only transaction", id="delete-cte"),
    pytest.param("select count(*) from accounts where nextval('dq_seq') > 0",
                 "read-only transaction", id="nextval"),
    pytest.param("select count(*) from accounts where id in (select id from accounts for update)",
                 "read-only transaction", id="for-update"),
    pytest.param("update accounts set balance = 0", "read-only transaction", id="update"),
    # PostgreSQL's own grammar refuses DML in FROM: still an error, still nothing changed
    pytest.param("select count(*) from (update accounts set balance = 0 returning 1) u",
                 "syntax error", id="update-subquery"),
])
def test_session_refuses_writes_without_the_loader(  # type: ignore[no-untyped-def]
        accounts: str, pg_database: dict[str, str], pg_conn, sql: str, says: str) -> None:
    """Sent straight to a superuser session, a write still fails in the read-only transaction."""
    settings = WarehouseSettings(url=pg_database["admin_url"], allow_privileged_role=True)
    warehouse = Warehouse("main", settings)
    try:
        with pytest.raises(WarehouseError) as raised:
            warehouse.fetch_all(sa.text(sql))
    finally:
        warehouse.dispose()
    assert says in str(raised.value)
    _unchanged(pg_conn)


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
    # The least-privilege reader (trust auth ignores the password): the live run gets past the
    # role check and runs its checks, so their output is what must not show the secret.
    user = pg_database["user"]
    live = f"postgresql+psycopg://{user}:{SECRET}@127.0.0.1:5432/{pg_database['name']}"
    dead = f"postgresql+psycopg://{user}:{SECRET}@127.0.0.1:{_dead_port()}/nowhere"
    tables = ("\n  - name: accounts\n    checks:\n      - row_count: {min: 1}\n"
              "      - custom: {name: bad, sql: 'select nope', max: 1}\n")
    for url in (live, dead):
        config = write_config(tmp_path, url, tables)
        code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--no-export",
                                 "--format", fmt)
        assert code == 3
        assert SECRET not in out + err
        if url == live:
            assert "refusing to run as role" not in out + err
            if fmt == "json":
                statuses = {r["check"]: r["status"] for r in json.loads(out)["results"]}
                assert statuses == {"row_count": "pass", "bad": "error"}
            else:
                assert "2 checks: 1 passed, 0 failed, 1 error" in out
        code, out, err = run_cli(capsys, "validate", "--config", str(config), "--connect",
                                 "--show-sql")
        assert SECRET not in out + err
    assert code == 3  # the dead warehouse fails validate --connect
    assert f"{user}:***@127.0.0.1" in err
