"""The daemon's pure parts: shards, schedule choices, back-off, logs, HTTP, reload, cancel."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from dqmon import logs
from dqmon.config import CheckSpec, load_config, parse_config, parse_schedule
from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.daemon import (
    Daemon,
    Shard,
    Signals,
    TableJob,
    WarehouseGate,
    WarehouseSlot,
    backoff_s,
    check_table,
    grace_budget,
    log_results,
    parse_options,
    spread_s,
    stable_hash,
    trigger_for,
)
from dqmon.daemon.pools import Pools
from dqmon.errors import UsageError, WarehouseError
from dqmon.http import HealthServer, parse_listen
from dqmon.results import CheckResult
from dqmon.scan import NullObserver, ScanObserver
from dqmon.warehouse import Warehouse

# --- shards ------------------------------------------------------------------------------------


def test_stable_hash_is_the_sha256_prefix() -> None:
    """The shard hash is the first 8 bytes of SHA-256, the same in every process and version."""
    assert stable_hash("orders") == 2023957755765852388
    assert stable_hash("orders") % 3 == 1


def test_shards_cover_every_table_exactly_once() -> None:
    """N replicas split any set of table names with no overlap and no gap."""
    names = [f"table_{i}" for i in range(500)]
    owners = {name: [i for i in range(4) if Shard(i, 4).owns(name)] for name in names}
    assert all(len(found) == 1 for found in owners.values())
    assert {found[0] for found in owners.values()} == {0, 1, 2, 3}


@pytest.mark.parametrize(("text", "shard"), [(None, Shard(0, 1)), ("", Shard(0, 1)),
                                             ("0/3", Shard(0, 3)), (" 2/3 ", Shard(2, 3))])
def test_shard_parse_accepts_i_of_n(text: str | None, shard: Shard) -> None:
    """`I/N` parses to that shard; no value means the one shard that owns everything."""
    assert Shard.parse(text) == shard


@pytest.mark.parametrize(("text", "message"), [("3/3", "between 0 and N-1"), ("1", "is not I/N"),
                                               ("a/3", "is not I/N"), ("0/0", "between 0")])
def test_shard_parse_rejects_bad_values(text: str, message: str) -> None:
    """A shard outside 0..N-1 or not in I/N form is refused with a readable reason."""
    with pytest.raises(ValueError, match=message):
        Shard.parse(text)


def test_bad_command_line_values_are_usage_errors() -> None:
    """`--shard`, `--listen` and `--grace-period` errors name the option (exit 2 via UsageError)."""
    with pytest.raises(UsageError, match="--shard"):
        parse_options("c.yaml", "0.0.0.0:9464", "5/2", "20s")
    with pytest.raises(UsageError, match="--listen"):
        parse_options("c.yaml", "localhost", None, "20s")
    with pytest.raises(UsageError, match="--grace-period"):
        parse_options("c.yaml", ":9464", None, "soon")
    options = parse_options("c.yaml", ":0", "1/2", "90s", export=False)
    assert (options.listen, options.shard, options.grace_s, options.export) == (
        ("0.0.0.0", 0), Shard(1, 2), 90.0, False)


# --- schedules and back-off --------------------------------------------------------------------

def test_a_backlog_is_served_in_turn_and_no_run_is_dropped() -> None:
    """One worker, more work than it can do: every table keeps getting turns (issue 9).

    A table due every 0.3 s (0.05 s of work) and eight due every 2 s (0.4 s each): 3.5 s of
    work every 2 s. With a misfire grace (one period, at least 5 s, before issue 9; 1 s here
    makes this test fail in the same way at a tenth of the scale), the fast table's queued
    runs were dropped as too late while the backlog lasted; in turn, it runs once per cycle.
    """
    from apscheduler.executors.pool import ThreadPoolExecutor

    from dqmon.daemon.schedule import add_table_job, new_scheduler, table_timing

    runs: dict[str, int] = {}
    missed: list[str] = []

    def run(job: TableJob) -> None:
        time.sleep(0.05 if job.table.name == "fast" else 0.4)
        runs[job.table.name] = runs.get(job.table.name, 0) + 1

    scheduler = new_scheduler()
    scheduler.add_listener(lambda event: missed.append(event.job_id), 2 ** 11)  # JOB_MISSED
    scheduler.add_executor(ThreadPoolExecutor(1), "main")
    slot = WarehouseSlot(warehouse=None, executor="main")  # type: ignore[arg-type]
    config = parse_config("version: 1\nwarehouses: {main: {url: 'sqlite:///x.db'}}\ntables:\n"
                          "  - {name: fast, schedule: every 0.3s, checks: [row_count: {}]}\n"
                          + "".join(f"  - {{name: slow{i}, schedule: every 2s, "
                                    "checks: [row_count: {}]}\n" for i in range(8)), env={})
    for table in config.tables:
        add_table_job(scheduler, run, TableJob(table, slot), table_timing(table))
    scheduler.start()
    time.sleep(6.0)
    scheduler.shutdown(wait=False)
    assert missed == []
    assert set(runs) == {t.name for t in config.tables}
    assert runs["fast"] >= max(runs[f"slow{i}"] for i in range(8))


def test_triggers_follow_the_schedule() -> None:
    """`every 90s` fires every 90 s; a cron string fires on its UTC minutes."""
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC)
    interval = trigger_for(parse_schedule("every 90s"))
    first = interval.get_next_fire_time(None, start)
    assert first is not None
    assert interval.get_next_fire_time(first, first) == first + timedelta(seconds=90)
    cron = trigger_for(parse_schedule("*/10 * * * *"))
    assert cron.get_next_fire_time(None, start) == datetime(2026, 1, 5, 12, 10, tzinfo=UTC)


def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    """Failed probes wait 1, 2, 4 ... seconds, never more than 60 (and 0 when healthy)."""
    assert [backoff_s(n) for n in range(9)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_s(10_000) == 60


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_gate_lets_one_probe_through_per_backoff_interval() -> None:
    """While a warehouse is down only one run per back-off interval contacts it."""
    clock = FakeClock()
    gate = WarehouseGate(clock, jitter=lambda: 1.0)
    assert gate.admit() and gate.admit()  # healthy: everyone goes
    assert gate.failed("refused") == 1.0
    assert gate.failed("refused again") == 1.0  # a concurrent failure is the same outage
    assert (gate.failures, gate.last_error, gate.admit()) == (1, "refused again", False)
    clock.now += 1.0
    assert gate.admit() is True  # the probe
    assert gate.admit() is False  # one probe at a time
    assert gate.failed("refused") == 2.0
    clock.now += 2.0
    assert gate.admit() is True
    assert gate.succeeded() is True  # this ends the outage
    assert (gate.down, gate.last_error, gate.succeeded()) == (False, None, False)


# --- outages -----------------------------------------------------------------------------------

def _sqlite_slot(path: Path) -> WarehouseSlot:
    settings = WarehouseSettings(url=f"sqlite:///{path}", statement_timeout=60)
    return WarehouseSlot(Warehouse("main", settings), "main#1", WarehouseGate(jitter=lambda: 1.0))


def _config_text(db: Path, tables: str) -> str:
    return f"version: 1\nwarehouses:\n  main:\n    url: sqlite:///{db}\ntables:\n{tables}"


def _make_db(path: Path, *tables: str) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for name in tables:
            conn.execute(f"CREATE TABLE {name} (id INTEGER)")
            conn.execute(f"INSERT INTO {name} VALUES (1), (2)")
        conn.commit()
    return path


def test_a_missing_warehouse_backs_off_and_recovers(tmp_path: Path) -> None:
    """A down warehouse yields error results, then short-circuits, then scans once it returns."""
    db = tmp_path / "wh.db"
    config = parse_config(_config_text(db, "  - {name: t, checks: [{row_count: {min: 1}}]}"))
    job = TableJob(config.tables[0], _sqlite_slot(db))
    results, scanned = check_table(job, NullObserver())
    assert scanned is True
    assert [(r.check, r.status, r.value) for r in results] == [("row_count", "error", None)]
    assert job.slot.gate.down
    results, scanned = check_table(job, NullObserver(), clock=lambda: 1234.0)
    assert scanned is False
    assert results[0].started_at_s == 1234.0
    assert results[0].error == f"warehouse main unavailable: {job.slot.gate.last_error}"
    _make_db(db, "t")
    job.slot.gate.next_attempt_s = 0.0  # the back-off is over
    results, scanned = check_table(job, NullObserver())
    assert (scanned, results[0].status, results[0].value, job.slot.gate.down) == (
        True, "pass", 2.0, False)


def test_each_run_logs_one_event_naming_failing_checks(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A run is one `table checked` event with counts and the names of the failing checks."""
    db = _make_db(tmp_path / "wh.db", "t")
    config = parse_config(_config_text(db, "  - {name: t, checks: [{row_count: {min: 5}}, "
                                           "{row_count: {name: rows, max: 5}}]}"))
    job = TableJob(config.tables[0], _sqlite_slot(db))
    results, _ = check_table(job, NullObserver())
    with caplog.at_level(logging.INFO, logger="dqmon.daemon"):
        log_results(job, results, 0.01234)
    [record] = caplog.records
    assert (record.levelname, record.getMessage()) == ("INFO", "table checked")
    assert logs.event_data(record) | {"time": None} == {
        "time": None, "level": "info", "logger": "dqmon.daemon", "event": "table checked",
        "table": "t", "warehouse": "main", "checks": 2, "passed": 1, "failed": 1, "errors": 0,
        "duration_s": 0.012, "failing": ["row_count"]}


def test_a_table_error_is_not_an_outage(tmp_path: Path) -> None:
    """A check failing on its own SQL leaves the warehouse marked healthy."""
    db = _make_db(tmp_path / "wh.db", "t")
    config = parse_config(_config_text(db, "  - {name: nope, checks: [{row_count: {min: 1}}]}"))
    job = TableJob(config.tables[0], _sqlite_slot(db))
    results, scanned = check_table(job, NullObserver())
    assert (scanned, results[0].status, job.slot.gate.down) == (True, "error", False)
    assert "no such table" in (results[0].error or "")


def test_running_queries_can_be_cancelled(tmp_path: Path) -> None:
    """SIGTERM's cancel interrupts a query that would otherwise run far past the grace period."""
    db = _make_db(tmp_path / "wh.db", "t")
    warehouse = _sqlite_slot(db).warehouse
    endless = "with recursive n(i) as (select 1 union all select i + 1 from n) select max(i) from n"
    errors: list[WarehouseError] = []

    def query() -> None:
        import sqlalchemy as sa

        try:
            warehouse.fetch_all(sa.text(endless))
        except WarehouseError as exc:
            errors.append(exc)

    worker = threading.Thread(target=query)
    worker.start()
    asked = 0
    try:
        deadline = time.monotonic() + 10
        while worker.is_alive() and time.monotonic() < deadline:
            asked += warehouse.cancel_running()  # a cancel before the query starts is lost: repeat
            worker.join(0.05)
    finally:
        warehouse.dispose()
    assert not worker.is_alive() and asked >= 1
    assert len(errors) == 1 and "interrupted" in str(errors[0])


# --- reload ------------------------------------------------------------------------------------

class FakeReporter:
    """Records what the daemon publishes (the telemetry module has its own tests)."""

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

    def tables(self) -> set[str]:
        with self.lock:
            return {r.table for r in self.recorded}


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def daemon_setup(tmp_path: Path) -> Iterator[tuple[Daemon, FakeReporter, Path, Path]]:
    """A daemon over a SQLite file with tables a, b, c, every 2 s (first runs within 2 s)."""
    db = _make_db(tmp_path / "wh.db", "a", "b", "c")
    path = tmp_path / "checks.yaml"
    path.write_text(_config_text(db, "".join(
        f"  - {{name: {n}, schedule: every 2s, checks: [{{row_count: {{min: 1}}}}]}}\n"
        for n in "ab")))
    reporter = FakeReporter()
    daemon = Daemon(str(path), reporter)
    daemon.start(load_config(path))
    yield daemon, reporter, path, db
    daemon.stop(5)


def test_first_runs_happen_at_start(daemon_setup: tuple[Daemon, FakeReporter, Path, Path]) -> None:
    """Every table runs within its first period (a stable offset), and /readyz turns ready."""
    daemon, reporter, _path, _db = daemon_setup
    _wait_for(lambda: reporter.tables() == {"a", "b"})
    assert daemon.ready()
    assert reporter.retained == [{("a", "row_count"), ("b", "row_count")}]


def test_reload_replaces_jobs_and_rejects_bad_files(
        daemon_setup: tuple[Daemon, FakeReporter, Path, Path],
        caplog: pytest.LogCaptureFixture) -> None:
    """A good file swaps the jobs (removed checks are no longer retained); a bad one changes nothing."""
    daemon, reporter, path, db = daemon_setup
    _wait_for(lambda: reporter.tables() == {"a", "b"})
    path.write_text(_config_text(db, "  - {name: c, schedule: every 2s, "
                                     "checks: [{row_count: {min: 5}}]}\n"
                                     "  - {name: a, schedule: every 2s, "
                                     "checks: [{row_count: {min: 1}}]}\n"))
    assert daemon.reload() is True
    _wait_for(lambda: "c" in reporter.tables())
    assert reporter.retained[-1] == {("a", "row_count"), ("c", "row_count")}
    path.write_text(_config_text(db, "  - {name: d, checks: [{row_count: {min: -1}}]}\n"))
    with caplog.at_level(logging.ERROR):
        assert daemon.reload() is False
    assert len(reporter.retained) == 2
    assert "reload rejected" in caplog.text
    assert daemon.ready()


@pytest.mark.parametrize("step", ["with_discovered", "register_tables"])
def test_a_reload_failing_before_the_swap_retires_its_new_pools_and_changes_nothing(
        daemon_setup: tuple[Daemon, FakeReporter, Path, Path],
        monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """Discovery or the catalog raising something unexpected during a reload: the pool built
    for the new warehouse settings is retired, the running pools, jobs and source stay."""
    from dqmon.daemon import reload as reload_module

    daemon, reporter, path, db = daemon_setup
    _wait_for(lambda: reporter.tables() == {"a", "b"})
    roster = daemon._roster  # noqa: SLF001 - the state a failed reload must leave alone
    running, source = dict(roster.pools.slots), roster.source
    retired: list[str] = []
    real_retire = Pools.retire

    def retire(self: Pools, slots: dict[str, WarehouseSlot]) -> None:
        retired.extend(slot.warehouse.settings.url for slot in slots.values())
        real_retire(self, slots)

    monkeypatch.setattr(Pools, "retire", retire)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(reload_module, step, broken)
    path.write_text(_config_text(db, "  - {name: c, checks: [{row_count: {min: 1}}]}\n")
                    .replace("\ntables:", "\n    statement_timeout: 7s\ntables:"))
    assert daemon.reload() is False
    assert retired == [f"sqlite:///{db}"]  # the new pool, once; the running one stays
    assert roster.pools.slots == running and roster.source is source
    assert set(roster._published.jobs) == {"a", "b"}  # noqa: SLF001


# --- logs --------------------------------------------------------------------------------------

@contextlib.contextmanager
def _configured(fmt: logs.LogFormat | None, stream: io.StringIO) -> Iterator[logging.Handler]:
    """Install dqmon's log handler for one test, then put the logging setup back."""
    root, scheduler = logging.getLogger(), logging.getLogger("apscheduler")
    levels = root.level, scheduler.level
    handler = logs.configure(fmt, stream=stream)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        scheduler.setLevel(levels[1])
        logs.set_trace_id_source(None)


def _log_line(fmt: logs.LogFormat, trace_id: str | None) -> str:
    stream = io.StringIO()
    with _configured(fmt, stream):
        logs.set_trace_id_source(lambda: trace_id)
        logs.get_logger("dqmon.test").warning("scan failed", table="orders", errors=2)
    return stream.getvalue()


def test_json_logs_are_one_object_per_line_with_fields_and_trace_id() -> None:
    """An event is one JSON line: time, level, logger, event, its fields and the trace id."""
    line = _log_line("json", "0af7651916cd43dd8448eb211c80319c")
    assert line.count("\n") == 1
    data = json.loads(line)
    assert data["time"].endswith("Z")
    del data["time"]
    assert data == {"level": "warning", "logger": "dqmon.test", "event": "scan failed",
                    "table": "orders", "errors": 2,
                    "trace_id": "0af7651916cd43dd8448eb211c80319c"}


def test_text_logs_are_key_value_lines() -> None:
    """The terminal format is `time level event key=value`, quoting values with spaces."""
    line = _log_line("text", None)
    assert line.endswith(" warning scan failed  table=orders errors=2\n")


def test_log_format_defaults_to_json_off_a_terminal() -> None:
    """With no --log-format, a pipe or file gets JSON (what log collectors parse)."""
    with _configured(None, io.StringIO()) as handler:
        assert isinstance(handler.formatter, logs.JsonFormatter)


# --- HTTP --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "address"), [("0.0.0.0:9464", ("0.0.0.0", 9464)),
                                               (":9464", ("0.0.0.0", 9464)),
                                               ("[::1]:80", ("::1", 80)),
                                               ("localhost:0", ("localhost", 0))])
def test_parse_listen(text: str, address: tuple[str, int]) -> None:
    """--listen takes HOST:PORT, :PORT and [IPv6]:PORT."""
    assert parse_listen(text) == address


@pytest.mark.parametrize("text", ["9464", "host:", "host:99999", "host:http"])
def test_parse_listen_rejects_bad_addresses(text: str) -> None:
    """An address without a valid port is refused."""
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_listen(text)


def _get(port: int, path: str, accept: str = "*/*") -> tuple[int, str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_health_server_endpoints() -> None:
    """/metrics passes the Accept header on, /healthz is 200, /readyz follows readiness, else 404."""
    ready = [False]
    server = HealthServer(("127.0.0.1", 0),
                          lambda accept: (f"dq_check_up 1 # {accept}\n".encode(), "text/plain"),
                          lambda: ready[0])
    server.start()
    try:
        assert _get(server.port, "/metrics", "application/openmetrics-text") == (
            200, "text/plain", "dq_check_up 1 # application/openmetrics-text\n")
        assert _get(server.port, "/healthz")[0::2] == (200, "ok\n")
        assert _get(server.port, "/readyz")[0::2] == (503, "not ready\n")
        ready[0] = True
        assert _get(server.port, "/readyz")[0::2] == (200, "ready\n")
        assert _get(server.port, "/nope")[0] == 404
    finally:
        server.stop()


# --- shutdown ----------------------------------------------------------------------------------

def test_grace_budget_splits_the_grace_period() -> None:
    """Runs get most of the grace period; cancelled queries and the flush get the rest."""
    assert grace_budget(20) == (14, 3, 3)
    assert grace_budget(2) == (1, 0.5, 0.5)


def test_signals_are_queued_until_taken() -> None:
    """Signals received are handed over once, in order."""
    import signal

    signals = Signals()
    signals._handle(signal.SIGHUP, None)
    signals._handle(signal.SIGTERM, None)
    assert signals.take() == [signal.SIGHUP, signal.SIGTERM]
    assert signals.take() == []


def test_cron_weekdays_follow_crontab() -> None:
    """`1-5` is Monday to Friday, as in crontab(5): from a Saturday the next run is Monday 09:00."""
    from datetime import UTC, datetime

    from dqmon.config.types import parse_schedule
    from dqmon.daemon import trigger_for

    trigger = trigger_for(parse_schedule("*/10 9-17 * * 1-5"))
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, saturday) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_runs_are_spread_over_the_period_by_a_stable_offset() -> None:
    """Each table's offset lies in [0, period), is the same in every process, and 1,000 tables
    spread over the period rather than falling due together (SPEC section 11)."""
    offsets = [spread_s(f"schema.t{i}", 900.0) for i in range(1000)]
    assert all(0 <= o < 900 for o in offsets)
    assert spread_s("schema.t1", 900.0) == offsets[1]
    assert max(sum(k * 90 <= o < (k + 1) * 90 for o in offsets) for k in range(10)) < 150

