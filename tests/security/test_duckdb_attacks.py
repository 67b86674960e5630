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

import gc
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import sqlalchemy as sa

from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.errors import WarehouseError
from dqmon.warehouse import Warehouse

# The in-process CLI runner lives in tests/integration/helpers.py (tests/ has no packages).
_INTEGRATION = str(Path(__file__).resolve().parents[1] / "integration")
if _INTEGRATION not in sys.path:
    sys.path.append(_INTEGRATION)
from helpers import run_cli  # noqa: E402

duckdb = pytest.importorskip("duckdb")

ROWS = [(1, "alice@example.com"), (2, "o'hara.leak@example.org"),
        (3, "zed.rowvalue@example.net"), (4, "first.line@example.com\nsecond.line")]
# Fragments of row values that must never reach the daemon's log lines.
ROW_FRAGMENTS = {2: ("hara.leak",), 3: ("zed.rowvalue",), 4: ("first.line", "second.line")}
OLD_MTIME_NS = 1_000_000_000 * 10**9  # 2001: any write to the file moves its mtime
FIELD_PATH = {"custom": "tables[0].checks[0].custom.sql", "where": "tables[0].where",
              "condition": "tables[0].checks[0].validity.condition"}
SECRET_MESSAGE = "holds the value of a secret"

# --- the victim database and what must never change --------------------------------------------

@dataclass
class Victim:
    """A DuckDB file alone in its directory, a directory for attack output, and a fake $HOME."""

    root: Path
    db: Path
    out: Path
    home: Path
    before: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The plain SQLAlchemy URL of the victim file."""
        return f"duckdb:///{self.db}"

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
        return {**state, "sha256": hashlib.sha256(self.db.read_bytes()).hexdigest(),
                "mtime_ns": self.db.stat().st_mtime_ns,
                "db_dir": sorted(p.name for p in self.db.parent.iterdir()),
                "out": sorted(str(p.relative_to(self.out)) for p in self.out.rglob("*")),
                "home": sorted(str(p.relative_to(self.home)) for p in self.home.rglob("*"))}

    def assert_untouched(self) -> None:
        """Fail unless data, schema, bytes, mtime, the directories and $HOME are as before."""
        assert self.state() == self.before


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
    os.utime(db, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    victim = Victim(root=root, db=db, out=root / "out", home=root / "home")
    victim.before = dict(template.before) if template is not None else victim.state()
    assert victim.before["out"] == [] and victim.before["db_dir"] == ["victim.duckdb"]
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


def warehouse(url: str) -> Warehouse:
    """dqmon's own warehouse object; one pooled connection, so every fetch reuses the session."""
    return Warehouse("attack", WarehouseSettings(url=url, allow_privileged_role=True,
                                                 max_connections=1))


def refused_by_engine(url: str, sql: str) -> str:
    """Send `sql` straight to Warehouse.fetch_all; it must raise WarehouseError; return why."""
    target = warehouse(url)
    try:
        with pytest.raises(WarehouseError) as caught:
            target.fetch_all(sa.text(sql))
    finally:
        target.dispose()
    return str(caught.value)


def outcome(target: Warehouse, sql: str) -> tuple[str, Any]:
    """Rows of `sql`, or the error it raised (to compare before and after an attack)."""
    try:
        return "rows", target.fetch_all(sa.text(sql))
    except WarehouseError as exc:
        return "error", str(exc)


def cli(capsys: pytest.CaptureFixture[str], root: Path, text: str,
        *command: str) -> tuple[int, str]:
    """Write `text` as checks.yaml and run `dqmon COMMAND --config it`; return (code, output)."""
    path = root / "checks.yaml"
    path.write_text(text)
    code, out, err = run_cli(capsys, *(command or ("run-once", "--no-export")),
                             "--config", str(path))
    return code, out + err


def run_json(capsys: pytest.CaptureFixture[str], root: Path,
             text: str) -> tuple[int, dict[tuple[str, str], dict[str, Any]], str]:
    """run-once --format json on `text`: (code, results by (table, check), stdout + stderr)."""
    path = root / "checks.yaml"
    path.write_text(text)
    code, out, err = run_cli(capsys, "run-once", "--no-export", "--format", "json",
                             "--config", str(path))
    results = {(r["table"], r["check"]): r for r in json.loads(out)["results"]}
    return code, results, out + err


def attack_yaml(url: str, where: str, text: str) -> str:
    """A checks.yaml that puts `text` in custom.sql, the table's where, or a validity condition."""
    head = (f"version: 1\nwarehouses:\n  main: {{url: {json.dumps(url)}, max_connections: 1}}\n"
            "tables:\n  - name: victim\n")
    quoted = json.dumps(text)  # a JSON string is a YAML double-quoted scalar
    if where == "custom":
        return head + f"    checks:\n      - custom: {{name: attack, sql: {quoted}, max: 0}}\n"
    if where == "where":
        return head + f"    where: {quoted}\n    checks:\n      - row_count: {{min: 0}}\n"
    return head + f"    checks:\n      - validity: {{name: attack, condition: {quoted}}}\n"


def url_yaml(url: str) -> str:
    """A checks.yaml with one warehouse at `url` and one plain row count on the victim."""
    return (f"version: 1\nwarehouses:\n  main: {{url: {json.dumps(url)}}}\n"
            "tables:\n  - name: victim\n    checks:\n      - row_count: {min: 0}\n")


def assert_config_error(code: int, output: str, path: str) -> None:
    """Exit 2 with `file:line path: message` and no traceback."""
    assert code == 2, output
    assert "Traceback" not in output
    assert re.search(rf"checks\.yaml:\d+ {re.escape(path)}: ", output), output


def spellings(secret: str) -> set[str]:
    """A secret as printed raw, URL-encoded, in a repr() and in a JSON string."""
    return {secret, quote(secret, safe=""), quote_plus(secret), repr(secret)[1:-1],
            json.dumps(secret)[1:-1]}


def assert_no_secret(secret: str, output: str) -> None:
    """None of the secret's spellings appears in `output`."""
    leaked = sorted(s for s in spellings(secret) if s in output)
    assert not leaked, f"secret leaked as {leaked!r}"


def new_secret() -> str:
    """A unique password with characters that need escaping in URLs, SQL and JSON."""
    return f"Pw-{uuid.uuid4().hex[:12]}'@/x"


def fill(text: str, victim: Victim) -> str:
    """Put this test's paths into an attack's text."""
    return text.replace("{out}", str(victim.out)).replace("{db}", str(victim.db))


# --- (a) a second statement ------------------------------------------------------------------

SECOND_STATEMENT_CONFIG = [
    pytest.param("custom", "select count(*) from victim; drop table victim", {},
                 id="custom-two-statements"),
    pytest.param("custom", "select count(*) /* ; */ from victim; drop table victim", {},
                 id="custom-block-comment-then-second"),
    pytest.param("custom", "select count(*) from victim -- ;\n; delete from victim", {},
                 id="custom-line-comment-newline-second"),
    pytest.param("custom", "select count(*) from victim where email <> 'a;b'; drop table victim",
                 {}, id="custom-semicolon-in-literal-then-second"),
    pytest.param("custom", "select 1;;drop table victim", {}, id="custom-empty-statement-between"),
    pytest.param("custom", "select 1\x00; drop table victim", {}, id="custom-nul-byte-then-second"),
    pytest.param("custom", "select 1; COPY victim TO '{out}/second.csv'", {},
                 id="custom-second-copy"),
    pytest.param("custom", "select count(*) from victim${TAIL}", {"TAIL": "; drop table victim"},
                 id="var-tail-in-custom"),
    pytest.param("where", "1=1; drop table victim", {}, id="where-two-statements"),
    pytest.param("where", "id in (select 1; drop table victim)", {}, id="where-subquery-second"),
    pytest.param("where", "id = 1 /* ; */ ; delete from victim", {}, id="where-comment-then-second"),
    pytest.param("where", "id > ${N}", {"N": "0; delete from victim"}, id="var-in-where"),
    pytest.param("condition", "id > 0); drop table victim; select (1", {},
                 id="condition-close-paren-second"),
    pytest.param("condition", "email like '%;%'; delete from victim", {},
                 id="condition-literal-then-second"),
    pytest.param("condition", "${COND}", {"COND": "1=1; update victim set email = 'x'"},
                 id="var-in-condition"),
]


@pytest.mark.parametrize(("where", "text", "env"), SECOND_STATEMENT_CONFIG)
def test_second_statement_refused_at_load(where: str, text: str, env: dict[str, str],
                                          victim: Victim, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A config that smuggles a second statement is a config error and the file is untouched."""
    for name, value in env.items():
        monkeypatch.setenv(name, fill(value, victim))
    code, output = cli(capsys, victim.root, attack_yaml(victim.url, where, fill(text, victim)))
    victim.assert_untouched()
    assert_config_error(code, output, FIELD_PATH[where])


SECOND_STATEMENT_WIRE = [
    pytest.param("select 1; drop table victim", id="two-statements"),
    pytest.param("select 1 /* ; */; drop table victim", id="block-comment-then-second"),
    pytest.param("select 1 -- c\n; delete from victim", id="line-comment-newline-second"),
    pytest.param("select 'a;b'; drop table victim", id="semicolon-in-literal-then-second"),
    pytest.param("select 1;;drop table victim", id="empty-statement-between"),
    pytest.param("select 1\x00; drop table victim", id="nul-byte-then-second"),
    pytest.param("select 1; COPY victim TO '{out}/second.csv'", id="second-copy"),
    pytest.param("select 1; ATTACH '{out}/second.duckdb' AS second", id="second-attach"),
    pytest.param("select * from query('select 1; drop table victim')", id="query-two-statements"),
]


@pytest.mark.parametrize("sql", SECOND_STATEMENT_WIRE)
def test_second_statement_refused_by_engine(sql: str, victim: Victim) -> None:
    """Past the parser, DuckDB's own extract_statements refuses anything but one SELECT."""
    refused_by_engine(victim.url, fill(sql, victim))
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
def test_harmful_statement_refused_at_load(sql: str, target: str | None, victim: Victim,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A harmful custom.sql is a config error; nothing is written, no file is created."""
    code, output = cli(capsys, victim.root, attack_yaml(victim.url, "custom", fill(sql, victim)))
    victim.assert_untouched()
    assert target is None or not (victim.out / target).exists()
    assert_config_error(code, output, FIELD_PATH["custom"])


@pytest.mark.parametrize(("sql", "target"),
                         HARMFUL + [pytest.param(*p.values, id=p.id) for p in LOADER_MISSES])
def test_harmful_statement_refused_by_engine(sql: str, target: str | None,
                                             victim: Victim) -> None:
    """Past the parser, the statement filter, read_only and external access off refuse it."""
    refused_by_engine(victim.url, fill(sql, victim))
    victim.assert_untouched()
    assert target is None or not (victim.out / target).exists()


@pytest.mark.parametrize("sql", [
    pytest.param("select * from checkpoint()", id="checkpoint-function"),
    pytest.param("select * from truncate_duckdb_logs()", id="truncate-logs"),
])
def test_side_effect_table_function_refused_at_load(sql: str, victim: Victim,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """DuckDB's pragma-style table functions are side effects: a config error at load."""
    code, output = cli(capsys, victim.root, attack_yaml(victim.url, "custom", sql))
    victim.assert_untouched()
    assert_config_error(code, output, FIELD_PATH["custom"])


def test_side_effect_table_function_writes_nothing(victim: Victim) -> None:
    """Sent straight to the engine, checkpoint() runs on the read-only file and writes nothing."""
    target = warehouse(victim.url)
    try:
        for sql in ("select * from checkpoint()", "select * from truncate_duckdb_logs()"):
            target.fetch_all(sa.text(sql))
    finally:
        target.dispose()
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
                                            victim: Victim, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Side-effect functions in where, condition or via ${VAR} are config errors."""
    for name, value in env.items():
        monkeypatch.setenv(name, fill(value, victim))
    code, output = cli(capsys, victim.root, attack_yaml(victim.url, where, fill(text, victim)))
    victim.assert_untouched()
    assert_config_error(code, output, FIELD_PATH[where])


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
    target = warehouse(victim.url)
    try:
        before = outcome(target, probe)
        with pytest.raises(WarehouseError):
            target.fetch_all(sa.text(fill(attack, victim)))
        assert outcome(target, probe) == before
        for still_refused in ("delete from victim", "select * from read_text('/etc/hostname')"):
            with pytest.raises(WarehouseError):
                target.fetch_all(sa.text(still_refused))
    finally:
        target.dispose()
    victim.assert_untouched()


@pytest.mark.parametrize(("attack", "probe"), [
    *STATE,
    pytest.param("select setseed(0.5)", "select random()", id="setseed"),
])
def test_session_state_refused_at_load(attack: str, probe: str, victim: Victim,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The same state-changing statements as custom.sql are config errors."""
    del probe
    code, output = cli(capsys, victim.root, attack_yaml(victim.url, "custom", fill(attack, victim)))
    victim.assert_untouched()
    assert_config_error(code, output, FIELD_PATH["custom"])


def test_setseed_does_not_outlive_its_check(victim: Victim) -> None:
    """select setseed(0.5) in one check must not make the next check's random() predictable."""
    reference = duckdb.connect()
    reference.execute("select setseed(0.5)")
    seeded = reference.execute("select random()").fetchone()
    reference.close()
    target = warehouse(victim.url)
    try:
        target.fetch_all(sa.text("select setseed(0.5)"))  # accepted by loader and engine today
        following = target.fetch_all(sa.text("select random()"))
    finally:
        target.dispose()
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
    target = warehouse(victim.url)
    probe = f"select current_setting('{setting}')"
    try:
        before = outcome(target, probe)
        raw = target.engine().raw_connection()
        try:
            with pytest.raises(duckdb.Error, match="locked"):
                raw.cursor().execute(statement)
        finally:
            raw.close()
        assert outcome(target, probe) == before
    finally:
        target.dispose()
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
    target = warehouse(victim.url)
    try:
        raw = target.engine().raw_connection()
        try:
            with pytest.raises(duckdb.Error):
                raw.cursor().execute(fill(sql, victim))
        finally:
            raw.close()
    finally:
        target.dispose()
    victim.assert_untouched()
    assert target_file is None or not (victim.out / target_file).exists()


def test_pool_return_drops_temporary_objects(victim: Victim) -> None:
    """Temp tables, views, macros and variables made on a checkout (past the statement filter)
    are gone when the next check gets that pooled connection."""
    target = warehouse(victim.url)
    try:
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
    finally:
        target.dispose()
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
def test_url_override_refused(url: str, victim: Victim,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """A URL parameter that would undo read_only, external access or the lock is a config
    error, and the warehouse layer refuses to build it too."""
    url = fill(url, victim)
    code, output = cli(capsys, victim.root, url_yaml(url))
    assert_config_error(code, output, "warehouses.main.url")
    with pytest.raises(ValueError):
        Warehouse("attack", WarehouseSettings(url=url, allow_privileged_role=True))
    victim.assert_untouched()


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
    target = warehouse(fill(url, victim))
    try:
        assert target.fetch_all(sa.text("select count(*) from victim")) == [(len(ROWS),)]
        settings = target.fetch_all(sa.text(
            "select current_setting('access_mode'), current_setting('enable_external_access'),"
            " current_setting('lock_configuration')"))
        assert settings == [("read_only", False, True)]
        for write in ("delete from victim", "CREATE TABLE dq_new (a integer)",
                      "SET enable_external_access = true",
                      f"COPY victim TO '{victim.out}/url.csv'"):
            with pytest.raises(WarehouseError):
                target.fetch_all(sa.text(write))
    finally:
        target.dispose()
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
def test_url_that_cannot_open_creates_nothing(url: str, created: str | None, victim: Victim,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A URL naming no file, or smuggling SQL into an allowed parameter, fails as a check error
    (exit 3, or 2 at load) without creating a database or touching the victim."""
    code, output = cli(capsys, victim.root, url_yaml(fill(url, victim)))
    assert code in (2, 3), output
    assert "Traceback" not in output
    assert created is None or not Path(fill(created, victim)).exists()
    victim.assert_untouched()


REMOTE_URLS = [
    pytest.param("duckdb:///md:dq_attack", id="motherduck"),
    pytest.param("duckdb:///http://127.0.0.1:1/x.duckdb", id="http"),
    pytest.param("duckdb:///s3://dq-attack/x.duckdb", id="s3"),
    pytest.param("duckdb:///hf://datasets/dq/attack/x.duckdb", id="huggingface"),
]


@pytest.mark.parametrize("url", REMOTE_URLS)
def test_remote_database_url_refused_at_load(url: str, victim: Victim,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A URL whose database is remote (network, extension install) is a config error."""
    code, output = cli(capsys, victim.root, url_yaml(url), "validate")
    victim.assert_untouched()
    assert_config_error(code, output, "warehouses.main.url")


def test_remote_database_url_never_reaches_the_engine(victim: Victim) -> None:
    """The warehouse itself refuses a remote URL, so DuckDB never installs an extension."""
    with pytest.raises(ValueError, match="must be a local file"):
        warehouse("duckdb:///http://127.0.0.1:1/x.duckdb")
    victim.assert_untouched()  # no $HOME/.duckdb/extensions/<version>/<platform>


# --- (e) leaks -------------------------------------------------------------------------------

LEAK_PLACES = {  # where an attacker reuses the ${DQ_PW} of another warehouse's URL
    "check-name": "    checks:\n      - row_count: {name: \"${DQ_PW}\", min: 0}\n",
    "custom-sql-comment": "    checks:\n      - custom: {name: c, sql: \"select count(*) /* ${DQ_PW} */ "
                          "from victim\", max: 0}\n",
    "where-literal": "    where: \"email <> '${DQ_PW}'\"\n    checks:\n      - row_count: {min: 0}\n",
    "condition-literal": "    checks:\n      - validity: {name: v, condition: \"email = '${DQ_PW}'\"}\n",
    "in-list": "    checks:\n      - validity: {name: v, column: email, in: [\"${DQ_PW}\"]}\n",
    "regex": "    checks:\n      - validity: {name: v, column: email, regex: \"${DQ_PW}\"}\n",
    "column": "    checks:\n      - completeness: {columns: [\"${DQ_PW}\"]}\n",
    "table": "    table: \"${DQ_PW}\"\n    checks:\n      - row_count: {min: 0}\n",
}


def leak_yaml(victim: Victim, place: str) -> str:
    """A DuckDB warehouse plus an unreachable PostgreSQL one whose password is ${DQ_PW}."""
    return ("version: 1\nwarehouses:\n"
            f"  main: {{url: {json.dumps(victim.url)}}}\n"
            "  pg: {url: \"postgresql+psycopg://dq:${DQ_PW}@127.0.0.1:1/dq\", "
            "statement_timeout: 2s}\n"
            "tables:\n  - name: victim\n    warehouse: main\n" + LEAK_PLACES[place])


@pytest.mark.parametrize("place", sorted(LEAK_PLACES))
def test_secret_reused_outside_url_is_refused_unprinted(place: str, victim: Victim,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """A password ${VAR} reused in a DuckDB check is a config error that never prints it."""
    secret = new_secret()
    monkeypatch.setenv("DQ_PW", secret)
    for command in (("validate",), ("validate", "--show-sql"), ("run-once", "--no-export")):
        code, output = cli(capsys, victim.root, leak_yaml(victim, place), *command)
        assert code == 2, output
        assert SECRET_MESSAGE in output
        assert "Traceback" not in output
        assert_no_secret(secret, output)
    victim.assert_untouched()


def test_show_sql_and_run_never_print_the_secret(victim: Victim,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """--show-sql, --connect and run-once print SQL, errors and results but never the password."""
    secret = new_secret()
    monkeypatch.setenv("DQ_PW", secret)
    text = ("version: 1\nwarehouses:\n"
            f"  main: {{url: {json.dumps(victim.url)}, max_connections: 1}}\n"
            "  pg: {url: \"postgresql+psycopg://dq:${DQ_PW}@127.0.0.1:1/dq?connect_timeout=2\", "
            "statement_timeout: 2s}\n"
            "tables:\n  - name: victim\n    warehouse: main\n    checks:\n"
            "      - row_count: {min: 1}\n"
            "      - custom: {name: c, sql: \"select count(*) from victim where email like '%@%'\","
            " min: 1}\n"
            "  - name: far\n    warehouse: pg\n    table: victim\n    checks:\n"
            "      - row_count: {min: 1}\n")
    code, output = cli(capsys, victim.root, text, "validate", "--show-sql")
    assert code == 0, output
    assert "FROM victim" in output
    assert_no_secret(secret, output)
    code, results, output = run_json(capsys, victim.root, text)
    assert code == 3, output
    assert_no_secret(secret, output)
    assert results["victim", "row_count"]["status"] == "pass", output
    assert results["victim", "c"]["status"] == "pass", output
    assert results["far", "row_count"]["status"] == "error"
    # last: `validate --connect` does not dispose its warehouses; its DuckDB instance (config
    # locked) lives until garbage-collected, and blocks any other open of the file meanwhile
    code, output = cli(capsys, victim.root, text, "validate", "--connect")
    assert "Traceback" not in output
    assert_no_secret(secret, output)
    gc.collect()
    victim.assert_untouched()


def test_environment_readers_refused(victim: Victim, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """read_text('/proc/self/environ') and getenv() are refused at load and by the engine, and
    no environment value reaches the output."""
    secret = new_secret()
    monkeypatch.setenv("DQ_ENV_SECRET", secret)
    attacks = [("custom", "select * from read_text('/proc/self/environ')"),
               ("custom", "select getenv('DQ_ENV_SECRET')"),
               ("where", "length(getenv('DQ_ENV_SECRET')) > 0"),
               ("condition", "(select count(*) from read_text('/proc/self/environ')) > 0")]
    for where, text in attacks:
        code, output = cli(capsys, victim.root, attack_yaml(victim.url, where, text))
        assert_config_error(code, output, FIELD_PATH[where])
        assert_no_secret(secret, output)
    for sql in ("select * from read_text('/proc/self/environ')",
                "select content from read_text('/proc/self/environ')",
                "select getenv('DQ_ENV_SECRET')"):
        assert_no_secret(secret, refused_by_engine(victim.url, sql))
    victim.assert_untouched()


# The daemon: one real `dqmon run` per module; its log lines are read after SIGTERM.

DAEMON_TABLES = {2: "leak_quote", 3: "leak_plain", 4: "leak_newline"}


@dataclass
class DaemonRun:
    """What one run of the daemon wrote to stderr, and the secret it was given."""

    stderr: str
    secret: str
    code: int
    victim: Victim


def _events(text: str) -> list[dict[str, Any]]:
    """The JSON log events in `text` (lines that are not JSON are skipped)."""
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


@pytest.fixture(scope="module")
def daemon_run(tmp_path_factory: pytest.TempPathFactory,
               template: Victim) -> Iterator[DaemonRun]:
    """Run `dqmon run` on checks whose errors quote row values, until each table ran once."""
    victim = make_victim(tmp_path_factory.mktemp("duckdb_daemon"), template)
    secret = new_secret()
    tables = "".join(
        f"  - name: {name}\n    warehouse: main\n    table: victim\n    checks:\n"
        f"      - custom: {{name: leak, sql: \"select cast(email as integer) from victim "
        f"where id = {row}\", max: 0}}\n" for row, name in DAEMON_TABLES.items())
    config = victim.root / "checks.yaml"
    config.write_text(
        "version: 1\nwarehouses:\n"
        # one connection: a second pooled DuckDB connection fails today ("configuration has
        # been locked" from its own on-connect SET TimeZone), which is not what this tests
        f"  main: {{url: {json.dumps(victim.url)}, max_connections: 1}}\n"
        "  pg: {url: \"postgresql+psycopg://dq:${DQ_PW}@127.0.0.1:1/dq?connect_timeout=2\", "
        "statement_timeout: 2s}\n"
        "defaults: {schedule: every 1s}\n"
        "tables:\n" + tables +
        "  - name: far\n    warehouse: pg\n    table: victim\n    checks:\n"
        "      - row_count: {min: 0}\n")
    env = {**os.environ, "DQ_PW": secret, "HOME": str(victim.home), "PYTHONUNBUFFERED": "1"}
    err_path = victim.root / "daemon.stderr"
    wanted = {*DAEMON_TABLES.values(), "far"}
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dqmon", "run", "--config", str(config), "--listen",
             "127.0.0.1:0", "--log-format", "json", "--no-export", "--grace-period", "5s"],
            stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=victim.root)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                seen = {e.get("table") for e in _events(err_path.read_text())
                        if e.get("event") == "table checked"}
                if wanted <= seen:
                    break
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    yield DaemonRun(stderr=err_path.read_text(), secret=secret, code=code, victim=victim)


def test_daemon_ran_every_table_and_stopped_cleanly(daemon_run: DaemonRun) -> None:
    """The daemon checked every table (errors included), exited 0 on SIGTERM, changed nothing;
    every stderr line is a JSON log event (nothing bypassed the scrubbing formatter)."""
    events = [json.loads(line) for line in daemon_run.stderr.splitlines()]
    checked = {e["table"] for e in events if e["event"] == "table checked"}
    assert {*DAEMON_TABLES.values(), "far"} <= checked, daemon_run.stderr
    assert daemon_run.code == 0
    assert "Traceback" not in daemon_run.stderr
    daemon_run.victim.assert_untouched()


@pytest.mark.parametrize("row", [
    pytest.param(2, id="leak_quote"),
    pytest.param(3, id="leak_plain"),
    pytest.param(4, id="leak_newline"),
])
def test_daemon_log_replaces_row_value_by_placeholder(row: int, daemon_run: DaemonRun) -> None:
    """DuckDB's "Could not convert string '<row value>' to INT32" reaches the log as ?."""
    errors = [e["error"] for e in _events(daemon_run.stderr)
              if e.get("table") == DAEMON_TABLES[row] and "error" in e]
    assert errors, daemon_run.stderr
    assert all(e.startswith("Conversion Error: Could not convert string ?") for e in errors), errors
    for fragment in ROW_FRAGMENTS[row]:
        assert fragment not in daemon_run.stderr


def test_daemon_log_never_shows_the_password(daemon_run: DaemonRun) -> None:
    """The unreachable PostgreSQL warehouse is logged with its URL masked, never its password."""
    assert_no_secret(daemon_run.secret, daemon_run.stderr)
    assert '"warehouse": "pg"' in daemon_run.stderr


def test_run_once_reports_the_row_error(victim: Victim,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """run-once reports the same failing check as an error (its stdout may quote the value)."""
    text = attack_yaml(victim.url, "custom", "select cast(email as integer) from victim "
                                             "where id = 3")
    code, results, output = run_json(capsys, victim.root, text)
    assert code == 3, output
    result = results["victim", "attack"]
    assert result["status"] == "error"
    assert result["error"].startswith("Conversion Error: Could not convert string")
    victim.assert_untouched()
