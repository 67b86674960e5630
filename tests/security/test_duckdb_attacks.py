"""DuckDB adversarial corpus (SPEC §6 "Read-only in depth", issue 8).

Each attack is written as an attacker would write checks.yaml (custom.sql, where, validity
condition, ${VAR}, the URL) and run through the real CLI, or sent straight at
`Warehouse.fetch_all` past the parser (and, for the session layer alone, on dqmon's own pooled
DuckDB connection past the statement filter). After every attack a fresh read-only DuckDB
connection opened by the test once dqmon has let go of the file checks that the victim's rows,
tables, views, sequences, indexes and macros, the file's bytes and mtime, the database directory,
the files the attack tried to create and $HOME (DuckDB's extension directory) are exactly as
before. Classes: (a) a second statement, (b) a harmful single statement, (c) session state that
outlives a check, (d) a URL that overrides the safety settings, (e) leaks of secrets and row
values (the daemon's logs are read from a real `dqmon run` subprocess).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kit
import pytest
import sqlalchemy as sa
from kit import ROWS, Loader, opened, outcome, refused_by_engine, warehouse

duckdb = pytest.importorskip("duckdb")

# --- the victim database and what must never change --------------------------------------------

@dataclass
class Victim(kit.FileVictim):
    """A DuckDB file alone in its directory, a directory for attack output, and a fake $HOME."""

    scheme = "duckdb"
    home: Path

    def state(self) -> dict[str, Any]:
        """Read what an attack must not change, through a fresh read-only connection."""
        conn = duckdb.connect(str(self.db), read_only=True)
        mine = "database_name = current_database()"
        try:
            found = {
                "rows": "select id, email from victim order by id",
                "tables": f"select schema_name, table_name, sql from duckdb_tables() where {mine} "
                          "order by all",
                "views": "select schema_name, view_name, sql from duckdb_views() where not "
                         f"internal and {mine} order by all",
                "sequences": "select schema_name, sequence_name, start_value, last_value from "
                             f"duckdb_sequences() where {mine} order by all",
                "indexes": "select schema_name, index_name, table_name, sql from duckdb_indexes()"
                           f" where {mine} order by all",
                "macro": "select victim_macro(1)",  # (listing duckdb_functions() is slow)
            }
            state: dict[str, Any] = {k: conn.execute(q).fetchall() for k, q in found.items()}
        finally:
            conn.close()
        return {**state, **super().state(),
                "home": sorted(str(p.relative_to(self.home)) for p in self.home.rglob("*"))}


def make_victim(root: Path, template: Victim | None = None) -> Victim:
    """Build victim.duckdb (table, index, sequence, view, macro, four rows) with an old mtime,
    or copy `template`'s file (same bytes, same recorded state: building one takes a while)."""
    for name in ("db", "out", "home"):
        (root / name).mkdir(parents=True)
    db = root / "db" / "victim.duckdb"
    if template is not None:
        shutil.copyfile(template.db, db)
    else:
        conn = duckdb.connect(str(db))
        conn.execute("create table victim (id integer primary key, email varchar not null)")
        conn.executemany("insert into victim values (?, ?)", ROWS)
        conn.execute("create index victim_email on victim (email)")
        conn.execute("create sequence victim_seq")
        conn.execute("create view victim_view as select id from victim")
        conn.execute("create macro victim_macro(x) as x + 1")
        conn.close()
    victim = Victim(root=root, db=db, out=root / "out", home=root / "home")
    victim.settle(template.before if template is not None else None)
    assert victim.before["home"] == []
    return victim


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Victim:
    """The victim database built once per module; each test gets a byte-identical copy."""
    return make_victim(tmp_path_factory.mktemp("duckdb_template"))


@pytest.fixture
def victim(tmp_path: Path, template: Victim, monkeypatch: pytest.MonkeyPatch) -> Victim:
    """A fresh copy of the victim database; $HOME points at an empty directory we watch."""
    made = make_victim(tmp_path, template)
    monkeypatch.setenv("HOME", str(made.home))
    return made


loader = kit.loader  # the fixture: the real CLI on checks.yaml next to this test's victim


# --- (a) a second statement ------------------------------------------------------------------

SECOND_STATEMENT_CONFIG = kit.second_statement_config(
    pytest.param("custom", "select 1; COPY victim TO '{out}/second.csv'", {},
                 id="custom-second-copy"))


@pytest.mark.parametrize(("where", "text", "env"), SECOND_STATEMENT_CONFIG)
def test_second_statement_refused_at_load(where: str, text: str, env: dict[str, str],
                                          loader: Loader) -> None:
    """A config that smuggles a second statement is a config error; the DuckDB file is intact."""
    loader.refuses(where, text, env)


SECOND_STATEMENT_WIRE = kit.second_statement_wire(
    pytest.param("select 1; COPY victim TO '{out}/second.csv'", id="second-copy"),
    pytest.param("select 1; ATTACH '{out}/second.duckdb' AS second", id="second-attach"),
    pytest.param("select * from query('select 1; drop table victim')", id="query-two-statements"),
)


@pytest.mark.parametrize("sql", SECOND_STATEMENT_WIRE)
def test_second_statement_refused_by_engine(sql: str, victim: Victim) -> None:
    """Past the parser, DuckDB's own extract_statements refuses anything but one SELECT."""
    refused_by_engine(victim.url, victim.fill(sql))
    victim.assert_untouched()


# --- (b) a harmful single statement ------------------------------------------------------------

HARMFUL = [  # (sql, file the attack tries to create, relative to out/)
    pytest.param("COPY victim TO '{out}/x.csv'", "x.csv", id="copy-to-file"),
    pytest.param("COPY (select * from victim) TO '{out}/x.parquet' (FORMAT parquet)",
                 "x.parquet", id="copy-query-to-parquet"),
    pytest.param("COPY victim FROM '/etc/hostname'", None, id="copy-from-file"),
    pytest.param("EXPORT DATABASE '{out}/export'", "export", id="export-database"),
    pytest.param("ATTACH '{out}/x.duckdb'", "x.duckdb", id="attach-new-file"),
    pytest.param("DETACH victim", None, id="detach"),
    pytest.param("INSTALL httpfs", None, id="install-httpfs"),
    pytest.param("LOAD httpfs", None, id="load-httpfs"),
    pytest.param("SET enable_external_access = true", None, id="set-external-access"),
    pytest.param("select * from read_text('/proc/self/environ')", None, id="read-text-environ"),
    pytest.param("select * from read_csv('/etc/passwd')", None, id="read-csv-passwd"),
    pytest.param("select * from glob('/etc/*')", None, id="glob"),
    pytest.param("select * from query('drop table victim')", None, id="query-drop"),
    pytest.param("select getenv('HOME')", None, id="getenv"),
    pytest.param("select * from duckdb_secrets()", None, id="duckdb-secrets"),
    pytest.param("CREATE TABLE dq_new (a integer)", None, id="create-table"),
    pytest.param("CREATE TABLE dq_new AS select * from victim", None, id="create-table-as"),
    pytest.param("CREATE SECRET dq_s (TYPE s3, KEY_ID 'k', SECRET 's')", None,
                 id="create-secret"),
    pytest.param("delete from victim", None, id="delete"),
    pytest.param("insert into victim values (9, 'x')", None, id="insert"),
    pytest.param("drop table victim", None, id="drop-table"),
    pytest.param("alter table victim add column z integer", None, id="alter-table"),
    pytest.param("with d as (delete from victim returning *) select count(*) from d", None,
                 id="cte-delete"),
    pytest.param("CHECKPOINT", None, id="checkpoint-statement"),
    pytest.param("CALL checkpoint()", None, id="call-checkpoint"),
]

# Refused by the engine, and (since the gaps were closed) at load too.
LOADER_MISSES = [
    pytest.param("select * from '/etc/passwd'", None, id="replacement-scan-file"),
    pytest.param("FROM 'https://127.0.0.1:1/x.parquet'", None, id="replacement-scan-url"),
    pytest.param("select nextval('victim_seq')", None, id="nextval"),
    pytest.param("select setval('victim_seq', 100)", None, id="setval"),
    pytest.param("select * from enable_logging()", None, id="enable-logging"),
    pytest.param("select * from force_checkpoint()", None, id="force-checkpoint"),
]


@pytest.mark.parametrize(("sql", "target"), HARMFUL + LOADER_MISSES)
def test_harmful_statement_refused_at_load(sql: str, target: str | None,
                                           loader: Loader) -> None:
    """A harmful custom.sql is a config error; nothing is written, no file is created."""
    loader.refuses("custom", sql)
    assert target is None or not (loader.victim.out / target).exists()


@pytest.mark.parametrize(("sql", "target"),
                         HARMFUL + [pytest.param(*p.values, id=p.id) for p in LOADER_MISSES])
def test_harmful_statement_refused_by_engine(sql: str, target: str | None,
                                             victim: Victim) -> None:
    """Past the parser, the statement filter, read_only and external access off refuse it."""
    refused_by_engine(victim.url, victim.fill(sql))
    victim.assert_untouched()
    assert target is None or not (victim.out / target).exists()


@pytest.mark.parametrize("sql", [
    pytest.param("select * from checkpoint()", id="checkpoint-function"),
    pytest.param("select * from truncate_duckdb_logs()", id="truncate-logs"),
])
def test_side_effect_table_function_refused_at_load(sql: str, loader: Loader) -> None:
    """DuckDB's pragma-style table functions are side effects: a config error at load."""
    loader.refuses("custom", sql)


def test_side_effect_table_function_writes_nothing(victim: Victim) -> None:
    """Sent straight to the engine, checkpoint() runs on the read-only file and writes nothing."""
    with opened(victim.url) as target:
        for sql in ("select * from checkpoint()", "select * from truncate_duckdb_logs()"):
            target.fetch_all(sa.text(sql))
    victim.assert_untouched()


HARMFUL_EXPRESSIONS = [
    pytest.param("where", "(select count(*) from read_csv('/etc/passwd')) > 0", {},
                 id="where-read-csv"),
    pytest.param("where", "getenv('HOME') is not null", {}, id="where-getenv"),
    pytest.param("where", "exists (select * from '/etc/passwd')", {},
                 id="where-replacement-scan"),
    pytest.param("where", "id > 0 and ${EXPR}", {"EXPR": "getenv('HOME') is not null"},
                 id="var-in-where-getenv"),
    pytest.param("condition", "(select 1 from query('drop table victim')) = 1", {},
                 id="condition-query"),
    pytest.param("condition", "length((select content from read_text('/proc/self/environ'))) > 0",
                 {}, id="condition-read-text"),
    pytest.param("condition", "(select count(*) from glob('{out}/*')) = 0", {},
                 id="condition-glob"),
    pytest.param("custom", "${ATTACK}", {"ATTACK": "COPY victim TO '{out}/var.csv'"},
                 id="var-is-whole-custom-copy"),
    pytest.param("custom", "select count(*) from victim where ${EXPR}",
                 {"EXPR": "getenv('HOME') is not null"}, id="var-in-custom-getenv"),
]


@pytest.mark.parametrize(("where", "text", "env"), HARMFUL_EXPRESSIONS)
def test_harmful_expression_refused_at_load(where: str, text: str, env: dict[str, str],
                                            loader: Loader) -> None:
    """DuckDB side-effect functions in where, condition or via ${VAR} are config errors."""
    loader.refuses(where, text, env)


# --- (c) session state that outlives a check ---------------------------------------------------

STATE = [  # (attack, probe): the probe gives the same answer before and after the attack
    pytest.param("SET threads = 1", "select current_setting('threads')", id="set-threads"),
    pytest.param("SET TimeZone = 'America/New_York'", "select current_setting('TimeZone')",
                 id="set-timezone"),
    pytest.param("SET enable_external_access = true",
                 "select current_setting('enable_external_access')", id="set-external-access"),
    pytest.param("SET lock_configuration = false", "select current_setting('lock_configuration')",
                 id="set-lock-configuration"),
    pytest.param("RESET enable_external_access",
                 "select current_setting('enable_external_access')", id="reset-external-access"),
    pytest.param("PRAGMA threads = 1", "select current_setting('threads')", id="pragma-threads"),
    pytest.param("SET GLOBAL TimeZone = 'Asia/Tokyo'", "select current_setting('TimeZone')",
                 id="set-global-timezone"),
    pytest.param("create temp table dq_state (a integer)", "select * from temp.dq_state",
                 id="temp-table"),
    pytest.param("create temp view dq_view as select 1 as a", "select * from dq_view",
                 id="temp-view"),
    pytest.param("create temp macro dq_macro(x) as x + 41", "select dq_macro(1)",
                 id="temp-macro"),
    pytest.param("SET VARIABLE dq_var = 42", "select getvariable('dq_var')", id="set-variable"),
    pytest.param("USE system", "select current_database()", id="use-database"),
    pytest.param("ATTACH '{out}/state.duckdb' AS dq_att",
                 "select database_name from duckdb_databases() order by 1", id="attach"),
    pytest.param("BEGIN TRANSACTION", "select count(*) from victim", id="begin"),
]


@pytest.mark.parametrize(("attack", "probe"), STATE)
def test_session_state_refused_and_not_kept(attack: str, probe: str, victim: Victim) -> None:
    """A state-changing statement is refused and the next fetch on the same pooled connection
    sees the session exactly as before (read-only, external access off)."""
    kit.session_state_not_kept(victim, attack, probe, still_refused=(
        "delete from victim", "select * from read_text('/etc/hostname')"))


@pytest.mark.parametrize(("attack", "probe"), [
    *STATE,
    pytest.param("select setseed(0.5)", "select random()", id="setseed"),
])
def test_session_state_refused_at_load(attack: str, probe: str, loader: Loader) -> None:
    """The same state-changing statements as custom.sql are config errors."""
    del probe
    loader.refuses("custom", attack)


def test_setseed_does_not_outlive_its_check(victim: Victim) -> None:
    """select setseed(0.5) in one check must not make the next check's random() predictable."""
    reference = duckdb.connect()
    reference.execute("select setseed(0.5)")
    seeded = reference.execute("select random()").fetchone()
    reference.close()
    with opened(victim.url) as target:
        target.fetch_all(sa.text("select setseed(0.5)"))  # accepted by loader and engine today
        following = target.fetch_all(sa.text("select random()"))
    victim.assert_untouched()
    assert following[0] != seeded


LOCKED_SETTINGS = [
    pytest.param("SET threads = 1", "threads", id="threads"),
    pytest.param("SET TimeZone = 'America/New_York'", "TimeZone", id="timezone"),
    pytest.param("SET enable_external_access = true", "enable_external_access",
                 id="enable-external-access"),
    pytest.param("SET lock_configuration = false", "lock_configuration", id="lock-configuration"),
    pytest.param("RESET lock_configuration", "lock_configuration", id="reset-lock"),
    pytest.param("SET access_mode = 'read_write'", "access_mode", id="access-mode"),
    pytest.param("SET allow_unsigned_extensions = true", "allow_unsigned_extensions",
                 id="allow-unsigned-extensions"),
    pytest.param("SET autoinstall_known_extensions = true", "autoinstall_known_extensions",
                 id="autoinstall"),
    pytest.param("SET memory_limit = '1MB'", "memory_limit", id="memory-limit"),
    pytest.param("PRAGMA enable_profiling", "enable_profiling", id="pragma-profiling"),
]


@pytest.mark.parametrize(("statement", "setting"), LOCKED_SETTINGS)
def test_configuration_lock_alone_refuses_set(statement: str, setting: str,
                                              victim: Victim) -> None:
    """Past the statement filter (a raw cursor on dqmon's own pooled connection), SET fails
    with 'configuration has been locked' and the next check sees the original setting."""
    probe = f"select current_setting('{setting}')"
    with opened(victim.url) as target:
        before = outcome(target, probe)
        raw = target.engine().raw_connection()
        try:
            with pytest.raises(duckdb.Error, match="locked"):
                raw.cursor().execute(statement)
        finally:
            raw.close()
        assert outcome(target, probe) == before
    victim.assert_untouched()


@pytest.mark.parametrize(("sql", "target_file"), [
    pytest.param("COPY victim TO '{out}/raw.csv'", "raw.csv", id="copy"),
    pytest.param("EXPORT DATABASE '{out}/raw-export'", "raw-export", id="export"),
    pytest.param("ATTACH '{out}/raw.duckdb'", "raw.duckdb", id="attach"),
    pytest.param("INSTALL httpfs", None, id="install"),
    pytest.param("LOAD httpfs", None, id="load"),
    pytest.param("CREATE TABLE dq_raw (a integer)", None, id="create-table"),
    pytest.param("delete from victim", None, id="delete"),
    pytest.param("select * from read_text('/proc/self/environ')", None, id="read-text"),
    pytest.param("select * from '/etc/passwd'", None, id="replacement-scan"),
    pytest.param("select nextval('victim_seq')", None, id="nextval"),
])
def test_session_layer_alone_stops_writes(sql: str, target_file: str | None,
                                          victim: Victim) -> None:
    """Past the statement filter, read_only + external access off still refuse every write."""
    with opened(victim.url) as target:
        raw = target.engine().raw_connection()
        try:
            with pytest.raises(duckdb.Error):
                raw.cursor().execute(victim.fill(sql))
        finally:
            raw.close()
    victim.assert_untouched()
    assert target_file is None or not (victim.out / target_file).exists()


def test_pool_return_drops_temporary_objects(victim: Victim) -> None:
    """Temp tables, views, macros and variables made on a checkout (past the statement filter)
    are gone when the next check gets that pooled connection."""
    with opened(victim.url) as target:
        raw = target.engine().raw_connection()
        try:
            for sql in ("create temp table dq_tt as select 42 as a",
                        "create temp view dq_tv as select 43 as a",
                        "create temp macro dq_tm(x) as x + 1", "SET VARIABLE dq_tvar = 44"):
                raw.cursor().execute(sql)  # allowed on a read-only file: temp is in memory
        finally:
            raw.close()
        seen = {probe: outcome(target, probe)[0] for probe in (
            "select * from dq_tt", "select * from dq_tv", "select dq_tm(1)")}
        variable = target.fetch_all(sa.text("select getvariable('dq_tvar')"))
    victim.assert_untouched()
    assert seen == dict.fromkeys(seen, "error")
    assert variable == [(None,)]


# --- (d) the URL -------------------------------------------------------------------------------

URL_REFUSED = [
    pytest.param("duckdb:///{db}?access_mode=read_write", id="access-mode-read-write"),
    pytest.param("duckdb:///{db}?enable_external_access=true", id="enable-external-access"),
    pytest.param("duckdb:///{db}?lock_configuration=false", id="lock-configuration-false"),
    pytest.param("duckdb:///{db}?allow_unsigned_extensions=true", id="allow-unsigned-extensions"),
    pytest.param("duckdb:///{db}?read_only=false", id="read-only-false"),
    pytest.param("duckdb:///{db}?autoinstall_known_extensions=true", id="autoinstall"),
    pytest.param("duckdb:///{db}?allow_community_extensions=true", id="community-extensions"),
    pytest.param("duckdb:///{db}?custom_extension_repository=http://127.0.0.1:1",
                 id="extension-repository"),
    pytest.param("duckdb:///{db}?extension_directory={out}/ext", id="extension-directory"),
    pytest.param("duckdb:///{db}?temp_directory={out}/tmp", id="temp-directory"),
    pytest.param("duckdb:///{db}?home_directory={out}", id="home-directory"),
    pytest.param("duckdb:///{db}?threads=1&access_mode=read_write", id="allowed-plus-access-mode"),
    pytest.param("duckdb:///{db}?ACCESS_MODE=READ_WRITE", id="upper-case-access-mode"),
]


@pytest.mark.parametrize("url", URL_REFUSED)
def test_url_override_refused(url: str, loader: Loader) -> None:
    """A URL parameter that would undo read_only, external access or the lock is a config
    error, and the warehouse layer refuses to build it too."""
    loader.url_refused(url)


@pytest.mark.parametrize("url", [
    pytest.param("duckdb:///{db}", id="plain"),
    pytest.param("duckdb:///{db}?threads=1", id="allowed-threads"),
    pytest.param("duckdb:///{db}?memory_limit=64MB", id="allowed-memory-limit"),
    pytest.param("duckdb:///{db}?threads=2&memory_limit=1GB", id="both-allowed"),
    pytest.param("duckdb:///victim.duckdb", id="relative-path"),
])
def test_allowed_url_still_opens_read_only(url: str, victim: Victim,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Every accepted URL opens the file read-only, external access off and config locked."""
    monkeypatch.chdir(victim.db.parent)
    with opened(victim.fill(url)) as target:
        assert target.fetch_all(sa.text("select count(*) from victim")) == [(len(ROWS),)]
        settings = target.fetch_all(sa.text(
            "select current_setting('access_mode'), current_setting('enable_external_access'),"
            " current_setting('lock_configuration')"))
        assert settings == [("read_only", False, True)]
        kit.assert_all_refused(target, ("delete from victim", "CREATE TABLE dq_new (a integer)",
                                        "SET enable_external_access = true",
                                        f"COPY victim TO '{victim.out}/url.csv'"))
    victim.assert_untouched()


@pytest.mark.parametrize(("url", "created"), [
    pytest.param("duckdb:///{db}%3Faccess_mode=read_write", "{db}?access_mode=read_write",
                 id="percent-encoded-question"),
    pytest.param("duckdb:///{out}/new.duckdb", "{out}/new.duckdb", id="missing-file"),
    pytest.param("duckdb:///{db}?memory_limit=1GB'; drop table victim; --", None,
                 id="sql-in-allowed-param"),
    pytest.param("duckdb:///{db}?threads=1%3B%20drop%20table%20victim", None,
                 id="encoded-sql-in-threads"),
])
def test_url_that_cannot_open_creates_nothing(url: str, created: str | None,
                                              loader: Loader) -> None:
    """A URL naming no file, or smuggling SQL into an allowed parameter, fails as a check error
    (exit 3, or 2 at load) without creating a database or touching the victim."""
    victim = loader.victim
    code, output = loader.cli(kit.url_yaml(victim.fill(url)))
    assert code in (2, 3), output
    assert "Traceback" not in output
    assert created is None or not Path(victim.fill(created)).exists()
    victim.assert_untouched()


REMOTE_URLS = [
    pytest.param("duckdb:///md:dq_attack", id="motherduck"),
    pytest.param("duckdb:///http://127.0.0.1:1/x.duckdb", id="http"),
    pytest.param("duckdb:///s3://dq-attack/x.duckdb", id="s3"),
    pytest.param("duckdb:///hf://datasets/dq/attack/x.duckdb", id="huggingface"),
]


@pytest.mark.parametrize("url", REMOTE_URLS)
def test_remote_database_url_refused_at_load(url: str, loader: Loader) -> None:
    """A URL whose database is remote (network, extension install) is a config error."""
    code, output = loader.cli(kit.url_yaml(url), "validate")
    loader.victim.assert_untouched()
    kit.assert_config_error(code, output, "warehouses.main.url")


def test_remote_database_url_never_reaches_the_engine(victim: Victim) -> None:
    """The warehouse itself refuses a remote URL, so DuckDB never installs an extension."""
    with pytest.raises(ValueError, match="must be a local file"):
        warehouse("duckdb:///http://127.0.0.1:1/x.duckdb")
    victim.assert_untouched()  # no $HOME/.duckdb/extensions/<version>/<platform>


# --- (e) leaks -------------------------------------------------------------------------------

@pytest.mark.parametrize("place", sorted(kit.LEAK_PLACES))
def test_secret_reused_outside_url_is_refused_unprinted(place: str, loader: Loader) -> None:
    """A password ${VAR} reused in a DuckDB check is a config error that never prints it."""
    loader.secret_reuse_refused(place)


def test_show_sql_and_run_never_print_the_secret(loader: Loader) -> None:
    """--show-sql, --connect and run-once print SQL, errors and results but never the password."""
    loader.secret_never_printed(main_extra=", max_connections: 1")


def test_environment_readers_refused(loader: Loader) -> None:
    """read_text('/proc/self/environ') and getenv() are refused at load and by the engine, and
    no environment value reaches the output."""
    loader.environment_not_read(
        [("custom", "select * from read_text('/proc/self/environ')"),
         ("custom", "select getenv('DQ_ENV_SECRET')"),
         ("where", "length(getenv('DQ_ENV_SECRET')) > 0"),
         ("condition", "(select count(*) from read_text('/proc/self/environ')) > 0")],
        engine=["select * from read_text('/proc/self/environ')",
                "select content from read_text('/proc/self/environ')",
                "select getenv('DQ_ENV_SECRET')"])


# The daemon: one real `dqmon run` per module; its log lines are read after SIGTERM.

@pytest.fixture(scope="module")
def daemon_run(tmp_path_factory: pytest.TempPathFactory, template: Victim) -> kit.DaemonRun:
    """Run `dqmon run` on checks whose errors quote row values, until each table ran once."""
    victim = make_victim(tmp_path_factory.mktemp("duckdb_daemon"), template)
    return kit.file_daemon_run(
        victim, "select cast(email as integer) from victim where id = {row}",
        # one connection: a second pooled DuckDB connection fails today ("configuration has
        # been locked" from its own on-connect SET TimeZone), which is not what this tests
        main_extra=", max_connections: 1", env={"HOME": str(victim.home)})


def test_daemon_ran_every_table_and_stopped_cleanly(daemon_run: kit.DaemonRun) -> None:
    """The daemon checked every table (errors included), exited 0 on SIGTERM, changed nothing;
    every stderr line is a JSON log event (nothing bypassed the scrubbing formatter)."""
    kit.assert_daemon_ran_cleanly(daemon_run)


@pytest.mark.parametrize("row", [
    pytest.param(2, id="leak_quote"),
    pytest.param(3, id="leak_plain"),
    pytest.param(4, id="leak_newline"),
])
def test_daemon_log_replaces_row_value_by_placeholder(row: int, daemon_run: kit.DaemonRun) -> None:
    """DuckDB's "Could not convert string '<row value>' to INT32" reaches the log as ?."""
    errors = kit.daemon_row_errors(daemon_run, row)
    assert all(e.startswith("Conversion Error: Could not convert string ?") for e in errors), errors


def test_daemon_log_never_shows_the_password(daemon_run: kit.DaemonRun) -> None:
    """The unreachable PostgreSQL warehouse is logged with its URL masked, never its password."""
    kit.assert_daemon_hides_password(daemon_run)


def test_run_once_reports_the_row_error(loader: Loader) -> None:
    """run-once reports the same failing check as an error (its stdout may quote the value)."""
    loader.row_error_reported("select cast(email as integer) from victim where id = 3",
                              error="Conversion Error: Could not convert string")
