"""MariaDB adversarial corpus (issue 8; SPEC section 6, "Read-only in depth").

An attacker controls checks.yaml and its ${VAR} values. Each vector is tried two ways: through
the loader as a user runs dqmon (the real CLI, a least-privilege role), and layer by layer
(`Warehouse.fetch_all` as root with `allow_privileged_role: true`, so the server's own
permissions are not what stops it). Classes: (a) a second statement, (b) a harmful single
statement, (c) session state that outlives its check, (d) a URL that overrides the safety
settings, (e) leaks of secrets and row values; plus the role check of layer 1.

Every attack ends with `guard.verify()`: an independent admin connection compares rows, the
table list, global settings, named locks, users, files and its own session with a snapshot
taken before the attack.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from kit import assert_no_secret, attack_tables, log_events, run_cli, run_daemon, write_config

from dqmon import redact
from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.errors import WarehouseError
from dqmon.warehouse import Warehouse

from conftest import need_service

HOST, PORT = "127.0.0.1", 3306
HEX = uuid.uuid4().hex[:8]
DB = f"dq_sec_{HEX}"
LOCK = f"dq_x_{HEX}"
OUT = f"/tmp/dq_sec_{HEX}"  # every file an attack tries to write starts with this
EVIL = f"dq_evil_{HEX}"  # a table, user or database an attack tries to create
SECRET_ROW = f"secret-row-{HEX}@x.io"
QUOTED_ROW = f"o'brien-{HEX}@x.io"
ROWS = [(1, SECRET_ROW, 5), (2, f"b-{HEX}@x.io", 7), (3, QUOTED_ROW, 9)]
# The least-privilege role's real password holds '@', ':' and '/': a URL split on them fails.
LP_PASSWORD = f"Lp@{HEX}:/pw"
OTHER_PASSWORD = f"Pw-{HEX}-x9"

# Layer 2 reads /*! ... */ and /*M! ... */ as comments; MariaDB executes what is inside.
PRIVILEGED = {"file": "FILE", "process": "PROCESS", "super": "SUPER", "reload": "RELOAD",
              "shutdown": "SHUTDOWN", "connection_admin": "CONNECTION ADMIN"}


# --- the server: a database, a victim table, roles ---------------------------------------------

@dataclass
class Server:
    """What the module built on the MariaDB server, and the URLs to reach it."""

    admin_id: int
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (user, password)

    def url(self, key: str, *, password: str | None = None, query: str = "") -> str:
        """Return the pymysql URL of user `key` (root: no password)."""
        if key == "root":
            return f"mysql+pymysql://root@{HOST}:{PORT}/{DB}{query}"
        user, real = self.users[key]
        secret = quote(real if password is None else password, safe="")
        return f"mysql+pymysql://{quote(user, safe='')}:{secret}@{HOST}:{PORT}/{DB}{query}"


def _q(conn: Any, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(statement, args or None)
        return list(cur.fetchall())


@pytest.fixture(scope="module")
def admin() -> Iterator[Any]:
    """An independent root connection that builds the data and judges every attack."""
    try:
        import pymysql
    except ImportError:
        need_service("MariaDB", "pymysql is not installed (the mysql extra)")
    try:
        conn = pymysql.connect(host=HOST, port=PORT, user="root", password="", autocommit=True,
                               connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        need_service("MariaDB", str(exc))
    yield conn
    conn.close()


def _create_user(admin: Any, user: str, password: str, *grants: str) -> None:
    _q(admin, "CREATE USER %s@'%%' IDENTIFIED BY %s", user, password)
    for grant in grants:
        _q(admin, f"GRANT {grant} TO %s@'%%'", user)


@pytest.fixture(scope="module")
def server(admin: Any) -> Iterator[Server]:
    """A database with a victim table, a SELECT-only role and roles with more privileges."""
    _q(admin, f"CREATE DATABASE {DB}")
    _q(admin, f"CREATE TABLE {DB}.victim (id INT PRIMARY KEY, email VARCHAR(64), amount INT)")
    with admin.cursor() as cur:
        cur.executemany(f"INSERT INTO {DB}.victim VALUES (%s, %s, %s)", ROWS)
    on_db = f"SELECT ON {DB}.*"
    made = Server(admin_id=int(_q(admin, "SELECT connection_id()")[0][0]))
    made.users["lp"] = (f"dq_r_{HEX}", LP_PASSWORD)
    made.users["writer"] = (f"dq_w_{HEX}", OTHER_PASSWORD)
    made.users["role_file"] = (f"dq_rf_{HEX}", OTHER_PASSWORD)
    made.users["role_insert"] = (f"dq_ri_{HEX}", OTHER_PASSWORD)
    made.users["at_user"] = (f"dq_at@{HEX}", OTHER_PASSWORD)
    _create_user(admin, *made.users["lp"], on_db)
    _create_user(admin, *made.users["writer"], f"SELECT, INSERT ON {DB}.*")
    _create_user(admin, *made.users["at_user"], on_db, "FILE ON *.*")
    for key, privilege in PRIVILEGED.items():
        made.users[key] = (f"dq_{key[:6]}_{HEX}", OTHER_PASSWORD)
        _create_user(admin, *made.users[key], on_db, f"{privilege} ON *.*")
    for key, grant in (("role_file", "FILE ON *.*"), ("role_insert", f"INSERT ON {DB}.*")):
        role, (user, password) = f"dq_{key}_{HEX}", made.users[key]
        _q(admin, f"CREATE ROLE {role}")
        _q(admin, f"GRANT {grant} TO {role}")
        _create_user(admin, user, password, on_db, role)
        _q(admin, f"SET DEFAULT ROLE {role} FOR %s@'%%'", user)
    yield made
    for user, _ in made.users.values():
        _q(admin, "DROP USER IF EXISTS %s@'%%'", user)
    _q(admin, f"DROP USER IF EXISTS '{EVIL}'@'%'")
    for key in ("role_file", "role_insert"):
        _q(admin, f"DROP ROLE IF EXISTS dq_{key}_{HEX}")
    _q(admin, f"DROP DATABASE IF EXISTS {DB}")
    _q(admin, f"DROP DATABASE IF EXISTS {EVIL}")
    _remove_files()


def _remove_files() -> None:
    for path in Path("/tmp").glob(Path(OUT).name + "*"):
        with contextlib.suppress(OSError):
            path.unlink()


# --- the judge: an independent snapshot before and after ----------------------------------------

def _snapshot(admin: Any, server: Server) -> dict[str, Any]:
    admin.ping(reconnect=False)  # a killed admin session fails here, it is not reopened
    return {
        "rows": _q(admin, f"SELECT id, email, amount FROM {DB}.victim ORDER BY id"),
        "checksum": _q(admin, f"CHECKSUM TABLE {DB}.victim"),
        "tables": _q(admin, "SELECT table_name, table_type FROM information_schema.tables "
                            "WHERE table_schema = %s ORDER BY 1", DB),
        "databases": _q(admin, "SELECT schema_name FROM information_schema.schemata "
                               "WHERE schema_name IN (%s, %s)", DB, EVIL),
        "globals": _q(admin, "SELECT @@global.read_only, @@global.max_connections, "
                             "@@global.sql_mode, @@global.local_infile, "
                             "@@global.max_statement_time, @@global.general_log"),
        "users": _q(admin, "SELECT user, host FROM mysql.user WHERE user LIKE %s ORDER BY 1",
                    f"%{HEX}%"),
        "lp_grants": _q(admin, "SHOW GRANTS FOR %s@'%%'", server.users["lp"][0]),
        "lock": _q(admin, "SELECT is_used_lock(%s)", LOCK),
        "admin_session": _q(admin, "SELECT connection_id()")[0][0] == server.admin_id,
        "files": sorted(str(p) for p in Path("/tmp").glob(Path(OUT).name + "*")),
    }


@dataclass
class Guard:
    """Compares the server with the snapshot taken before the test's attack."""

    admin: Any
    server: Server
    before: dict[str, Any]

    def verify(self) -> None:
        """Assert that nothing the attack could touch has changed."""
        after = _snapshot(self.admin, self.server)
        changed = {k: (self.before[k], after[k]) for k in after if after[k] != self.before[k]}
        assert not changed, f"the attack changed the server (before, after): {changed}"


@pytest.fixture
def guard(admin: Any, server: Server) -> Iterator[Guard]:
    """Snapshot the server before the test; forget registered secrets (each test proves its own)."""
    redact.clear()
    judge = Guard(admin, server, _snapshot(admin, server))
    assert judge.before["lock"] == [(None,)] and judge.before["files"] == []
    yield judge
    _remove_files()  # a vector that got through must not spoil the next test's snapshot
    redact.clear()


@pytest.fixture
def root_wh(server: Server) -> Iterator[Warehouse]:
    """A Warehouse connected as root with allow_privileged_role: only layers 3 and 4 hold."""
    settings = WarehouseSettings(url=server.url("root"), allow_privileged_role=True,
                                 statement_timeout=5)
    warehouse = Warehouse("attack", settings)
    yield warehouse
    warehouse.dispose()


@pytest.fixture
def lp_wh(server: Server) -> Iterator[Warehouse]:
    """A Warehouse connected as the SELECT-only role: layer 1 holds too."""
    warehouse = Warehouse("attack", WarehouseSettings(url=server.url("lp"), statement_timeout=5))
    yield warehouse
    warehouse.dispose()


def _fill(sql: str, server: Server) -> str:
    return (sql.replace("{db}", DB).replace("{lock}", LOCK).replace("{out}", OUT)
            .replace("{evil}", EVIL).replace("{admin_id}", str(server.admin_id)))


# --- the loader: classes (a), (b), (c) through custom.sql, where, condition and ${VAR} -----------

FIELD = {"custom": "custom.sql", "where": "tables[0].where", "condition": "validity.condition",
         "check_where": "completeness.where", "stat_where": "statistic.where"}


def _attack_tables(location: str, sql: str, env: dict[str, str]) -> str:
    """Put `sql` into one table's custom.sql, where or condition, directly or as a ${VAR}."""
    value = json.dumps(sql)  # a JSON string is a YAML double-quoted scalar
    if location.startswith("var_"):
        env["DQ_ATTACK"] = sql
        value, location = '"${DQ_ATTACK}"', location[4:]
    return attack_tables(location, value, most=1000000)


def _loader_refuses(location: str, sql: str, server: Server, guard: Guard, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    env: dict[str, str] = {}
    tables = _attack_tables(location, _fill(sql, server), env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = write_config(tmp_path, json.dumps(server.url("lp")), tables)
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--no-export")
    guard.verify()
    assert code == 2, f"exit {code}, the loader let it through:\n{out}{err}"
    assert "checks.yaml:" in err and FIELD[location.removeprefix("var_")] + ":" in err, err
    assert out == "" and "Traceback" not in err


def _case(*values: Any, case_id: str) -> Any:
    return pytest.param(*values, id=case_id)


SECOND_STATEMENT = [
    pytest.param("custom", "select 1; drop table victim", id="custom-semicolon"),
    pytest.param("custom", "select 1;\ndrop table victim;", id="custom-newline"),
    pytest.param("custom", "select 1 -- x\n; drop table victim", id="custom-dash-comment"),
    pytest.param("custom", "select 1 # x\n; drop table victim", id="custom-hash-comment"),
    pytest.param("custom", "select '\\''; drop table victim; -- '", id="custom-backslash-quote"),
    pytest.param("custom", "select \"a\\\"\"; delete from victim", id="custom-backslash-dquote"),
    _case("custom", "select 1 /*! ; drop table victim */",
           case_id="custom-exec-comment"),
    _case("custom", "select 1 /*M! ; drop table victim */",
           case_id="custom-mariadb-exec-comment"),
    pytest.param("where", "1; drop table victim", id="where-semicolon"),
    pytest.param("where", "email = ';'; delete from victim", id="where-semicolon-after-literal"),
    pytest.param("where", "email = '\\''; drop table victim; -- '", id="where-backslash-quote"),
    pytest.param("where", "1 # x\n); drop table victim; (1", id="where-hash-comment"),
    pytest.param("condition", "amount > 0; drop table victim", id="condition-semicolon"),
    pytest.param("check_where", "1; drop table victim", id="check-where-semicolon"),
    pytest.param("check_where", "1 /*! ; drop table victim */", id="check-where-exec-comment"),
    pytest.param("stat_where", "1 # x\n); delete from victim; (1", id="stat-where-hash-comment"),
    pytest.param("var_check_where", "1); drop table victim; select (1",
                 id="var-check-where-paren-escape"),
    pytest.param("condition", "amount > 0 -- x\n); delete from victim; (1",
                 id="condition-dash-comment"),
    _case("condition", "1 /*! ; drop table victim */",
           case_id="condition-exec-comment"),
    pytest.param("var_custom", "select 1; drop table victim", id="var-custom-semicolon"),
    pytest.param("var_where", "1); drop table victim; select (1", id="var-where-paren-escape"),
    pytest.param("var_condition", "1 -- \n; delete from victim", id="var-condition-comment"),
]


@pytest.mark.parametrize(("location", "sql"), SECOND_STATEMENT)
def test_loader_refuses_second_statement(location: str, sql: str, server: Server, guard: Guard,
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """(a) A second statement anywhere in config SQL is a config error (exit 2) and nothing runs."""
    _loader_refuses(location, sql, server, guard, tmp_path, capsys, monkeypatch)


HARMFUL = [
    pytest.param("custom", "select 1 into outfile '{out}_a'", id="custom-into-outfile"),
    pytest.param("custom", "select email from victim into dumpfile '{out}_b'",
                 id="custom-into-dumpfile"),
    pytest.param("custom", "select length(load_file('/etc/passwd'))", id="custom-load-file"),
    pytest.param("custom", "kill {admin_id}", id="custom-kill-admin"),
    pytest.param("custom", "kill query {admin_id}", id="custom-kill-query"),
    pytest.param("custom", "set global read_only = 1", id="custom-set-global-read-only"),
    pytest.param("custom", "set global max_connections = 7", id="custom-set-max-connections"),
    pytest.param("custom", "flush tables with read lock", id="custom-flush-read-lock"),
    pytest.param("custom", "lock tables victim write", id="custom-lock-tables"),
    pytest.param("custom", "select get_lock('{lock}', 0)", id="custom-get-lock"),
    pytest.param("custom", "select @a := (select count(*) from victim)", id="custom-assign-var"),
    pytest.param("custom", "do sleep(0)", id="custom-do"),
    pytest.param("custom", "handler victim open", id="custom-handler"),
    pytest.param("custom", "select last_insert_id(5)", id="custom-last-insert-id"),
    pytest.param("custom", "select benchmark(100000000, md5('x'))", id="custom-benchmark"),
    pytest.param("custom", "select count(*) from victim for update", id="custom-for-update"),
    pytest.param("custom", "select count(*) from victim lock in share mode",
                 id="custom-lock-in-share-mode"),
    pytest.param("custom", "select count(*) from victim into @x", id="custom-into-var"),
    pytest.param("custom", "delete from victim", id="custom-delete"),
    pytest.param("custom", "call mysql.AddGeometryColumn('', '{db}', 'victim', 'g', 0)",
                 id="custom-call-procedure"),
    pytest.param("custom", "load data local infile '/etc/passwd' into table victim",
                 id="custom-load-data"),
    pytest.param("custom", "select 1 union select length(load_file('/etc/passwd'))",
                 id="custom-union-load-file"),
    pytest.param("custom", "select count(*) from victim where (select release_all_locks()) = 0",
                 id="custom-subquery-release-locks"),
    _case("custom", "select count(*) from victim /*! into outfile '{out}_c' */",
           case_id="custom-exec-comment-outfile"),
    _case("custom",
           "select count(*) from victim where 0 /*! or load_file('/etc/passwd') is not null */",
           case_id="custom-exec-comment-load-file"),
    _case("custom", "select count(*) from victim /*! for update */",
           case_id="custom-exec-comment-for-update"),
    pytest.param("where", "get_lock('{lock}', 0) = 1", id="where-get-lock"),
    pytest.param("where", "id in (select length(load_file('/etc/passwd')))", id="where-load-file"),
    pytest.param("where", "(@a := 1) = 1", id="where-assign-var"),
    pytest.param("where", "benchmark(100000000, md5(email)) = 0", id="where-benchmark"),
    _case("where", "1 /*M! and get_lock('{lock}', 0) */",
           case_id="where-exec-comment-get-lock"),
    pytest.param("condition", "last_insert_id(5) > 0", id="condition-last-insert-id"),
    pytest.param("condition", "load_file('/etc/passwd') is null", id="condition-load-file"),
    _case("condition", "0 /*! or load_file('/etc/passwd') like 'root%' */",
           case_id="condition-exec-comment-load-file"),
    pytest.param("var_custom", "select length(load_file('/etc/passwd'))",
                 id="var-custom-load-file"),
    pytest.param("var_where", "get_lock('{lock}', 0) = 1", id="var-where-get-lock"),
    pytest.param("var_condition", "(select get_lock('{lock}', 0)) = 1",
                 id="var-condition-get-lock"),
]


@pytest.mark.parametrize(("location", "sql"), HARMFUL)
def test_loader_refuses_harmful_statement(location: str, sql: str, server: Server, guard: Guard,
                                          tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """(b) Writes, files, locks, kills, variables and side-effect functions are refused at load."""
    _loader_refuses(location, sql, server, guard, tmp_path, capsys, monkeypatch)


SESSION_STATE = [
    pytest.param("custom", "set session transaction read write", id="custom-tx-read-write"),
    pytest.param("custom", "set autocommit = 1", id="custom-autocommit"),
    pytest.param("custom", "set @x = 1", id="custom-user-variable"),
    pytest.param("custom", "set session sql_mode = 'NO_BACKSLASH_ESCAPES'", id="custom-sql-mode"),
    pytest.param("custom", "create temporary table t (a int)", id="custom-temporary-table"),
    pytest.param("custom", "prepare s from 'delete from victim'", id="custom-prepare"),
    pytest.param("custom", "commit", id="custom-commit"),
    pytest.param("custom", "set statement tx_read_only = 0 for select 1",
                 id="custom-set-statement"),
    pytest.param("var_custom", "set session max_statement_time = 0", id="var-custom-timeout"),
    pytest.param("where", "(select get_lock('{lock}', 0)) = 1", id="where-lock-outliving"),
]


@pytest.mark.parametrize(("location", "sql"), SESSION_STATE)
def test_loader_refuses_session_state(location: str, sql: str, server: Server, guard: Guard,
                                      tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """(c) Statements that would change the session for later checks are refused at load."""
    _loader_refuses(location, sql, server, guard, tmp_path, capsys, monkeypatch)


# --- layers 3 and 4 alone: root with allow_privileged_role, SQL sent straight to fetch_all -------

WIRE = [
    pytest.param("select 1; drop table victim", id="semicolon"),
    pytest.param("select 1;drop table victim;", id="no-space"),
    pytest.param("select 1; delete from victim", id="delete"),
    pytest.param("select 1 -- x\n; drop table victim", id="dash-comment"),
    pytest.param("select 1 # x\n; drop table victim", id="hash-comment"),
    pytest.param("select '\\''; drop table victim; -- '", id="backslash-quote"),
    pytest.param("select 1 /*! ; drop table victim */", id="exec-comment"),
    pytest.param("select 1 /*M! ; drop table victim */", id="mariadb-exec-comment"),
    pytest.param("select 1; create table {evil} (a int)", id="create"),
]


@pytest.mark.parametrize("sql", WIRE)
def test_wire_sends_one_statement(sql: str, server: Server, guard: Guard,
                                  root_wh: Warehouse) -> None:
    """(a) pymysql has no multi-statement flag: the server refuses a second statement."""
    with pytest.raises(WarehouseError, match="1064"):
        root_wh.fetch_all(sa.text(_fill(sql, server)))
    guard.verify()


WRITES = [
    pytest.param("delete from victim", id="delete"),
    pytest.param("insert into victim values (99, 'x', 1)", id="insert"),
    pytest.param("update victim set amount = 0", id="update"),
    pytest.param("replace into victim values (1, 'x', 1)", id="replace"),
    pytest.param("insert into victim select id + 100, email, amount from victim",
                 id="insert-select"),
    pytest.param("delete /*! from victim */", id="exec-comment-delete"),
    pytest.param("drop table victim", id="drop"),
    pytest.param("truncate table victim", id="truncate"),
    pytest.param("create table {evil} (a int)", id="create-table"),
    pytest.param("alter table victim add column z int", id="alter"),
    pytest.param("rename table victim to {evil}", id="rename"),
    pytest.param("create index ix on victim (amount)", id="create-index"),
    pytest.param("create database {evil}", id="create-database"),
    pytest.param("create user '{evil}'@'%'", id="create-user"),
    pytest.param("grant insert on {db}.* to 'dq_r_" + HEX + "'@'%'", id="grant"),
    pytest.param("set statement tx_read_only = 0 for delete from victim", id="set-statement"),
    pytest.param("call mysql.AddGeometryColumn('', '{db}', 'victim', 'g', 0)",
                 id="procedure-alter"),
    pytest.param("prepare s from 'delete from victim'", id="prepare-delete"),
    pytest.param("optimize table victim", id="optimize"),
]


@pytest.mark.parametrize("sql", WRITES)
def test_read_only_transaction_stops_writes(sql: str, server: Server, guard: Guard,
                                            root_wh: Warehouse) -> None:
    """(b) START TRANSACTION READ ONLY alone stops every write to data, schema and grants."""
    with pytest.raises(WarehouseError, match="READ ONLY"):
        root_wh.fetch_all(sa.text(_fill(sql, server)))
    guard.verify()


LEAST_PRIVILEGE = [
    pytest.param("kill {admin_id}", id="kill-admin"),
    pytest.param("set global read_only = 1", id="set-global-read-only"),
    pytest.param("set global max_connections = 7", id="set-max-connections"),
    pytest.param("flush tables with read lock", id="flush-read-lock"),
    pytest.param("lock tables victim write", id="lock-tables"),
    pytest.param("select 1 into outfile '{out}_lp'", id="into-outfile"),
    pytest.param("select email from victim limit 1 into dumpfile '{out}_lp2'", id="into-dumpfile"),
    pytest.param("select count(*) from victim /*! into outfile '{out}_lp3' */",
                 id="exec-comment-outfile"),
]


@pytest.mark.parametrize("sql", LEAST_PRIVILEGE)
def test_least_privilege_role_stops_server_changes(sql: str, server: Server, guard: Guard,
                                                   lp_wh: Warehouse) -> None:
    """(b) The SELECT-only role alone cannot kill, set globals, lock or write files."""
    with pytest.raises(WarehouseError, match="denied|not owner|privilege"):
        lp_wh.fetch_all(sa.text(_fill(sql, server)))
    guard.verify()


def test_least_privilege_role_reads_no_file(guard: Guard, lp_wh: Warehouse) -> None:
    """(b) load_file() gives NULL to a role without FILE, even through an executable comment."""
    assert lp_wh.fetch_all(sa.text("select load_file('/etc/passwd')")) == [(None,)]
    query = "select count(*) from victim where 0 /*! or load_file('/etc/passwd') is not null */"
    assert lp_wh.fetch_all(sa.text(query)) == [(0,)]
    guard.verify()


# --- (c) session state does not outlive its check ----------------------------------------------

def _delete_still_refused(warehouse: Warehouse, admin: Any) -> None:
    with pytest.raises(WarehouseError, match="READ ONLY"):
        warehouse.fetch_all(sa.text("delete from victim"))


def _lock_free(warehouse: Warehouse, admin: Any) -> None:
    assert _q(admin, "SELECT is_used_lock(%s)", LOCK) == [(None,)]


def _variable_gone(warehouse: Warehouse, admin: Any) -> None:
    assert warehouse.fetch_all(sa.text("select @x")) == [(None,)]


def _sql_mode_reset(warehouse: Warehouse, admin: Any) -> None:
    (mode,), = warehouse.fetch_all(sa.text("select @@session.sql_mode"))
    assert "ANSI_QUOTES" not in mode and "NO_BACKSLASH_ESCAPES" not in mode


def _timeout_reset(warehouse: Warehouse, admin: Any) -> None:
    assert warehouse.fetch_all(sa.text("select @@session.max_statement_time")) == [(5.0,)]


def _fails(query: str) -> Callable[[Warehouse, Any], None]:
    def probe(warehouse: Warehouse, admin: Any) -> None:
        with pytest.raises(WarehouseError):
            warehouse.fetch_all(sa.text(query))
    return probe


def _table_lock_free(warehouse: Warehouse, admin: Any) -> None:
    _q(admin, "SET SESSION lock_wait_timeout = 2")
    _q(admin, f"LOCK TABLES {DB}.victim WRITE")  # waits, then fails, if a read lock is left
    _q(admin, "UNLOCK TABLES")


STATE = [
    pytest.param("set session transaction read write", _delete_still_refused, id="tx-read-write"),
    pytest.param("set autocommit = 1", _delete_still_refused, id="autocommit"),
    pytest.param("commit", _delete_still_refused, id="commit"),
    pytest.param("select get_lock('{lock}', 0)", _lock_free, id="get-lock"),
    pytest.param("set @x = 1", _variable_gone, id="user-variable"),
    pytest.param("set session sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES'", _sql_mode_reset,
                 id="sql-mode"),
    pytest.param("set session max_statement_time = 0", _timeout_reset, id="statement-timeout"),
    pytest.param("create temporary table tmp_x (a int)", _fails("select * from tmp_x"),
                 id="temporary-table"),
    pytest.param("prepare s from 'select 1'", _fails("execute s"), id="prepared-statement"),
    pytest.param("handler victim open", _fails("handler victim read first"), id="handler"),
    pytest.param("lock tables victim read", _table_lock_free, id="lock-tables"),
]


@pytest.mark.parametrize(("sql", "probe"), STATE)
def test_session_state_does_not_outlive_its_check(sql: str, probe: Callable[[Warehouse, Any], None],
                                                  server: Server, guard: Guard, admin: Any,
                                                  root_wh: Warehouse) -> None:
    """(c) State set by one fetch (sent straight, as root) is gone by the next: NullPool."""
    with contextlib.suppress(WarehouseError):  # most of these "return no rows"; that is fine
        root_wh.fetch_all(sa.text(_fill(sql, server)))
    probe(root_wh, admin)
    guard.verify()


def test_lock_taken_inside_a_check_is_released(server: Server, guard: Guard, admin: Any,
                                               root_wh: Warehouse) -> None:
    """(c) get_lock() does succeed inside a fetch, and the lock is free once fetch_all returns."""
    assert root_wh.fetch_all(sa.text(f"select get_lock('{LOCK}', 0)")) == [(1,)]
    assert _q(admin, "SELECT is_used_lock(%s)", LOCK) == [(None,)]
    guard.verify()


# --- (d) the URL cannot switch the safety settings off -----------------------------------------

BAD_URLS = [
    pytest.param("?init_command=SET+SESSION+TRANSACTION+READ+WRITE", id="init-command"),
    pytest.param("?client_flag=65536", id="client-flag-multi-statements"),
    pytest.param("?Client_Flag=65536", id="client-flag-other-case"),
    pytest.param("?local_infile=1", id="local-infile"),
    pytest.param("?autocommit=true", id="autocommit"),
    pytest.param("?read_default_file=/etc/mysql/my.cnf", id="read-default-file"),
    pytest.param("?read_default_group=client", id="read-default-group"),
    pytest.param("?sql_mode=ANSI_QUOTES", id="sql-mode"),
    pytest.param("?defer_connect=true", id="defer-connect"),
    pytest.param("?charset=utf8mb4&foo=bar", id="unknown-param"),
    pytest.param("mysql+mysqldb://", id="mysqldb-driver"),
    pytest.param("mysql+mysqlconnector://", id="mysqlconnector-driver"),
    pytest.param("mariadb+mariadbconnector://", id="mariadbconnector-driver"),
]


def _url_with(server: Server, variant: str) -> str:
    if variant.startswith("?"):
        return server.url("lp", query=variant)
    return server.url("lp").replace("mysql+pymysql://", variant)


@pytest.mark.parametrize("variant", BAD_URLS)
def test_url_cannot_override_safety(variant: str, server: Server, guard: Guard, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """(d) A URL parameter or driver that could undo the read-only session is a config error."""
    config = write_config(tmp_path, json.dumps(_url_with(server, variant)),
                          "  - name: victim\n    checks:\n      - row_count: {min: 0}\n")
    for args in (("validate", "--connect"), ("run-once", "--no-export")):
        code, out, err = run_cli(capsys, args[0], "--config", str(config), *args[1:])
        assert code == 2, out + err
        assert "warehouses.main.url:" in err and "Traceback" not in err
        assert_no_secret(LP_PASSWORD, out, err)
    guard.verify()


VAR_URLS = [
    pytest.param("mysql+pymysql://{user}:{pw}@127.0.0.1:3306/{db}?charset=${DQ_V}",
                 "utf8mb4&client_flag=65536", id="var-in-query"),
    pytest.param("mysql+pymysql://{user}:{pw}@${DQ_V}/{db}",
                 "127.0.0.1:3306/{db}?init_command=SET+autocommit%3D1#", id="var-in-host"),
    pytest.param("mysql+pymysql://{user}:{pw}@127.0.0.1:3306/${DQ_V}",
                 "{db}?local_infile=1", id="var-in-database"),
    pytest.param("${DQ_V}", "mysql+mysqldb://{user}:{pw}@127.0.0.1:3306/{db}",
                 id="var-whole-url"),
    pytest.param("mysql+pymysql://{user}:{pw}@127.0.0.1:3306/{db}${DQ_V}",
                 "?client_flag=65536", id="var-appended"),
]


@pytest.mark.parametrize(("template", "value"), VAR_URLS)
def test_var_cannot_add_url_parameters(template: str, value: str, server: Server, guard: Guard,
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """(d) A ${VAR} outside the credentials is checked after expansion: no parameter slips in."""
    user, password = server.users["lp"]
    fill = {"{user}": user, "{pw}": quote(password, safe=""), "{db}": DB}
    for key, text in fill.items():
        template, value = template.replace(key, text), value.replace(key, text)
    monkeypatch.setenv("DQ_V", value)
    config = write_config(tmp_path, json.dumps(template),
                          "  - name: victim\n    checks:\n      - row_count: {min: 0}\n")
    code, out, err = run_cli(capsys, "validate", "--connect", "--config", str(config))
    assert code == 2 and "warehouses.main.url:" in err and "Traceback" not in err, out + err
    assert_no_secret(password, out, err)
    guard.verify()


def test_var_in_password_cannot_split_the_url(server: Server, guard: Guard, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """(d) A ${VAR} password shaped like `x@host/db?client_flag=...` stays one (wrong) password."""
    injected = f"Nope{HEX}@127.0.0.1:3306/{DB}?client_flag=65536&init_command=COMMIT#"
    monkeypatch.setenv("DQ_PW", injected)
    user = server.users["lp"][0]
    url = f"mysql+pymysql://{user}:${{DQ_PW}}@127.0.0.1:3306/{DB}"
    config = write_config(tmp_path, json.dumps(url),
                          "  - name: victim\n    checks:\n      - row_count: {min: 0}\n")
    code, out, err = run_cli(capsys, "validate", "--connect", "--config", str(config))
    assert code == 3 and "Access denied" in err and "not allowed" not in err, out + err
    assert_no_secret(injected, out, err)
    guard.verify()


# --- (e) secrets and row values do not leak ----------------------------------------------------

ONE_CHECK = "  - name: victim\n    checks:\n      - row_count: {min: 3, max: 3}\n"


def _url_forms(server: Server, monkeypatch: pytest.MonkeyPatch, form: str) -> str:
    user = server.users["lp"][0]
    if form == "query-password":
        return f"mysql+pymysql://{user}@{HOST}:{PORT}/{DB}?password={quote(LP_PASSWORD, safe='')}"
    if form == "userinfo-password":
        return server.url("lp")
    monkeypatch.setenv("DQ_PW", LP_PASSWORD)  # '@', ':' and '/' as they are, not encoded
    return f"mysql+pymysql://{user}:${{DQ_PW}}@{HOST}:{PORT}/{DB}"


@pytest.mark.parametrize("form", ["query-password", "userinfo-password", "var-password"])
def test_password_connects_and_is_never_printed(form: str, server: Server, guard: Guard,
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """(e) The real password (with '@', ':', '/') connects and no output ever shows it."""
    config = write_config(tmp_path, json.dumps(_url_forms(server, monkeypatch, form)), ONE_CHECK)
    outputs = []
    for args in (("validate", "--connect", "--show-sql"), ("run-once", "--no-export"),
                 ("run-once", "--no-export", "--format", "json")):
        code, out, err = run_cli(capsys, args[0], "--config", str(config), *args[1:])
        assert code == 0, out + err
        outputs += [out, err]
    assert "warning" not in outputs[1]  # the SELECT-only role: no "can write" warning
    assert json.loads(outputs[4])["results"][0]["value"] == 3
    assert_no_secret(LP_PASSWORD, *outputs)
    guard.verify()


WRONG = [
    pytest.param(f"mysql+pymysql://dq_r_{HEX}:${{DQ_PW}}@{HOST}:{PORT}/{DB}",
                 f"Wrong@{HEX}:/pw", "Access denied", id="var-wrong-password"),
    pytest.param(f"mysql+pymysql://dq_r_{HEX}@{HOST}:{PORT}/{DB}?password=${{DQ_PW}}",
                 f"Wrong{HEX}pw", "Access denied", id="query-wrong-password"),
    pytest.param(f"mysql+pymysql://dq_r_{HEX}:${{DQ_PW}}@{HOST}:1/{DB}",
                 LP_PASSWORD, "Can't connect", id="unreachable-port"),
    pytest.param(f"mysql+pymysql://dq_r_{HEX}:${{DQ_PW}}@{HOST}:{PORT}/nodb_{HEX}",
                 LP_PASSWORD, "denied", id="unknown-database"),
]


@pytest.mark.parametrize(("url", "secret", "says"), WRONG)
def test_connection_errors_hide_the_password(url: str, secret: str, says: str, guard: Guard,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """(e) A refused connection is exit 3 with the server's reason and the password masked."""
    monkeypatch.setenv("DQ_PW", secret)
    config = write_config(tmp_path, json.dumps(url), ONE_CHECK)
    code, out, err = run_cli(capsys, "validate", "--connect", "--config", str(config))
    assert code == 3 and says in err, out + err
    assert "***" in err or "%2A%2A%2A" in err, err  # the masked URL
    code, out2, err2 = run_cli(capsys, "run-once", "--no-export", "--format", "json",
                               "--config", str(config))
    assert code == 3 and says in out2, out2 + err2
    assert_no_secret(secret, out, err, out2, err2)
    guard.verify()


PLAIN_SECRET = f"Sec@{HEX}:/x7"
BACKSLASH_SECRET = f"Sec\\{HEX}\\x7"
_T = "  - name: victim\n"
REUSE = [  # (id, field path in the message, tables YAML, warehouse YAML) with ${DQ_PW} in it
    ("check-name", "custom.name", _T + "    checks:\n      - custom: {name: \"${DQ_PW}\", sql: \"select 1\", max: 1}\n", ""),
    ("sql-comment", "custom.sql", _T + "    checks:\n      - custom: {name: c, sql: \"select 1 /* ${DQ_PW} */\", max: 1}\n", ""),
    ("sql-literal", "custom.sql", _T + "    checks:\n      - custom: {name: c, sql: \"select '${DQ_PW}' = 'x'\", max: 1}\n", ""),
    ("where", "tables[0].where", _T + "    where: \"email <> '${DQ_PW}'\"\n    checks:\n      - row_count: {min: 0}\n", ""),
    ("condition", "validity.condition", _T + "    checks:\n      - validity: {name: v, condition: \"email <> '${DQ_PW}' -- x\"}\n", ""),
    ("table", "tables[0].table", _T + "    table: \"${DQ_PW}\"\n    checks:\n      - row_count: {min: 0}\n", ""),
    ("in-list", "validity.in[0]", _T + "    checks:\n      - validity: {name: v, column: email, in: [\"${DQ_PW}\"]}\n", ""),
    ("schedule", "tables[0].schedule", _T + "    schedule: \"${DQ_PW}\"\n    checks:\n      - row_count: {min: 0}\n", ""),
    ("max-age", "freshness.max_age", _T + "    checks:\n      - freshness: {column: email, max_age: \"${DQ_PW}\"}\n", ""),
    ("statement-timeout", "main.statement_timeout", _T + "    checks:\n      - row_count: {min: 0}\n", "    statement_timeout: \"${DQ_PW}\"\n"),
    ("timezone", "main.timezone", _T + "    checks:\n      - row_count: {min: 0}\n", "    timezone: \"${DQ_PW}\"\n"),
]
REPR_FIELDS = {"schedule", "max-age", "statement-timeout", "timezone"}


def _reuse_cases() -> list[Any]:
    cases = []
    for case_id, path, tables, extra in REUSE:
        for label, secret in (("plain", PLAIN_SECRET), ("backslash", BACKSLASH_SECRET)):
            name = f"{case_id}-{label}"
            if label == "backslash" and case_id in REPR_FIELDS:
                cases.append(_case(path, tables, extra, secret, case_id=name))
            else:
                cases.append(pytest.param(path, tables, extra, secret, id=name))
    return cases


@pytest.mark.parametrize(("path", "tables", "warehouse_extra", "secret"), _reuse_cases())
def test_secret_reused_elsewhere_is_refused_unprinted(path: str, tables: str,
                                                      warehouse_extra: str, secret: str,
                                                      guard: Guard, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """(e) A URL-credential ${VAR} reused in another field is a config error that hides it."""
    monkeypatch.setenv("DQ_PW", secret)
    url = f"mysql+pymysql://dq_r_{HEX}:${{DQ_PW}}@{HOST}:{PORT}/{DB}"
    config = write_config(tmp_path, json.dumps(url), tables, warehouse_extra=warehouse_extra)
    for command in ("validate", "run-once"):
        code, out, err = run_cli(capsys, command, "--config", str(config))
        assert code == 2 and "holds the value of a secret" in err, out + err
        assert f"{path}: holds the value of a secret" in err, err
        assert_no_secret(secret, out, err)
    guard.verify()


ROW_ERRORS = {  # table name -> YAML of a table whose check's server error quotes a row value
    "leak_condition": "validity: {name: v, condition: \"extractvalue(1, concat('~', (select max(email) from victim))) is null\"}",
    "leak_custom": "custom: {name: c, sql: \"select count(*) from victim where updatexml(1, concat('~', (select max(email) from victim)), 1) is null\", max: 9}",
    "leak_apostrophe": "validity: {name: v, condition: \"extractvalue(1, concat('~', (select email from victim where id = 3))) is null\"}",
    "leak_quote_in": "validity: {name: v, condition: \"extractvalue(1, concat('~''', (select max(email) from victim))) is null\"}",
    "leak_both_quotes": "validity: {name: v, condition: \"extractvalue(1, concat('~\\\"''', (select max(email) from victim))) is null\"}",
}


def _row_error_config(tmp_path: Path) -> Path:
    tables = "".join(f"  - name: {name}\n    table: victim\n    schedule: every 1s\n"
                     f"    checks:\n      - {check}\n" for name, check in ROW_ERRORS.items())
    url = f"mysql+pymysql://dq_r_{HEX}:${{DQ_PW}}@{HOST}:{PORT}/{DB}"
    return write_config(tmp_path, json.dumps(url), tables)


def test_row_values_in_server_errors_reach_stdout_only(guard: Guard, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """(e) run-once may print a server error quoting a row; the daemon's JSON logs never do."""
    monkeypatch.setenv("DQ_PW", LP_PASSWORD)
    config = _row_error_config(tmp_path)
    code, out, _ = run_cli(capsys, "run-once", "--no-export", "--config", str(config))
    assert code == 3 and SECRET_ROW in out and "XPATH syntax error" in out  # the vector is real
    daemon = run_daemon(config, ROW_ERRORS, env={"DQ_PW": LP_PASSWORD}, wait=20, stop=30)
    stderr = daemon.stderr
    assert daemon.code == 0, stderr
    checked = [e for e in log_events(stderr) if e.get("event") == "table checked"]
    assert {e["table"] for e in checked} == set(ROW_ERRORS), stderr
    assert all(e["errors"] == 1 and e["error"] for e in checked), stderr
    for value in (SECRET_ROW, QUOTED_ROW, "secret-row", "brien", HEX + "@x.io"):
        assert value not in stderr, f"row value {value!r} in the daemon's log:\n{stderr}"
    assert_no_secret(LP_PASSWORD, stderr)
    guard.verify()


# --- layer 1: the role ------------------------------------------------------------------------

ROLES = [
    pytest.param("root", "", 3, ["refusing", "SUPER", "FILE", "PROCESS", "SHUTDOWN"],
                 id="root-refused"),
    pytest.param("root", "    allow_privileged_role: true\n", 0, ["can write"],
                 id="root-allowed"),
    pytest.param("lp", "", 0, [], id="select-only-no-warning"),
    pytest.param("writer", "", 0, ["warning", "can write"], id="insert-warns"),
    *[pytest.param(key, "", 3, ["refusing", privilege], id=f"{key}-refused")
      for key, privilege in PRIVILEGED.items()],
    _case("role_file", "", 3, ["refusing", "FILE"], case_id="file-via-default-role"),
    _case("role_insert", "", 0, ["can write"], case_id="insert-via-default-role-warns"),
    _case("at_user", "", 3, ["refusing", "FILE"], case_id="file-user-name-with-at"),
]


@pytest.mark.parametrize(("user", "extra", "code", "says"), ROLES)
def test_validate_connect_vets_the_role(user: str, extra: str, code: int, says: list[str],
                                        server: Server, guard: Guard, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Layer 1: a role that can write files, kill, reload or shut down is refused unless allowed."""
    config = write_config(tmp_path, json.dumps(server.url(user)), ONE_CHECK,
                          warehouse_extra=extra)
    got, out, err = run_cli(capsys, "validate", "--connect", "--config", str(config))
    assert got == code, out + err
    for word in says:
        assert word in err, err
    if not says:
        assert "warning" not in err and "refusing" not in err, err
    if user != "root":
        assert_no_secret(server.users[user][1], out, err)
    guard.verify()


# --- chains: the gaps above, end to end --------------------------------------------------------

CHAINS = [
    _case("root", "    allow_privileged_role: true\n",
           "select count(*) from victim /*! into outfile '{out}_root' */", case_id="root-allowed-outfile"),
    _case("role_file", "",
           "select count(*) from victim /*! into outfile '{out}_role' */", case_id="role-file-outfile"),
    _case("role_file", "",
           "select count(*) from victim where 0 /*! or load_file('/etc/passwd') like 'root:%' */",
           case_id="role-file-reads-passwd"),
]


@pytest.mark.parametrize(("user", "extra", "sql"), CHAINS)
def test_no_config_writes_or_reads_server_files(user: str, extra: str, sql: str, server: Server,
                                                guard: Guard, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A custom check can neither write a server file nor read one, whatever role runs it."""
    check = f"      - custom: {{name: c, sql: {json.dumps(_fill(sql, server))}, max: 0}}\n"
    config = write_config(tmp_path, json.dumps(server.url(user)),
                          "  - name: victim\n    checks:\n" + check, warehouse_extra=extra)
    code, out, err = run_cli(capsys, "run-once", "--no-export", "--format", "json",
                             "--config", str(config))
    guard.verify()  # no file written
    assert code == 2, f"exit {code}: the check ran:\n{out}{err}"
