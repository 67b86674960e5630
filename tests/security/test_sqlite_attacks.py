"""SQLite adversarial corpus (SPEC §6 "Read-only in depth", issue 8).

Each attack is written as an attacker would write checks.yaml (custom.sql, where, validity
condition, ${VAR}, the URL) and run through the real CLI, or sent straight at
`Warehouse.fetch_all` past the parser. After every attack a fresh sqlite3 connection opened by the
test once dqmon has let go of the file checks that the victim's rows, schema and pragmas, the
file's bytes and mtime, the database directory and the files the attack tried to create are
exactly as before. Classes: (a) a second statement, (b) a harmful single statement, (c) session
state that outlives a check, (d) a URL that overrides the safety settings, (e) leaks of secrets
and row values (the daemon's logs are read from a real `dqmon run` subprocess).
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import kit
import pytest
import sqlalchemy as sa
from kit import ROWS, Loader, opened, refused_by_engine

# --- the victim database and what must never change --------------------------------------------

@dataclass
class Victim(kit.FileVictim):
    """A SQLite file alone in its directory, plus a directory for files attacks try to create."""

    scheme = "sqlite"

    def state(self) -> dict[str, Any]:
        """Read what an attack must not change, through a fresh read-only connection."""
        conn = sqlite3.connect(f"file:{quote(str(self.db))}?mode=ro", uri=True)
        try:
            rows = conn.execute("select id, email from victim order by id").fetchall()
            schema = conn.execute("select type, name, tbl_name, sql from sqlite_master "
                                  "order by type, name").fetchall()
            pragmas = {name: conn.execute(f"pragma {name}").fetchone()[0]
                       for name in ("user_version", "application_id", "schema_version",
                                    "journal_mode", "page_count", "freelist_count")}
        finally:
            conn.close()
        return {"rows": rows, "schema": schema, "pragmas": pragmas, **super().state()}


def make_victim(root: Path) -> Victim:
    """Build victim.db (a table, an index, four rows) with an old mtime; record its state."""
    (root / "db").mkdir(parents=True)
    (root / "out").mkdir()
    db = root / "db" / "victim.db"
    conn = sqlite3.connect(db)
    conn.execute("pragma synchronous = off")  # a throwaway file: no fsync, faster tests
    conn.execute("create table victim (id integer primary key, email text not null)")
    conn.execute("create index victim_email on victim (email)")
    conn.executemany("insert into victim values (?, ?)", ROWS)
    conn.commit()
    conn.close()
    victim = Victim(root=root, db=db, out=root / "out")
    victim.settle()
    return victim


@pytest.fixture
def victim(tmp_path: Path) -> Victim:
    """A fresh victim database for one test."""
    return make_victim(tmp_path)


loader = kit.loader  # the fixture: the real CLI on checks.yaml next to this test's victim


# --- (a) a second statement ------------------------------------------------------------------

SECOND_STATEMENT_CONFIG = kit.second_statement_config(
    pytest.param("custom", "select 1; ATTACH '{out}/second.db' AS second", {},
                 id="custom-second-attach"))


@pytest.mark.parametrize(("where", "text", "env"), SECOND_STATEMENT_CONFIG)
def test_second_statement_refused_at_load(where: str, text: str, env: dict[str, str],
                                          loader: Loader) -> None:
    """A config that smuggles a second statement is a config error; the SQLite file is intact."""
    loader.refuses(where, text, env)


SECOND_STATEMENT_WIRE = kit.second_statement_wire(
    pytest.param("select 1; ATTACH '{out}/second.db' AS second", id="second-attach"),
    pytest.param("select 1; PRAGMA query_only = 0; delete from victim", id="three-statements"),
)


@pytest.mark.parametrize("sql", SECOND_STATEMENT_WIRE)
def test_second_statement_refused_by_engine(sql: str, victim: Victim) -> None:
    """Past the parser, sqlite3 runs one statement per call: the second one never runs."""
    refused_by_engine(victim.url, victim.fill(sql))
    victim.assert_untouched()


@pytest.mark.parametrize("script", [
    pytest.param("select 1; drop table victim", id="drop"),
    pytest.param("PRAGMA query_only = 0; delete from victim", id="query-only-off-then-delete"),
    pytest.param("ATTACH '{out}/script.db' AS s; create table s.t (a)", id="attach-then-create"),
    pytest.param("VACUUM INTO '{out}/script-copy.db'", id="vacuum-into"),
    pytest.param("create temp table t (a); insert into t values (1)", id="temp-table"),
])
def test_session_layer_alone_stops_a_script(script: str, victim: Victim) -> None:
    """Even executescript() on dqmon's own pooled connection (no one-statement rule) cannot write."""
    with opened(victim.url) as target:
        raw = target.engine().raw_connection()
        try:
            with pytest.raises(sqlite3.DatabaseError):
                raw.dbapi_connection.executescript(victim.fill(script))
        finally:
            raw.close()
    victim.assert_untouched()


# --- (b) a harmful single statement ------------------------------------------------------------

HARMFUL = [  # (sql, file the attack tries to create, relative to out/)
    pytest.param("ATTACH '{out}/attached.db' AS x", "attached.db", id="attach-new-file"),
    pytest.param("ATTACH '{db}' AS again", None, id="attach-itself"),
    pytest.param("VACUUM INTO '{out}/copy.db'", "copy.db", id="vacuum-into"),
    pytest.param("VACUUM", None, id="vacuum"),
    pytest.param("PRAGMA query_only = 0", None, id="pragma-query-only-off"),
    pytest.param("PRAGMA writable_schema = 1", None, id="pragma-writable-schema"),
    pytest.param("PRAGMA journal_mode = WAL", None, id="pragma-journal-wal"),
    pytest.param("PRAGMA user_version = 7", None, id="pragma-user-version"),
    pytest.param("select load_extension('{out}/evil.so')", None, id="load-extension"),
    pytest.param("select writefile('{out}/written.txt', 'x')", "written.txt", id="writefile"),
    pytest.param("select readfile('/etc/passwd')", None, id="readfile"),
    pytest.param("select fts3_tokenizer('simple')", None, id="fts3-tokenizer"),
    pytest.param("delete from victim", None, id="delete"),
    pytest.param("delete from victim returning id", None, id="delete-returning"),
    pytest.param("insert into victim values (9, 'x')", None, id="insert"),
    pytest.param("insert into victim select id + 10, email from victim returning id", None,
                 id="insert-select-returning"),
    pytest.param("update victim set email = 'x' returning id", None, id="update-returning"),
    pytest.param("replace into victim values (1, 'x')", None, id="replace"),
    pytest.param("create table dq_new (a)", None, id="create-table"),
    pytest.param("create table dq_new as select * from victim", None, id="create-table-as"),
    pytest.param("create trigger dq_trg after insert on victim begin delete from victim; end",
                 None, id="create-trigger"),
    pytest.param("alter table victim add column z", None, id="alter-table"),
    pytest.param("drop table victim", None, id="drop-table"),
    pytest.param("with d as (delete from victim returning 1) select count(*) from d", None,
                 id="cte-delete"),
    pytest.param("REINDEX", None, id="reindex"),
    pytest.param("ANALYZE", None, id="analyze"),
    pytest.param("BEGIN IMMEDIATE", None, id="begin-immediate"),
    pytest.param("DETACH main", None, id="detach-main"),
]


@pytest.mark.parametrize(("sql", "target"), HARMFUL)
def test_harmful_statement_refused_at_load(sql: str, target: str | None,
                                           loader: Loader) -> None:
    """A harmful custom.sql is a config error; nothing is written, no file is created."""
    loader.refuses("custom", sql)
    assert target is None or not (loader.victim.out / target).exists()


@pytest.mark.parametrize(("sql", "target"), HARMFUL)
def test_harmful_statement_refused_by_engine(sql: str, target: str | None,
                                             victim: Victim) -> None:
    """Past the parser, the read-only session (mode=ro, query_only, authorizer) refuses it."""
    refused_by_engine(victim.url, victim.fill(sql))
    victim.assert_untouched()
    assert target is None or not (victim.out / target).exists()


HARMFUL_EXPRESSIONS = [
    pytest.param("where", "load_extension('{out}/evil.so') is null", {}, id="where-load-extension"),
    pytest.param("where", "writefile('{out}/w.txt', email) > 0", {}, id="where-writefile"),
    pytest.param("where", "id in (select length(readfile('/etc/passwd')))", {},
                 id="where-subquery-readfile"),
    pytest.param("where", "id > 0 and ${EXPR}", {"EXPR": "writefile('{out}/v.txt', 'x') > 0"},
                 id="var-in-where-writefile"),
    pytest.param("condition", "readfile('/etc/passwd') is not null", {},
                 id="condition-readfile"),
    pytest.param("condition", "(select writefile('{out}/c.txt', email)) > 0", {},
                 id="condition-subquery-writefile"),
    pytest.param("condition", "sqlite_compileoption_get(0) is not null", {},
                 id="condition-sqlite-function"),
    pytest.param("custom", "${ATTACK}", {"ATTACK": "ATTACH '{out}/var.db' AS v"},
                 id="var-is-whole-custom-attach"),
    pytest.param("custom", "select count(*) from victim where ${EXPR}",
                 {"EXPR": "load_extension('{out}/evil.so') is null"}, id="var-in-custom-load-ext"),
]


@pytest.mark.parametrize(("where", "text", "env"), HARMFUL_EXPRESSIONS)
def test_harmful_expression_refused_at_load(where: str, text: str, env: dict[str, str],
                                            loader: Loader) -> None:
    """SQLite side-effect functions in where, condition or via ${VAR} are config errors."""
    loader.refuses(where, text, env)


# --- (c) session state that outlives a check ---------------------------------------------------

STATE = [  # (attack, probe): the probe gives the same answer before and after the attack
    pytest.param("PRAGMA query_only = 0", "delete from victim", id="query-only-off-then-delete"),
    pytest.param("PRAGMA query_only = false", "insert into victim values (99, 'x')",
                 id="query-only-false-then-insert"),
    pytest.param("PRAGMA writable_schema = 1", "update sqlite_master set sql = sql",
                 id="writable-schema-then-edit-schema"),
    pytest.param("create temp table dq_state (a)", "select * from temp.dq_state",
                 id="temp-table"),
    pytest.param("create temp view dq_view as select 1 as a", "select * from dq_view",
                 id="temp-view"),
    pytest.param("PRAGMA case_sensitive_like = 1", "select 'a' like 'A'",
                 id="case-sensitive-like"),
    pytest.param("ATTACH '{out}/state.db' AS dq_att", "PRAGMA database_list", id="attach"),
    pytest.param("BEGIN IMMEDIATE", "select count(*) from victim", id="begin-immediate"),
    pytest.param("SAVEPOINT dq", "select count(*) from victim", id="savepoint"),
    pytest.param("PRAGMA foreign_keys = 1", "PRAGMA foreign_keys", id="foreign-keys"),
]


@pytest.mark.parametrize(("attack", "probe"), STATE)
def test_session_state_refused_and_not_kept(attack: str, probe: str, victim: Victim) -> None:
    """A state-changing statement is refused and the next fetch on the same pooled connection
    sees the session exactly as before, still read-only."""
    kit.session_state_not_kept(victim, attack, probe, still_refused=("delete from victim",))


@pytest.mark.parametrize(("attack", "probe"), STATE)
def test_session_state_refused_at_load(attack: str, probe: str, loader: Loader) -> None:
    """The same state-changing statements as custom.sql are config errors."""
    del probe
    loader.refuses("custom", attack)


def test_no_lock_outlives_a_check(victim: Victim) -> None:
    """After checks (and refused BEGINs) on a live pooled connection, another writer is not blocked."""
    with opened(victim.url) as target:
        assert target.fetch_all(sa.text("select count(*) from victim")) == [(len(ROWS),)]
        kit.assert_all_refused(target, ("BEGIN EXCLUSIVE", "BEGIN IMMEDIATE", "BEGIN"))
        assert target.fetch_all(sa.text("select max(id) from victim")) == [(len(ROWS),)]
        victim.assert_untouched()
        other = sqlite3.connect(victim.db, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")  # 'database is locked' if dqmon held any lock
            other.execute("ROLLBACK")
        finally:
            other.close()


# --- (d) the URL -------------------------------------------------------------------------------

URL_REFUSED = [
    pytest.param("sqlite:///file:{db}?uri=true&mode=rw", id="file-uri-mode-rw"),
    pytest.param("sqlite:///file:{out}/created.db?mode=rwc", id="file-uri-mode-rwc-new-file"),
    pytest.param("sqlite:///{db}?uri=true", id="uri-true"),
    pytest.param("sqlite:///{db}?mode=rw", id="mode-rw"),
    pytest.param("sqlite:///file:victim.db?mode=rw", id="relative-file-prefix-mode-rw"),
    pytest.param("sqlite:///{db}?immutable=1", id="immutable"),
    pytest.param("sqlite:///{db}?nolock=1", id="nolock"),
    pytest.param("sqlite:///{db}?vfs=unix-none", id="vfs"),
    pytest.param("sqlite:///{db}?cache=shared", id="cache-shared"),
    pytest.param("sqlite:///{db}?check_same_thread=false", id="check-same-thread"),
    pytest.param("sqlite:///{db}?timeout=1&uri=true&mode=rw", id="allowed-param-plus-mode"),
    pytest.param("sqlite+pysqlite:///{db}?mode=rwc", id="explicit-driver-mode-rwc"),
    pytest.param("sqlite+aiosqlite:///{db}", id="other-driver"),
]


@pytest.mark.parametrize("url", URL_REFUSED)
def test_url_override_refused(url: str, loader: Loader) -> None:
    """A URL that would open the file writable is a config error, and the warehouse layer
    refuses to build it too; no file is created."""
    loader.monkeypatch.chdir(loader.victim.db.parent)
    loader.url_refused(url)


@pytest.mark.parametrize("url", [
    pytest.param("sqlite:///{db}", id="plain"),
    pytest.param("sqlite:///{db}?timeout=1", id="allowed-timeout"),
    pytest.param("sqlite+pysqlite:///{db}", id="explicit-driver"),
    pytest.param("sqlite:///victim.db", id="relative-path"),
    pytest.param("sqlite:///{dbdir}/../db/./victim.db", id="dot-dot-path"),
])
def test_allowed_url_still_opens_read_only(url: str, victim: Victim,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Every accepted spelling of the file opens it read-only: reads work, every write fails."""
    monkeypatch.chdir(victim.db.parent)
    url = url.replace("{db}", str(victim.db)).replace("{dbdir}", str(victim.db.parent))
    with opened(url) as target:
        assert target.fetch_all(sa.text("select count(*) from victim")) == [(len(ROWS),)]
        kit.assert_all_refused(target, ("delete from victim", "create table dq_new (a)",
                                        "PRAGMA query_only = 0", "PRAGMA user_version = 9"))
    victim.assert_untouched()


def test_memory_url_is_read_only_too(victim: Victim) -> None:
    """An in-memory database (nothing on disk) still gets query_only and the authorizer."""
    for url in ("sqlite://", "sqlite:///:memory:"):
        with opened(url) as target:
            assert target.fetch_all(sa.text("select 1")) == [(1,)]
            kit.assert_all_refused(target, ("create table dq_new (a)",
                                            f"ATTACH '{victim.out}/mem.db' AS m",
                                            "PRAGMA query_only = 0"))
    victim.assert_untouched()


@pytest.mark.parametrize(("url", "created"), [
    pytest.param("sqlite:///file:{db}", "file:{db}", id="absolute-file-prefix-is-a-path"),
    pytest.param("sqlite:///file:new.db", "new.db", id="relative-file-prefix-new-file"),
    pytest.param("sqlite:///{db}%3Fmode=rwc", "victim.db?mode=rwc", id="percent-encoded-question"),
    pytest.param("sqlite:///{out}/new.db", "{out}/new.db", id="missing-file"),
    pytest.param("sqlite:///{db}%23frag", "victim.db#frag", id="percent-encoded-hash"),
])
def test_url_to_missing_file_creates_nothing(url: str, created: str, loader: Loader) -> None:
    """A URL that names no existing file is a check error (exit 3): no database is created,
    and a `file:` or percent-encoded `?` is never read as a URI that reopens the victim."""
    victim = loader.victim
    loader.monkeypatch.chdir(victim.db.parent)
    code, output = loader.cli(kit.url_yaml(victim.fill(url)))
    assert code == 3, output
    assert "SQLite database file not found" in output
    assert "Traceback" not in output
    assert not Path(victim.fill(created)).exists()
    victim.assert_untouched()


@pytest.mark.parametrize("name", [
    pytest.param("victim.db?mode=rw", id="question-mark-in-name"),
    pytest.param("file:victim.db", id="file-prefix-in-name"),
    pytest.param("victim.db#x", id="hash-in-name"),
    pytest.param("victim 100%.db", id="percent-in-name"),
])
def test_odd_file_name_opens_that_file_read_only(name: str, victim: Victim,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose name holds URI syntax is opened as that file, read-only (never as a URI)."""
    decoys = victim.root / "decoys"
    decoys.mkdir()
    decoy = decoys / name
    shutil.copyfile(victim.db, decoy)
    conn = sqlite3.connect(f"file:{quote(str(decoy))}", uri=True)
    conn.execute("create table decoy_marker (a)")
    conn.commit()
    conn.close()
    decoy_bytes = decoy.read_bytes()
    monkeypatch.chdir(decoys)
    url = f"sqlite:///{quote(name)}" if name.startswith("file:") else f"sqlite:///{decoys}/{quote(name)}"
    with opened(url) as target:
        tables = target.fetch_all(sa.text("select name from sqlite_master where type = 'table' "
                                          "order by name"))
        assert tables == [("decoy_marker",), ("victim",)]  # the decoy, not the victim
        kit.assert_all_refused(target, ("delete from victim", "drop table decoy_marker",
                                        "PRAGMA query_only = 0"))
    assert decoy.read_bytes() == decoy_bytes
    assert sorted(p.name for p in decoys.iterdir()) == [name]
    victim.assert_untouched()


# --- (e) leaks -------------------------------------------------------------------------------

@pytest.mark.parametrize("place", sorted(kit.LEAK_PLACES))
def test_secret_reused_outside_url_is_refused_unprinted(place: str, loader: Loader) -> None:
    """A password ${VAR} reused in a SQLite check is a config error that never prints it."""
    loader.secret_reuse_refused(place)


def test_show_sql_and_run_never_print_the_secret(loader: Loader) -> None:
    """--show-sql, --connect and run-once print SQL, errors and results but never the password."""
    loader.secret_never_printed()


def test_readfile_of_environment_refused(loader: Loader) -> None:
    """readfile('/proc/self/environ') is refused at load and by the engine; no env value leaks."""
    loader.environment_not_read(
        [("custom", "select readfile('/proc/self/environ')"),
         ("where", "length(readfile('/proc/self/environ')) > 0"),
         ("condition", "instr(readfile('/proc/self/environ'), 'DQ_') > 0")],
        engine=["select readfile('/proc/self/environ')"])


# The daemon: one real `dqmon run` per module; its log lines are read after SIGTERM.

@pytest.fixture(scope="module")
def daemon_run(tmp_path_factory: pytest.TempPathFactory) -> kit.DaemonRun:
    """Run `dqmon run` on checks whose errors quote row values, until each table ran once."""
    victim = make_victim(tmp_path_factory.mktemp("sqlite_daemon"))
    return kit.file_daemon_run(
        victim, "select json_extract('{}', email) from victim where id = {row}")


def test_daemon_ran_every_table_and_stopped_cleanly(daemon_run: kit.DaemonRun) -> None:
    """The daemon checked every table (errors included), exited 0 on SIGTERM, changed nothing."""
    kit.assert_daemon_ran_cleanly(daemon_run)


@pytest.mark.parametrize("row", [pytest.param(row, id=name)
                                 for row, name in kit.DAEMON_TABLES.items()])
def test_daemon_log_replaces_row_value_by_placeholder(row: int, daemon_run: kit.DaemonRun) -> None:
    """A SQLite error quoting a row value ("JSON path error near '...'") reaches the log as ?."""
    errors = kit.daemon_row_errors(daemon_run, row)
    assert all("JSON path error near ?" in e for e in errors), errors


def test_daemon_log_never_shows_the_password(daemon_run: kit.DaemonRun) -> None:
    """The unreachable PostgreSQL warehouse is logged with its URL masked, never its password."""
    kit.assert_daemon_hides_password(daemon_run)


def test_run_once_reports_the_row_error(loader: Loader) -> None:
    """run-once reports the same failing check as an error (its stdout may quote the value)."""
    loader.row_error_reported("select json_extract('{}', email) from victim where id = 3",
                              error="JSON path error near")
