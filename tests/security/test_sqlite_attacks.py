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

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
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
    """A SQLite file alone in its directory, plus a directory for files attacks try to create."""

    root: Path
    db: Path
    out: Path
    before: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The plain SQLAlchemy URL of the victim file."""
        return f"sqlite:///{self.db}"

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
        return {"rows": rows, "schema": schema, "pragmas": pragmas,
                "sha256": hashlib.sha256(self.db.read_bytes()).hexdigest(),
                "mtime_ns": self.db.stat().st_mtime_ns,
                "db_dir": sorted(p.name for p in self.db.parent.iterdir()),
                "out": sorted(str(p.relative_to(self.out)) for p in self.out.rglob("*"))}

    def assert_untouched(self) -> None:
        """Fail unless rows, schema, bytes, mtime and the directories are as before."""
        assert self.state() == self.before


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
    os.utime(db, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    victim = Victim(root=root, db=db, out=root / "out")
    victim.before = victim.state()
    assert victim.before["out"] == [] and victim.before["db_dir"] == ["victim.db"]
    return victim


@pytest.fixture
def victim(tmp_path: Path) -> Victim:
    """A fresh victim database for one test."""
    return make_victim(tmp_path)


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
    """Put this test's output directory into an attack's text."""
    return text.replace("{out}", str(victim.out))


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
    pytest.param("custom", "select 1; ATTACH '{out}/second.db' AS second", {},
                 id="custom-second-attach"),
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
    assert_config_error(code, output, FIELD_PATH[where])
    victim.assert_untouched()


SECOND_STATEMENT_WIRE = [
    pytest.param("select 1; drop table victim", id="two-statements"),
    pytest.param("select 1 /* ; */; drop table victim", id="block-comment-then-second"),
    pytest.param("select 1 -- c\n; delete from victim", id="line-comment-newline-second"),
    pytest.param("select 'a;b'; drop table victim", id="semicolon-in-literal-then-second"),
    pytest.param("select 1;;drop table victim", id="empty-statement-between"),
    pytest.param("select 1\x00; drop table victim", id="nul-byte-then-second"),
    pytest.param("select 1; ATTACH '{out}/second.db' AS second", id="second-attach"),
    pytest.param("select 1; PRAGMA query_only = 0; delete from victim", id="three-statements"),
]


@pytest.mark.parametrize("sql", SECOND_STATEMENT_WIRE)
def test_second_statement_refused_by_engine(sql: str, victim: Victim) -> None:
    """Past the parser, sqlite3 runs one statement per call: the second one never runs."""
    refused_by_engine(victim.url, fill(sql, victim))
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
    target = warehouse(victim.url)
    try:
        raw = target.engine().raw_connection()
        try:
            with pytest.raises(sqlite3.DatabaseError):
                raw.dbapi_connection.executescript(fill(script, victim))
        finally:
            raw.close()
    finally:
        target.dispose()
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
def test_harmful_statement_refused_at_load(sql: str, target: str | None, victim: Victim,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A harmful custom.sql is a config error; nothing is written, no file is created."""
    text = fill(sql, victim).replace("{db}", str(victim.db))
    code, output = cli(capsys, victim.root, attack_yaml(victim.url, "custom", text))
    assert_config_error(code, output, FIELD_PATH["custom"])
    victim.assert_untouched()
    assert target is None or not (victim.out / target).exists()


@pytest.mark.parametrize(("sql", "target"), HARMFUL)
def test_harmful_statement_refused_by_engine(sql: str, target: str | None,
                                             victim: Victim) -> None:
    """Past the parser, the read-only session (mode=ro, query_only, authorizer) refuses it."""
    refused_by_engine(victim.url, fill(sql, victim).replace("{db}", str(victim.db)))
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
                                            victim: Victim, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Side-effect functions in where, condition or via ${VAR} are config errors."""
    for name, value in env.items():
        monkeypatch.setenv(name, fill(value, victim))
    code, output = cli(capsys, victim.root, attack_yaml(victim.url, where, fill(text, victim)))
    assert_config_error(code, output, FIELD_PATH[where])
    victim.assert_untouched()


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
    sees the session exactly as before."""
    target = warehouse(victim.url)
    try:
        before = outcome(target, probe)
        with pytest.raises(WarehouseError):
            target.fetch_all(sa.text(fill(attack, victim)))
        assert outcome(target, probe) == before
        with pytest.raises(WarehouseError):  # still read-only on the very same connection
            target.fetch_all(sa.text("delete from victim"))
    finally:
        target.dispose()
    victim.assert_untouched()


@pytest.mark.parametrize(("attack", "probe"), STATE)
def test_session_state_refused_at_load(attack: str, probe: str, victim: Victim,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The same state-changing statements as custom.sql are config errors."""
    del probe
    code, output = cli(capsys, victim.root, attack_yaml(victim.url, "custom", fill(attack, victim)))
    assert_config_error(code, output, FIELD_PATH["custom"])
    victim.assert_untouched()


def test_no_lock_outlives_a_check(victim: Victim) -> None:
    """After checks (and refused BEGINs) on a live pooled connection, another writer is not blocked."""
    target = warehouse(victim.url)
    try:
        assert target.fetch_all(sa.text("select count(*) from victim")) == [(len(ROWS),)]
        for begin in ("BEGIN EXCLUSIVE", "BEGIN IMMEDIATE", "BEGIN"):
            with pytest.raises(WarehouseError):
                target.fetch_all(sa.text(begin))
        assert target.fetch_all(sa.text("select max(id) from victim")) == [(len(ROWS),)]
        victim.assert_untouched()
        other = sqlite3.connect(victim.db, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")  # 'database is locked' if dqmon held any lock
            other.execute("ROLLBACK")
        finally:
            other.close()
    finally:
        target.dispose()


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
def test_url_override_refused(url: str, victim: Victim, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """A URL that would open the file writable is a config error, and the warehouse layer
    refuses to build it too; no file is created."""
    monkeypatch.chdir(victim.db.parent)
    url = fill(url, victim).replace("{db}", str(victim.db))
    body = "tables:\n  - name: victim\n    checks:\n      - row_count: {min: 0}\n"
    text = f"version: 1\nwarehouses:\n  main: {{url: {json.dumps(url)}}}\n{body}"
    code, output = cli(capsys, victim.root, text)
    assert_config_error(code, output, "warehouses.main.url")
    with pytest.raises(ValueError):
        Warehouse("attack", WarehouseSettings(url=url, allow_privileged_role=True))
    victim.assert_untouched()


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
    target = warehouse(url)
    try:
        assert target.fetch_all(sa.text("select count(*) from victim")) == [(len(ROWS),)]
        for write in ("delete from victim", "create table dq_new (a)", "PRAGMA query_only = 0",
                      "PRAGMA user_version = 9"):
            with pytest.raises(WarehouseError):
                target.fetch_all(sa.text(write))
    finally:
        target.dispose()
    victim.assert_untouched()


def test_memory_url_is_read_only_too(victim: Victim) -> None:
    """An in-memory database (nothing on disk) still gets query_only and the authorizer."""
    for url in ("sqlite://", "sqlite:///:memory:"):
        target = warehouse(url)
        try:
            assert target.fetch_all(sa.text("select 1")) == [(1,)]
            for write in ("create table dq_new (a)", f"ATTACH '{victim.out}/mem.db' AS m",
                          "PRAGMA query_only = 0"):
                with pytest.raises(WarehouseError):
                    target.fetch_all(sa.text(write))
        finally:
            target.dispose()
    victim.assert_untouched()


@pytest.mark.parametrize(("url", "created"), [
    pytest.param("sqlite:///file:{db}", "file:{db}", id="absolute-file-prefix-is-a-path"),
    pytest.param("sqlite:///file:new.db", "new.db", id="relative-file-prefix-new-file"),
    pytest.param("sqlite:///{db}%3Fmode=rwc", "victim.db?mode=rwc", id="percent-encoded-question"),
    pytest.param("sqlite:///{out}/new.db", "{out}/new.db", id="missing-file"),
    pytest.param("sqlite:///{db}%23frag", "victim.db#frag", id="percent-encoded-hash"),
])
def test_url_to_missing_file_creates_nothing(url: str, created: str, victim: Victim,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A URL that names no existing file is a check error (exit 3): no database is created,
    and a `file:` or percent-encoded `?` is never read as a URI that reopens the victim."""
    monkeypatch.chdir(victim.db.parent)
    url = fill(url, victim).replace("{db}", str(victim.db))
    body = "tables:\n  - name: victim\n    checks:\n      - row_count: {min: 0}\n"
    text = f"version: 1\nwarehouses:\n  main: {{url: {json.dumps(url)}}}\n{body}"
    code, output = cli(capsys, victim.root, text)
    assert code == 3, output
    assert "SQLite database file not found" in output
    assert "Traceback" not in output
    assert not Path(fill(created, victim).replace("{db}", str(victim.db))).exists()
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
    target = warehouse(url)
    try:
        tables = target.fetch_all(sa.text("select name from sqlite_master where type = 'table' "
                                          "order by name"))
        assert tables == [("decoy_marker",), ("victim",)]  # the decoy, not the victim
        for write in ("delete from victim", "drop table decoy_marker", "PRAGMA query_only = 0"):
            with pytest.raises(WarehouseError):
                target.fetch_all(sa.text(write))
    finally:
        target.dispose()
    assert decoy.read_bytes() == decoy_bytes
    assert sorted(p.name for p in decoys.iterdir()) == [name]
    victim.assert_untouched()


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
    """A SQLite warehouse plus an unreachable PostgreSQL one whose password is ${DQ_PW}."""
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
    """A password ${VAR} reused in a SQLite check is a config error that never prints it."""
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
            f"  main: {{url: {json.dumps(victim.url)}}}\n"
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
    code, output = cli(capsys, victim.root, text, "validate", "--connect")
    assert "Traceback" not in output
    assert_no_secret(secret, output)
    code, results, output = run_json(capsys, victim.root, text)
    assert code == 3, output
    assert_no_secret(secret, output)
    assert results["victim", "row_count"]["status"] == "pass", output
    assert results["victim", "c"]["status"] == "pass", output
    assert results["far", "row_count"]["status"] == "error"
    victim.assert_untouched()


def test_readfile_of_environment_refused(victim: Victim, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """readfile('/proc/self/environ') is refused at load and by the engine; no env value leaks."""
    secret = new_secret()
    monkeypatch.setenv("DQ_ENV_SECRET", secret)
    for where, text in (("custom", "select readfile('/proc/self/environ')"),
                        ("where", "length(readfile('/proc/self/environ')) > 0"),
                        ("condition", "instr(readfile('/proc/self/environ'), 'DQ_') > 0")):
        code, output = cli(capsys, victim.root, attack_yaml(victim.url, where, text))
        assert_config_error(code, output, FIELD_PATH[where])
        assert_no_secret(secret, output)
    message = refused_by_engine(victim.url, "select readfile('/proc/self/environ')")
    assert_no_secret(secret, message)
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


@pytest.fixture(scope="module")
def daemon_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonRun]:
    """Run `dqmon run` on checks whose errors quote row values, until each table ran once."""
    victim = make_victim(tmp_path_factory.mktemp("sqlite_daemon"))
    secret = new_secret()
    tables = "".join(
        f"  - name: {name}\n    warehouse: main\n    table: victim\n    checks:\n"
        f"      - custom: {{name: leak, sql: \"select json_extract('{{}}', email) from victim "
        f"where id = {row}\", max: 0}}\n" for row, name in DAEMON_TABLES.items())
    config = victim.root / "checks.yaml"
    config.write_text(
        "version: 1\nwarehouses:\n"
        f"  main: {{url: {json.dumps(victim.url)}}}\n"
        "  pg: {url: \"postgresql+psycopg://dq:${DQ_PW}@127.0.0.1:1/dq?connect_timeout=2\", "
        "statement_timeout: 2s}\n"
        "defaults: {schedule: every 1s}\n"
        "tables:\n" + tables +
        "  - name: far\n    warehouse: pg\n    table: victim\n    checks:\n"
        "      - row_count: {min: 0}\n")
    env = {**os.environ, "DQ_PW": secret, "PYTHONUNBUFFERED": "1"}
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
                seen = {json.loads(line).get("table") for line in
                        err_path.read_text().splitlines() if '"table checked"' in line}
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
    """The daemon checked every table (errors included), exited 0 on SIGTERM, changed nothing."""
    events = [json.loads(line) for line in daemon_run.stderr.splitlines()]
    checked = {e["table"] for e in events if e["event"] == "table checked"}
    assert {*DAEMON_TABLES.values(), "far"} <= checked, daemon_run.stderr
    assert daemon_run.code == 0
    assert "Traceback" not in daemon_run.stderr
    daemon_run.victim.assert_untouched()


@pytest.mark.parametrize("row", [pytest.param(row, id=name) for row, name in DAEMON_TABLES.items()])
def test_daemon_log_replaces_row_value_by_placeholder(row: int, daemon_run: DaemonRun) -> None:
    """A SQLite error quoting a row value ("JSON path error near '...'") reaches the log as ?."""
    for fragment in ROW_FRAGMENTS[row]:
        assert fragment not in daemon_run.stderr
    errors = [json.loads(line)["error"] for line in daemon_run.stderr.splitlines()
              if f'"table": "{DAEMON_TABLES[row]}"' in line and '"error"' in line]
    assert errors, daemon_run.stderr
    assert all("JSON path error near ?" in e for e in errors), errors


def test_daemon_log_never_shows_the_password(daemon_run: DaemonRun) -> None:
    """The unreachable PostgreSQL warehouse is logged with its URL masked, never its password."""
    assert_no_secret(daemon_run.secret, daemon_run.stderr)
    assert '"warehouse": "pg"' in daemon_run.stderr


def test_run_once_reports_the_row_error(victim: Victim,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """run-once reports the same failing check as an error (its stdout may quote the value)."""
    text = attack_yaml(victim.url, "custom",
                       "select json_extract('{}', email) from victim where id = 3")
    code, results, output = run_json(capsys, victim.root, text)
    assert code == 3, output
    result = results["victim", "attack"]
    assert result["status"] == "error"
    assert result["error"].startswith("JSON path error near")
    victim.assert_untouched()
