"""Inputs that used to crash dqmon: each is a located config or usage error, or an error result.

Issue 8 and SPEC section 6 ("No input crashes dqmon"): every command reports a bad file as
config errors (exit 2, one line per problem, no traceback), what passes `validate` does not
fail later, a check's whole life is inside its error boundary, and a reload survives any file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dqmon import logs
from dqmon.checks.timeutil import current_slice, parse_slice
from dqmon.cli import main
from dqmon.config import CheckSpec, Config, ConfigError, load_config, parse_config
from dqmon.config.kinds import Validity
from dqmon.config.models import Partition
from dqmon.daemon import Daemon, TableJob, WarehouseSlot, check_table, check_table_or_error
from dqmon.inspect import show_sql_text
from dqmon.results import CheckResult
from dqmon.scan import NullObserver, ScanObserver, scan_table
from dqmon.warehouse import Warehouse, open_warehouses

NOW_S = datetime(2026, 11, 20, 13, 30, tzinfo=UTC).timestamp()

GOOD = """\
version: 1
warehouses:
  main: {{url: "sqlite:///{db}"}}
tables:
  - name: orders
    partition: {{column: created_at, granularity: {granularity}, lag: {lag}}}
    checks:
      - row_count: {{min: 1}}
      - validity: {{name: status_known, column: status, in: {values}}}
      - uniqueness: {{columns: [id]}}
      - custom: {{name: late, sql: "select count(*) from orders where status = 'late'", max: 0}}
      - schema: {{columns: {{id: integer}}}}
"""
CONTROL_HINT = "is not allowed anywhere, even in a comment (remove it, or write \"\\x{code}\" " \
               "inside double quotes)"
MIXED = ("mixes numbers and text: list only text, only numbers or only booleans "
         "(quote a number meant as text, e.g. '1')")


def make_db(path: Path) -> Path:
    """Build a SQLite warehouse file with an `orders` table of two rows."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, status TEXT, created_at TEXT)")
        conn.execute("INSERT INTO orders VALUES (1, 'paid', '2026-11-20 01:00:00'), "
                     "(2, 'paid', '2026-11-20 02:00:00')")
        conn.commit()
    return path


def config_text(db: Path, *, granularity: str = "day", lag: object = 0,
                values: str = "[paid, shipped]") -> str:
    """Return the good config, or a variant of it with one field changed."""
    return GOOD.format(db=db, granularity=granularity, lag=lag, values=values)


# --- every command: a bad file is located config errors, exit 2, no traceback -----------------

COMMANDS = {
    "validate": ["validate"],
    "run-once": ["run-once", "--no-export"],
    "rules": ["rules"],
    "dashboard": ["dashboard"],
    "run": ["run", "--no-export", "--listen", "127.0.0.1:0", "--log-format", "json"],
}
CRASHES = ["bell_in_comment", "nul_in_value", "lag_a_million_days", "lag_past_ten_years_of_hours",
           "in_mixes_types"]


def crash_file(tmp_path: Path, name: str) -> tuple[Path, str]:
    """Write crash file `name` by a fresh warehouse; return it and the one stderr line expected."""
    db = make_db(tmp_path / "wh.db")
    good = config_text(db)
    text, expected = {
        "bell_in_comment": (good.replace("tables:\n", "tables:  # \x07 ring\n"),
                            "{file}:4: invalid YAML: control character U+0007 at column 12 "
                            + CONTROL_HINT.format(code="07")),
        "nul_in_value": (good.replace("min: 1}", "min: 1\x00}"),
                         "{file}:8: invalid YAML: control character U+0000 at column 27 "
                         + CONTROL_HINT.format(code="00")),
        "lag_a_million_days": (config_text(db, lag=1_000_000),
                               "{file}:6 tables[0].partition.lag: must be at most 3660 "
                               "for day slices (10 years back)"),
        "lag_past_ten_years_of_hours": (config_text(db, granularity="hour", lag=87841),
                                        "{file}:6 tables[0].partition.lag: must be at most "
                                        "87840 for hour slices (10 years back)"),
        "in_mixes_types": (config_text(db, values="[1, paid]"),
                           "{file}:9 tables[0].checks[1].validity.in: " + MIXED),
    }[name]
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(text.encode("utf-8"))
    return path, expected.format(file=path)


def run_dqmon(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m dqmon ARGS` as a user would."""
    env = {k: v for k, v in os.environ.items() if k != "DQMON_CONFIG"}
    return subprocess.run([sys.executable, "-m", "dqmon", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `dqmon ARGS` in-process through `dqmon.cli.main`; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.mark.parametrize("command", ["validate", "run-once", "rules", "dashboard"])
@pytest.mark.parametrize("name", CRASHES)
def test_a_crashing_file_is_one_located_error_in_every_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, command: str) -> None:
    """Each command prints exactly the located problem line, exits 2 and shows no traceback."""
    path, expected = crash_file(tmp_path, name)
    code, out, err = run_cli(capsys, *COMMANDS[command], "--config", str(path))
    assert "Traceback" not in err
    assert err.splitlines() == [expected]
    assert (code, out) == (2, "")


@pytest.mark.parametrize(("command", "name"), [
    *((command, "bell_in_comment") for command in COMMANDS),
    *(("run", name) for name in CRASHES[1:])])
def test_the_real_process_shows_no_traceback(tmp_path: Path, command: str, name: str) -> None:
    """`python -m dqmon` (the daemon included) prints the located line alone and exits 2."""
    path, expected = crash_file(tmp_path, name)
    proc = run_dqmon([*COMMANDS[command], "--config", path.name], tmp_path)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [expected.replace(str(path), path.name)]
    assert (proc.returncode, proc.stdout) == (2, "")


@pytest.mark.parametrize(("granularity", "partition", "message"), [
    ("day", "9999-12-31", "the day slice 9999-12-31 ends after year 9999 "
                          "(the last one is 9999-12-30)"),
    ("hour", "9999-12-31T23", "the hour slice 9999-12-31T23 ends after year 9999 "
                              "(the last one is 9999-12-31T22)"),
])
def test_run_once_partition_past_9999_is_a_usage_error(
        tmp_path: Path, granularity: str, partition: str, message: str) -> None:
    """`run-once --partition` for the calendar's last slice is a usage error, not an overflow."""
    path = tmp_path / "checks.yaml"
    path.write_text(config_text(make_db(tmp_path / "wh.db"), granularity=granularity))
    proc = run_dqmon(["run-once", "--no-export", "--config", str(path),
                      "--partition", partition], tmp_path)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [f"dqmon: --partition {partition!r}: {message}"]
    assert (proc.returncode, proc.stdout) == (2, "")


# --- load time ---------------------------------------------------------------------------------

def test_control_characters_are_located_by_line_and_column() -> None:
    """A control character anywhere (here the C1 CSI in a comment) is one located problem."""
    with pytest.raises(ConfigError) as caught:
        parse_config("version: 1\n\n  # ok \x9b\n", "c.yaml", env={})
    assert [str(p) for p in caught.value.problems] == [
        "c.yaml:3: invalid YAML: control character U+009B at column 8 "
        + CONTROL_HINT.format(code="9b")]


def test_a_non_character_is_located_too() -> None:
    """U+FFFE, which YAML also forbids, is named by code point at its line and column."""
    with pytest.raises(ConfigError) as caught:
        parse_config("version: 1\nx: a\ufffe\n", "c.yaml", env={})
    assert [str(p) for p in caught.value.problems] == [
        "c.yaml:2: invalid YAML: character U+FFFE at column 5 is not allowed in YAML"]


def test_a_duration_past_the_float_range_is_a_located_problem(tmp_path: Path) -> None:
    """A 401-digit statement_timeout is "must be a finite duration", not an OverflowError."""
    text = config_text(tmp_path / "wh.db").replace('"}', '", statement_timeout: 1' + "0" * 400 + "}")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml", env={})
    assert [str(p) for p in caught.value.problems] == [
        "c.yaml:3 warehouses.main.statement_timeout: must be a finite duration"]


@pytest.mark.parametrize(("granularity", "lag"), [("day", 3660), ("hour", 87840)])
def test_ten_years_of_lag_is_accepted_and_its_slice_computes(
        tmp_path: Path, granularity: str, lag: int) -> None:
    """The largest lag allowed loads and its slice lies ten years back."""
    config = parse_config(config_text(tmp_path / "wh.db", granularity=granularity, lag=lag))
    partition = config.tables[0].partition
    assert partition is not None and partition.lag == lag
    start = current_slice(NOW_S, partition.granularity, lag, UTC).start
    assert start.year == 2016


@pytest.mark.parametrize(("values", "message"), [
    ("[true, 1]", "mixes booleans and numbers: list only text, only numbers or only booleans "
                  "(quote a number meant as text, e.g. '1')"),
    ("[a, false]", "mixes booleans and text: list only text, only numbers or only booleans "
                   "(quote a number meant as text, e.g. '1')"),
    ("[1, .nan]", "must hold finite numbers (not .nan or .inf)"),
    ("[1.5, 1" + "0" * 400 + "]", "1" + "0" * 400 + " is too large beside a decimal number"),
])
def test_in_lists_of_mixed_or_non_finite_values_are_refused(
        tmp_path: Path, values: str, message: str) -> None:
    """`in:` holds one kind of value, and finite numbers, or the file is refused at its line."""
    with pytest.raises(ConfigError) as caught:
        parse_config(config_text(tmp_path / "wh.db", values=values), "c.yaml", env={})
    assert [str(p) for p in caught.value.problems] == [
        f"c.yaml:9 tables[0].checks[1].validity.in: {message}"]


@pytest.mark.parametrize(("values", "kept"), [
    ("[1, 2.5]", [1.0, 2.5]), ("[1, 2]", [1, 2]), ("[true, false]", [True, False]),
    ("['1', paid]", ["1", "paid"])])
def test_in_lists_of_one_kind_are_kept(tmp_path: Path, values: str, kept: list[object]) -> None:
    """Text, booleans or integers load unchanged; integers beside a float become floats."""
    params = parse_config(config_text(tmp_path / "wh.db", values=values)).tables[0].checks[1].params
    assert isinstance(params, Validity) and params.in_ is not None
    assert [(v, type(v)) for v in params.in_] == [(v, type(v)) for v in kept]


def test_a_float_among_integers_is_rendered_as_written(tmp_path: Path) -> None:
    """`in: [1, 2.5]` shows 2.5 in the SQL, not the 2 an integer-typed literal list would print."""
    config = parse_config(config_text(tmp_path / "wh.db", values="[1, 2.5]"))
    assert "status IN (1.0, 2.5)" in show_sql_text(config, open_warehouses(config.warehouses))


# --- slices ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("granularity", "lag"), [("day", 1_000_000), ("hour", 10**12)])
def test_current_slice_out_of_the_calendar_is_a_value_error(granularity: str, lag: int) -> None:
    """A slice before year 1 is a ValueError saying so, never an OverflowError."""
    with pytest.raises(ValueError, match=f"the {granularity} slice {lag} back from now is "
                                         "before year 1"):
        current_slice(NOW_S, granularity, lag, UTC)


def test_slice_labels_pad_the_year() -> None:
    """Year 1 is labelled 0001-01-01, as written on the command line."""
    assert parse_slice("0001-01-01", "day").label == "0001-01-01"
    assert parse_slice("0999-03-04T05", "hour").label == "0999-03-04T05"


# --- scan: a check's whole life is inside its error boundary ----------------------------------

@pytest.fixture
def orders(tmp_path: Path) -> Iterator[tuple[Config, Warehouse]]:
    """The good config over a real SQLite file, and its warehouse."""
    config = parse_config(config_text(make_db(tmp_path / "wh.db")))
    warehouse = open_warehouses(config.warehouses)["main"]
    yield config, warehouse
    warehouse.dispose()


def statuses(results: list[CheckResult]) -> dict[str, tuple[str, str | None]]:
    """Return check name -> (status, error)."""
    return {r.check: (r.status, r.error) for r in results}


def test_a_scope_that_cannot_be_built_errors_its_checks_and_the_rest_run(
        orders: tuple[Config, Warehouse]) -> None:
    """A slice out of the calendar errors the scoped checks; custom and schema still run."""
    config, warehouse = orders
    broken = Partition.model_construct(column="created_at", granularity="day", lag=10**6)
    table = dataclasses.replace(config.tables[0], partition=broken)
    results = scan_table(table, warehouse, clock=lambda: NOW_S)
    message = "the day slice 1000000 back from now is before year 1"
    assert statuses(results) == {
        "row_count": ("error", message), "status_known": ("error", message),
        "uniqueness_id": ("error", message), "late": ("pass", None), "schema": ("pass", None)}
    assert {r.partition for r in results} == {None}


class _BuggyDriver(Warehouse):
    """A warehouse whose single-row queries fail with an exception nobody planned for."""

    def fetch_one(self, query: Any, params: Any = None) -> dict[str, Any]:
        raise RuntimeError("driver bug")


def test_an_unexpected_exception_is_an_error_result(orders: tuple[Config, Warehouse]) -> None:
    """Any Exception inside a check becomes `error` results naming its type; others still run."""
    config, warehouse = orders
    buggy = _BuggyDriver("main", warehouse.settings)
    try:
        results = scan_table(config.tables[0], buggy, clock=lambda: NOW_S)
    finally:
        buggy.dispose()
    error = "unexpected RuntimeError: driver bug"
    assert statuses(results) == {
        "row_count": ("error", error), "status_known": ("error", error),
        "uniqueness_id": ("error", error), "late": ("pass", None), "schema": ("pass", None)}


def _ping_bug(self: Warehouse) -> None:
    raise RuntimeError("driver bug")


def test_a_probe_that_raises_counts_as_an_outage(
        orders: tuple[Config, Warehouse], monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected exception from a probe backs off like any outage; the gate never sticks."""
    config, warehouse = orders
    monkeypatch.setattr(Warehouse, "ping", _ping_bug)
    job = TableJob(config.tables[0], WarehouseSlot(warehouse, "main#1"))
    job.slot.gate.failed("down")  # an outage: the next run probes first
    for _ in range(2):
        job.slot.gate.next_attempt_s = 0.0  # the back-off is over
        results, scanned = check_table(job, NullObserver(), clock=lambda: NOW_S)
        assert scanned is False
        assert {r.error for r in results} == {
            "warehouse main unavailable: unexpected RuntimeError: driver bug"}
    monkeypatch.undo()
    job.slot.gate.next_attempt_s = 0.0
    results, scanned = check_table(job, NullObserver(), clock=lambda: NOW_S)
    assert scanned is True and not job.slot.gate.down


def test_a_daemon_run_that_raises_publishes_error_results(
        orders: tuple[Config, Warehouse], monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever escapes `check_table` becomes `error` results for every check, not silence."""
    config, warehouse = orders

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("dqmon.daemon.runner.check_table", broken)
    job = TableJob(config.tables[0], WarehouseSlot(warehouse, "main#1"))
    results, scanned = check_table_or_error(job, NullObserver(), clock=lambda: NOW_S)
    assert scanned is True
    assert {(r.check, r.status, r.error, r.started_at_s) for r in results} == {
        (name, "error", "unexpected RuntimeError: bug", NOW_S)
        for name in ("row_count", "status_known", "uniqueness_id", "late", "schema")}


# --- reload survives any file ------------------------------------------------------------------

class FakeReporter:
    """Records what the daemon publishes and retains (telemetry has its own tests)."""

    def __init__(self) -> None:
        self.observer: ScanObserver = NullObserver()
        self.recorded: list[CheckResult] = []
        self.retained: list[set[tuple[str, str]]] = []
        self.lock = threading.Lock()

    def run_span(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def record(self, results: Sequence[CheckResult]) -> None:
        with self.lock:
            self.recorded += results

    def retain(self, specs: Iterable[CheckSpec]) -> None:
        self.retained.append({(s.table, s.name) for s in specs})

    def shutdown(self, timeout_s: float = 3.0) -> None:
        pass


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll `condition` until it holds; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Daemon, FakeReporter, Path]]:
    """A daemon over the good config with hourly runs (the first one right away)."""
    path = tmp_path / "checks.yaml"
    path.write_text(config_text(make_db(tmp_path / "wh.db")).replace(
        "  - name: orders\n", "  - name: orders\n    schedule: every 1h\n"))
    reporter = FakeReporter()
    running = Daemon(str(path), reporter)
    running.start(load_config(path))
    yield running, reporter, path
    running.stop(5)


def reload_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """Return the daemon's reload events logged so far."""
    return [logs.event_data(r) for r in caplog.records if r.getMessage().startswith("reload")]


@pytest.mark.parametrize("raised", [RecursionError("deep"), MemoryError(), UnicodeError("x")])
def test_reload_treats_any_load_failure_as_a_rejection(
        daemon: tuple[Daemon, FakeReporter, Path], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch, raised: Exception) -> None:
    """An exception other than ConfigError while loading is one rejection event, not a crash."""
    running, reporter, path = daemon

    def load(_path: str) -> Config:
        raise raised

    monkeypatch.setattr("dqmon.daemon.reload.load_config", load)
    with caplog.at_level(logging.ERROR, logger="dqmon.daemon"):
        assert running.reload() is False
    [event] = reload_events(caplog)
    assert (event["event"], event["file"], event["problems"]) == (
        "reload rejected: the old config keeps running", str(path),
        [f"{path}:1: cannot load the file ({type(raised).__name__})"])
    assert len(reporter.retained) == 1 and running.ready()


def test_reload_rejects_a_control_character_with_its_line(
        daemon: tuple[Daemon, FakeReporter, Path], caplog: pytest.LogCaptureFixture) -> None:
    """SIGHUP's reload of a file with a NUL logs one located rejection and keeps the jobs."""
    running, reporter, path = daemon
    path.write_text(path.read_text() + "# \x00\n")
    with caplog.at_level(logging.ERROR, logger="dqmon.daemon"):
        assert running.reload() is False
    [event] = reload_events(caplog)
    assert event["problems"] == [f"{path}:14: invalid YAML: control character U+0000 at "
                                 "column 3 " + CONTROL_HINT.format(code="00")]
    assert len(reporter.retained) == 1


def test_reload_that_fails_while_building_changes_nothing(
        daemon: tuple[Daemon, FakeReporter, Path], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A warehouse that fails to build leaves the old jobs and pools, logged as one event."""
    running, reporter, path = daemon
    jobs_before = {job.id for job in running._scheduler.get_jobs()}
    executors_before = set(running._scheduler._executors)
    # main's settings change (a new pool is built first), then `other` fails to build
    text = path.read_text().replace('"}', '", max_connections: 3}')
    path.write_text(text.replace("tables:\n", "  other: {url: 'sqlite:///x.db'}\ntables:\n")
                    .replace("    schedule:", "    warehouse: main\n    schedule:"))

    def fails(name: str, settings: Any) -> Warehouse:
        if name == "other":
            raise KeyError(name)
        return Warehouse(name, settings)

    monkeypatch.setattr("dqmon.daemon.pools.Warehouse", fails)
    with caplog.at_level(logging.ERROR, logger="dqmon.daemon"):
        assert running.reload() is False
    [event] = reload_events(caplog)
    assert event["event"] == "reload failed: the old config keeps running"
    assert event["error"].startswith("KeyError(")  # the quoted literal is masked in logs
    assert {job.id for job in running._scheduler.get_jobs()} == jobs_before
    wait_until(lambda: set(running._scheduler._executors) == executors_before)  # main's new pool
    assert len(reporter.retained) == 1 and running.ready()
