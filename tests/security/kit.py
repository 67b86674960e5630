"""What the adversarial corpora (SQLite, DuckDB, MariaDB, PostgreSQL; issue 8) share.

- secrets: a fresh one, every spelling that gives it away, and the assertion that none is printed;
- the CLI: checks.yaml written next to a victim and run in-process; an attack put into custom.sql,
  a table's where or a validity condition; the config-error assertion;
- dqmon's own warehouse object, one pooled connection, for attacks sent past the parser;
- the file databases (SQLite, DuckDB): the victim's directories and file state, the vectors both
  must refuse, the leak places and the procedures their tests run;
- the daemon: a real `python -m dqmon run` subprocess, stopped with SIGTERM once every table has
  been checked, and its JSON log events.

Dialect-specific victims, vectors and verdicts stay in each test module.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

import pytest
import sqlalchemy as sa

from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.errors import WarehouseError
from dqmon.warehouse import Warehouse

# The in-process CLI runner and the config writer live in tests/integration/helpers.py (tests/
# has no packages); the test modules take both from here.
_INTEGRATION = str(Path(__file__).resolve().parents[1] / "integration")
if _INTEGRATION not in sys.path:
    sys.path.append(_INTEGRATION)
from helpers import run_cli, write_config  # noqa: E402, F401

FIELD_PATH = {"custom": "tables[0].checks[0].custom.sql", "where": "tables[0].where",
              "condition": "tables[0].checks[0].validity.condition",
              # issue 10: a check's own where (in the scan) and a statistic's (its own query)
              "check_where": "tables[0].checks[0].completeness.where",
              "stat_where": "tables[0].checks[0].statistic.where"}
SECRET_MESSAGE = "holds the value of a secret"


# --- secrets -----------------------------------------------------------------------------------

def new_secret(tail: str = "'@/x") -> str:
    """A unique password; the default tail needs escaping in URLs, SQL and JSON."""
    return f"Pw-{uuid.uuid4().hex[:12]}{tail}"


def spellings(secret: str) -> set[str]:
    """A secret as printed raw, URL-encoded, in a repr() and in a JSON string."""
    return {secret, quote(secret, safe=""), quote_plus(secret), repr(secret)[1:-1],
            json.dumps(secret)[1:-1]}


def assert_no_secret(secret: str, *outputs: str) -> None:
    """None of the secret's spellings appears in any of `outputs`."""
    for output in outputs:
        leaked = sorted(s for s in spellings(secret) if s in output)
        assert not leaked, f"secret leaked as {leaked!r} in:\n{output}"


# --- the CLI on an attacker's checks.yaml ------------------------------------------------------

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


def attack_tables(where: str, value: str, *, most: int) -> str:
    """The `tables:` entry of table `victim` that puts `value` (a YAML scalar) into custom.sql
    (a check with `max: most`), the table's where, a validity condition, a completeness
    check's own where (check_where) or a distinct_count statistic's (stat_where)."""
    head = "  - name: victim\n"
    if where == "custom":
        return head + f"    checks:\n      - custom: {{name: attack, sql: {value}, max: {most}}}\n"
    if where == "where":
        return head + f"    where: {value}\n    checks:\n      - row_count: {{min: 0}}\n"
    if where == "check_where":
        return head + f"    checks:\n      - completeness: {{columns: [id], where: {value}}}\n"
    if where == "stat_where":
        return head + ("    checks:\n      - statistic: {column: id, stat: distinct_count, "
                       f"min: 0, where: {value}}}\n")
    return head + f"    checks:\n      - validity: {{name: attack, condition: {value}}}\n"


def attack_yaml(url: str, where: str, text: str) -> str:
    """A checks.yaml that puts `text` in custom.sql, the table's where, or a validity condition."""
    return (f"version: 1\nwarehouses:\n  main: {{url: {json.dumps(url)}, max_connections: 1}}\n"
            "tables:\n" + attack_tables(where, json.dumps(text), most=0))  # JSON is YAML


def url_yaml(url: str) -> str:
    """A checks.yaml with one warehouse at `url` and one plain row count on the victim."""
    return (f"version: 1\nwarehouses:\n  main: {{url: {json.dumps(url)}}}\n"
            "tables:\n  - name: victim\n    checks:\n      - row_count: {min: 0}\n")


def assert_config_error(code: int, output: str, path: str) -> None:
    """Exit 2 with `file:line path: message` and no traceback."""
    assert code == 2, output
    assert "Traceback" not in output
    assert re.search(rf"checks\.yaml:\d+ {re.escape(path)}: ", output), output


# --- dqmon's own warehouse, past the parser ----------------------------------------------------

def warehouse(url: str) -> Warehouse:
    """dqmon's own warehouse object; one pooled connection, so every fetch reuses the session."""
    return Warehouse("attack", WarehouseSettings(url=url, allow_privileged_role=True,
                                                 max_connections=1))


@contextmanager
def opened(url: str) -> Iterator[Warehouse]:
    """warehouse(url), disposed on the way out."""
    target = warehouse(url)
    try:
        yield target
    finally:
        target.dispose()


def refused_by_engine(url: str, sql: str) -> str:
    """Send `sql` straight to Warehouse.fetch_all; it must raise WarehouseError; return why."""
    with opened(url) as target, pytest.raises(WarehouseError) as caught:
        target.fetch_all(sa.text(sql))
    return str(caught.value)


def assert_all_refused(target: Warehouse, statements: Iterable[str]) -> None:
    """Every statement sent to `target` raises WarehouseError."""
    for sql in statements:
        with pytest.raises(WarehouseError):
            target.fetch_all(sa.text(sql))


def outcome(target: Warehouse, sql: str) -> tuple[str, Any]:
    """Rows of `sql`, or the error it raised (to compare before and after an attack)."""
    try:
        return "rows", target.fetch_all(sa.text(sql))
    except WarehouseError as exc:
        return "error", str(exc)


# --- the daemon --------------------------------------------------------------------------------

@dataclass
class DaemonRun:
    """What one real `dqmon run` wrote to stderr, how it exited, and the secret it was given."""

    stderr: str
    code: int
    secret: str = ""
    victim: Any = None

    @property
    def events(self) -> list[dict[str, Any]]:
        """The JSON log events (lines starting with `{`)."""
        return log_events(self.stderr)


def log_events(text: str) -> list[dict[str, Any]]:
    """The JSON log events in a daemon's stderr (lines that do not start with `{` are skipped)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _checked_tables(text: str) -> set[str]:
    """Tables with a "table checked" event so far (a line still being written is skipped)."""
    seen = set()
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "table checked":
            seen.add(event.get("table"))
    return seen


def run_daemon(config: Path, tables: Iterable[str], *, env: dict[str, str] | None = None,
               args: Sequence[str] = (), strict: bool = False, wait: float = 30,
               stop: float = 20) -> DaemonRun:
    """Run `python -m dqmon run --config CONFIG` (JSON logs, no export, any free port) in the
    config's directory until every table in `tables` was checked once or `wait` seconds have
    passed; SIGTERM it and give it `stop` seconds to exit. `strict`: fail at once when the
    daemon exits early or `wait` runs out."""
    log_path = config.with_name("daemon.stderr")
    wanted = set(tables)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dqmon", "run", "--config", str(config), "--listen",
             "127.0.0.1:0", "--log-format", "json", "--no-export", *args],
            stdout=subprocess.DEVNULL, stderr=log, cwd=config.parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        try:
            deadline = time.monotonic() + wait
            while not wanted <= _checked_tables(log_path.read_text()):
                if strict:
                    assert proc.poll() is None, f"daemon exited early:\n{log_path.read_text()}"
                    assert time.monotonic() < deadline, (
                        f"no run of every table:\n{log_path.read_text()}")
                elif proc.poll() is not None or time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=stop)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return DaemonRun(stderr=log_path.read_text(), code=code)


# --- file databases (SQLite, DuckDB) -----------------------------------------------------------

ROWS = [(1, "alice@example.com"), (2, "o'hara.leak@example.org"),
        (3, "zed.rowvalue@example.net"), (4, "first.line@example.com\nsecond.line")]
# Fragments of row values that must never reach the daemon's log lines.
ROW_FRAGMENTS = {2: ("hara.leak",), 3: ("zed.rowvalue",), 4: ("first.line", "second.line")}
OLD_MTIME_NS = 1_000_000_000 * 10**9  # 2001: any write to the file moves its mtime


@dataclass
class FileVictim:
    """A database file alone in its directory, plus a directory for files attacks try to create.
    A dialect adds what its own fresh read-only connection must find unchanged (`state`)."""

    scheme: ClassVar[str]
    root: Path
    db: Path
    out: Path
    before: dict[str, Any] = field(default_factory=dict, kw_only=True)

    @property
    def url(self) -> str:
        """The plain SQLAlchemy URL of the victim file."""
        return f"{self.scheme}:///{self.db}"

    def state(self) -> dict[str, Any]:
        """The file's bytes and mtime, the database directory and the output directory."""
        return {"sha256": hashlib.sha256(self.db.read_bytes()).hexdigest(),
                "mtime_ns": self.db.stat().st_mtime_ns,
                "db_dir": sorted(p.name for p in self.db.parent.iterdir()),
                "out": sorted(str(p.relative_to(self.out)) for p in self.out.rglob("*"))}

    def settle(self, before: dict[str, Any] | None = None) -> None:
        """Give the built file an old mtime and record its state (or take `before` as it)."""
        os.utime(self.db, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
        self.before = dict(before) if before is not None else self.state()
        assert self.before["out"] == [] and self.before["db_dir"] == [self.db.name]

    def assert_untouched(self) -> None:
        """Fail unless everything `state` reads is as before."""
        assert self.state() == self.before

    def fill(self, text: str) -> str:
        """Put this test's paths ({out}, {db}) into an attack's text."""
        return text.replace("{out}", str(self.out)).replace("{db}", str(self.db))


# Second statements, as an attacker writes them into checks.yaml: the custom.sql ones, then
# (after the dialect's own) those in ${VAR}, where and condition.
_SECOND_IN_CUSTOM = [
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
]
_SECOND_ELSEWHERE = [
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
    pytest.param("check_where", "1=1; drop table victim", {}, id="check-where-two-statements"),
    pytest.param("check_where", "id > 0) then 1 end); delete from victim; select (case when (1",
                 {}, id="check-where-close-case-second"),
    pytest.param("check_where", "${W}", {"W": "1=1; update victim set email = 'x'"},
                 id="var-in-check-where"),
    pytest.param("stat_where", "id in (select 1; drop table victim)", {},
                 id="stat-where-subquery-second"),
]
# The same kinds sent straight to the engine.
_SECOND_ON_THE_WIRE = [
    pytest.param("select 1; drop table victim", id="two-statements"),
    pytest.param("select 1 /* ; */; drop table victim", id="block-comment-then-second"),
    pytest.param("select 1 -- c\n; delete from victim", id="line-comment-newline-second"),
    pytest.param("select 'a;b'; drop table victim", id="semicolon-in-literal-then-second"),
    pytest.param("select 1;;drop table victim", id="empty-statement-between"),
    pytest.param("select 1\x00; drop table victim", id="nul-byte-then-second"),
]


def second_statement_config(*own: Any) -> list[Any]:
    """(where, text, env) vectors for checks.yaml, with the dialect's `own` custom.sql ones."""
    return [*_SECOND_IN_CUSTOM, *own, *_SECOND_ELSEWHERE]


def second_statement_wire(*own: Any) -> list[Any]:
    """SQL vectors for Warehouse.fetch_all, followed by the dialect's `own`."""
    return [*_SECOND_ON_THE_WIRE, *own]


def session_state_not_kept(victim: FileVictim, attack: str, probe: str,
                           still_refused: Sequence[str]) -> None:
    """`attack` is refused, the next fetch on the same pooled connection answers `probe` as
    before, and every `still_refused` statement is still refused there; the file is untouched."""
    with opened(victim.url) as target:
        before = outcome(target, probe)
        with pytest.raises(WarehouseError):
            target.fetch_all(sa.text(victim.fill(attack)))
        assert outcome(target, probe) == before
        assert_all_refused(target, still_refused)
    victim.assert_untouched()


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
# A second warehouse that never answers, whose URL holds the password ${DQ_PW}.
UNREACHABLE_PG = ("  pg: {url: \"postgresql+psycopg://dq:${DQ_PW}@127.0.0.1:1/dq"
                  "?connect_timeout=2\", statement_timeout: 2s}\n")
FAR = "  - name: far\n    warehouse: pg\n    table: victim\n    checks:\n"


def leak_yaml(url: str, place: str) -> str:
    """The victim's warehouse plus an unreachable PostgreSQL one whose password is ${DQ_PW}."""
    return ("version: 1\nwarehouses:\n"
            f"  main: {{url: {json.dumps(url)}}}\n"
            "  pg: {url: \"postgresql+psycopg://dq:${DQ_PW}@127.0.0.1:1/dq\", "
            "statement_timeout: 2s}\n"
            "tables:\n  - name: victim\n    warehouse: main\n" + LEAK_PLACES[place])


def with_unreachable_pg(main: str, tables: str, defaults: str = "") -> str:
    """A checks.yaml with warehouse `main` (its YAML mapping) and UNREACHABLE_PG."""
    return f"version: 1\nwarehouses:\n  main: {main}\n{UNREACHABLE_PG}{defaults}tables:\n{tables}"


@dataclass
class Loader:
    """The real CLI on an attacker's checks.yaml, written next to a file victim."""

    victim: FileVictim
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def cli(self, text: str, *command: str) -> tuple[int, str]:
        """Run `dqmon COMMAND` (run-once by default) on `text`; return (code, output)."""
        return cli(self.capsys, self.victim.root, text, *command)

    def run_json(self, text: str) -> tuple[int, dict[tuple[str, str], dict[str, Any]], str]:
        """run-once --format json on `text`: (code, results by (table, check), output)."""
        return run_json(self.capsys, self.victim.root, text)

    def config_error(self, where: str, text: str) -> str:
        """`text` in `where` is a config error naming that field; return the output."""
        code, output = self.cli(attack_yaml(self.victim.url, where, self.victim.fill(text)))
        assert_config_error(code, output, FIELD_PATH[where])
        return output

    def refuses(self, where: str, text: str, env: dict[str, str] | None = None) -> None:
        """With `env` set (paths filled in), `text` in `where` is a config error and the victim
        is untouched."""
        for name, value in (env or {}).items():
            self.monkeypatch.setenv(name, self.victim.fill(value))
        self.config_error(where, text)
        self.victim.assert_untouched()

    def url_refused(self, url: str) -> None:
        """`url` (paths filled in) is a config error, the warehouse layer refuses to build it
        too, and the victim is untouched."""
        url = self.victim.fill(url)
        code, output = self.cli(url_yaml(url))
        assert_config_error(code, output, "warehouses.main.url")
        with pytest.raises(ValueError):
            Warehouse("attack", WarehouseSettings(url=url, allow_privileged_role=True))
        self.victim.assert_untouched()

    def secret_reuse_refused(self, place: str) -> None:
        """A password ${VAR} reused at `place` is a config error that never prints it."""
        secret = new_secret()
        self.monkeypatch.setenv("DQ_PW", secret)
        for command in (("validate",), ("validate", "--show-sql"), ("run-once", "--no-export")):
            code, output = self.cli(leak_yaml(self.victim.url, place), *command)
            assert code == 2, output
            assert SECRET_MESSAGE in output
            assert "Traceback" not in output
            assert_no_secret(secret, output)
        self.victim.assert_untouched()

    def secret_never_printed(self, main_extra: str = "") -> None:
        """validate --show-sql, run-once and validate --connect on the victim's warehouse (with
        `main_extra` settings) and an unreachable one print SQL, errors and results, never the
        unreachable one's password."""
        secret = new_secret()
        self.monkeypatch.setenv("DQ_PW", secret)
        main = f"{{url: {json.dumps(self.victim.url)}{main_extra}}}"
        text = with_unreachable_pg(main, (
            "  - name: victim\n    warehouse: main\n    checks:\n"
            "      - row_count: {min: 1}\n"
            "      - custom: {name: c, sql: \"select count(*) from victim where email like '%@%'\","
            " min: 1}\n" + FAR + "      - row_count: {min: 1}\n"))
        code, output = self.cli(text, "validate", "--show-sql")
        assert code == 0, output
        assert "FROM victim" in output
        assert_no_secret(secret, output)
        code, results, output = self.run_json(text)
        assert code == 3, output
        assert_no_secret(secret, output)
        assert results["victim", "row_count"]["status"] == "pass", output
        assert results["victim", "c"]["status"] == "pass", output
        assert results["far", "row_count"]["status"] == "error"
        # last: `validate --connect` does not dispose its warehouses; a DuckDB instance (config
        # locked) lives until garbage-collected, and blocks any other open of the file meanwhile
        code, output = self.cli(text, "validate", "--connect")
        assert "Traceback" not in output
        assert_no_secret(secret, output)
        gc.collect()
        self.victim.assert_untouched()

    def environment_not_read(self, attacks: Sequence[tuple[str, str]],
                             engine: Sequence[str]) -> None:
        """With a secret in the environment, each (where, text) of `attacks` is a config error
        and each `engine` statement is refused by the engine; no output shows the secret."""
        secret = new_secret()
        self.monkeypatch.setenv("DQ_ENV_SECRET", secret)
        for where, text in attacks:
            assert_no_secret(secret, self.config_error(where, text))
        for sql in engine:
            assert_no_secret(secret, refused_by_engine(self.victim.url, sql))
        self.victim.assert_untouched()

    def row_error_reported(self, sql: str, error: str) -> None:
        """run-once reports the custom check `sql` as an error starting with `error` (its
        stdout may quote the row value)."""
        code, results, output = self.run_json(attack_yaml(self.victim.url, "custom", sql))
        assert code == 3, output
        result = results["victim", "attack"]
        assert result["status"] == "error"
        assert result["error"].startswith(error)
        self.victim.assert_untouched()


@pytest.fixture
def loader(victim: FileVictim, capsys: pytest.CaptureFixture[str],
           monkeypatch: pytest.MonkeyPatch) -> Loader:
    """The real CLI on checks.yaml files written next to the test's victim (the test module's
    own `victim` fixture); a module takes it in as `loader = kit.loader`."""
    return Loader(victim, capsys, monkeypatch)


# The daemon on a file victim: per DAEMON_TABLES row a table whose check's error quotes that row's
# value, and the unreachable warehouse's table `far`; checked every second.
DAEMON_TABLES = {2: "leak_quote", 3: "leak_plain", 4: "leak_newline"}


def file_daemon_run(victim: FileVictim, leak_sql: str, *, main_extra: str = "",
                    env: dict[str, str] | None = None) -> DaemonRun:
    """Run the real daemon on the victim's warehouse (with `main_extra` settings) until each
    table ran once; `leak_sql` is each row's failing custom SQL, `{row}` standing for its id."""
    secret = new_secret()
    main = f"{{url: {json.dumps(victim.url)}{main_extra}}}"
    sqls = {name: json.dumps(leak_sql.replace("{row}", str(row)))
            for row, name in DAEMON_TABLES.items()}
    tables = "".join(f"  - name: {name}\n    warehouse: main\n    table: victim\n    checks:\n"
                     f"      - custom: {{name: leak, sql: {sql}, max: 0}}\n"
                     for name, sql in sqls.items())
    config = victim.root / "checks.yaml"
    config.write_text(with_unreachable_pg(main, tables + FAR + "      - row_count: {min: 0}\n",
                                          defaults="defaults: {schedule: every 1s}\n"))
    run = run_daemon(config, {*DAEMON_TABLES.values(), "far"},
                     env={"DQ_PW": secret, **(env or {})}, args=("--grace-period", "5s"))
    run.secret, run.victim = secret, victim
    return run


def assert_daemon_ran_cleanly(run: DaemonRun) -> None:
    """The daemon checked every table (errors included), exited 0 on SIGTERM, changed nothing;
    every stderr line is a JSON log event (nothing bypassed the scrubbing formatter)."""
    events = [json.loads(line) for line in run.stderr.splitlines()]
    checked = {e["table"] for e in events if e["event"] == "table checked"}
    assert {*DAEMON_TABLES.values(), "far"} <= checked, run.stderr
    assert run.code == 0
    assert "Traceback" not in run.stderr
    run.victim.assert_untouched()


def daemon_row_errors(run: DaemonRun, row: int) -> list[str]:
    """The logged errors of row `row`'s table (at least one); no fragment of the row's value
    is anywhere in the daemon's log."""
    for fragment in ROW_FRAGMENTS[row]:
        assert fragment not in run.stderr
    errors = [e["error"] for e in run.events
              if e.get("table") == DAEMON_TABLES[row] and "error" in e]
    assert errors, run.stderr
    return errors


def assert_daemon_hides_password(run: DaemonRun) -> None:
    """The unreachable warehouse is logged (URL masked), its password never."""
    assert_no_secret(run.secret, run.stderr)
    assert '"warehouse": "pg"' in run.stderr
