"""`dqmon run` as a real subprocess against a real PostgreSQL: schedules, health, outages,
timeouts, signals, reload and shards (issue 4)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dqmon.daemon import Shard

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DQMON = [sys.executable, "-m", "dqmon"]
T = TypeVar("T")
MakeTable = Callable[[str, dict[str, str], Sequence[Sequence[Any]]], str]  # tests/conftest.py
Labels = frozenset[tuple[str, str]]


# --- helpers -----------------------------------------------------------------------------------

def free_port() -> int:
    """Return a TCP port nobody listens on right now (tests run in parallel)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 30.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


class Daemon:
    """A `dqmon run` subprocess with its own port and a JSON log file."""

    def __init__(self, tmp_path: Path, config: Path, *args: str,
                 env: dict[str, str] | None = None, name: str = "daemon",
                 export: bool = False) -> None:
        self.port = free_port()
        self.log_path = tmp_path / f"{name}.log"
        self._log = self.log_path.open("w")
        command = [*DQMON, "run", "--config", str(config), "--listen", f"127.0.0.1:{self.port}",
                   "--log-format", "json", *args, *([] if export else ["--no-export"])]
        self.proc = subprocess.Popen(command, stderr=self._log, stdout=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})

    def get(self, path: str) -> tuple[int, str]:
        """GET a path; (0, "") while the server is not up yet."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}",
                                        timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            assert self.proc.poll() is None, f"daemon exited early:\n{self.logs_text()}"
            return 0, ""

    def samples(self, metric: str) -> dict[Labels, float]:
        """Scrape /metrics; return `metric`'s samples keyed by their dq_* labels."""
        status, body = self.get("/metrics")
        if status != 200:
            return {}
        found: dict[Labels, float] = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == metric:
                    labels = frozenset((k, v) for k, v in sample.labels.items()
                                       if k.startswith("dq_"))
                    found[labels] = sample.value
        return found

    def value(self, metric: str, table: str, check: str) -> float | None:
        """Return one check's sample of `metric`, or None when it is not reported."""
        for labels, value in self.samples(metric).items():
            if ("dq_table", table) in labels and ("dq_check", check) in labels:
                return value
        return None

    def tables(self) -> set[str]:
        """Return the dq_table values reported by dq_check_up."""
        return {v for labels in self.samples("dq_check_up") for k, v in labels if k == "dq_table"}

    def logs(self) -> list[dict[str, Any]]:
        """Return the JSON log events written so far."""
        self._log.flush()
        return [json.loads(line) for line in self.log_path.read_text().splitlines()
                if line.startswith("{")]

    def logs_text(self) -> str:
        return self.log_path.read_text()

    def event(self, name: str, **fields: object) -> dict[str, Any] | None:
        """Return the first log event called `name` with these field values."""
        return next((e for e in self.logs() if e["event"] == name
                     and all(e.get(k) == v for k, v in fields.items())), None)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM the daemon and return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start daemons; every one still running at the end of the test is killed."""
    started: list[Daemon] = []

    def start_daemon(config: Path, *args: str, **kwargs: Any) -> Daemon:
        daemon = Daemon(tmp_path, config, *args, **kwargs)
        started.append(daemon)
        return daemon

    yield start_daemon
    for daemon in started:
        daemon.kill()


def write_config(path: Path, url: str, tables: str, *, timeout: str = "10s") -> Path:
    """Write a checks.yaml with one PostgreSQL warehouse `main` and the given tables."""
    path.write_text("version: 1\nwarehouses:\n  main:\n"
                    f"    url: {url}\n    statement_timeout: {timeout}\n    max_connections: 2\n"
                    "defaults:\n  schedule: every 1s\ntables:\n" + tables)
    return path


def row_count_table(name: str, minimum: int = 1) -> str:
    """Return a `tables:` entry with one row_count check."""
    return f"  - {{name: {name}, checks: [{{row_count: {{min: {minimum}}}}}]}}\n"


class TcpProxy:
    """Forwards a local port to PostgreSQL: the "server that appears" on a dead port."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Close the port and cut every forwarded connection (the warehouse "goes down")."""
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked in another thread
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


# --- tests -------------------------------------------------------------------------------------

def test_checks_run_repeatedly_and_health_endpoints_answer(
        tmp_path: Path, pg_url: str, make_table: MakeTable,
        start: Callable[..., Daemon]) -> None:
    """Each table runs on its schedule again and again; /healthz and /readyz say 200."""
    make_table("dmn_orders", {"id": "int", "amount": "numeric"}, [(1, 5), (2, None), (3, 7)])
    config = write_config(tmp_path / "checks.yaml", pg_url, (
        "  - name: dmn_orders\n    checks:\n      - row_count: {min: 1}\n"
        "      - completeness: {columns: [amount], min_ratio: 0.5}\n"))
    daemon = start(config)
    first = wait_for("a first run", lambda: daemon.value(
        "dq_check_last_run_timestamp_seconds", "dmn_orders", "row_count"))
    later = wait_for("a second run", lambda: (v := daemon.value(
        "dq_check_last_run_timestamp_seconds", "dmn_orders", "row_count")) and v > first and v)
    wait_for("a third run", lambda: (v := daemon.value(
        "dq_check_last_run_timestamp_seconds", "dmn_orders", "row_count")) and v > later)
    assert daemon.value("dq_row_count", "dmn_orders", "row_count") == 3
    assert daemon.value("dq_completeness_ratio", "dmn_orders", "completeness_amount") == (
        pytest.approx(2 / 3))
    assert daemon.value("dq_check_up", "dmn_orders", "row_count") == 1
    assert daemon.value("dq_check_passed", "dmn_orders", "completeness_amount") == 1
    assert daemon.get("/healthz") == (200, "ok\n")
    assert daemon.get("/readyz") == (200, "ready\n")
    checked = daemon.event("table checked", table="dmn_orders")
    assert checked is not None
    assert (checked["level"], checked["checks"], checked["passed"]) == ("info", 2, 2)
    assert len(checked["trace_id"]) == 32
    assert daemon.stop() == 0


def test_a_dead_warehouse_keeps_the_daemon_up_and_it_recovers(
        tmp_path: Path, pg_database: dict[str, str], make_table: MakeTable,
        start: Callable[..., Daemon]) -> None:
    """Down at start: dq_check_up 0; up: checks pass; down mid-run: 0 again; back: 1 again."""
    make_table("dmn_outage", {"id": "int"}, [(1,), (2,)])
    port = free_port()
    url = f"postgresql+psycopg://{pg_database['user']}@127.0.0.1:{port}/{pg_database['name']}"
    daemon = start(write_config(tmp_path / "checks.yaml", url, row_count_table("dmn_outage")))
    up = lambda: daemon.value("dq_check_up", "dmn_outage", "row_count")  # noqa: E731
    wait_for("dq_check_up 0", lambda: up() == 0)
    assert daemon.get("/healthz")[0] == 200
    assert daemon.get("/readyz")[0] == 200
    assert daemon.event("warehouse unavailable", warehouse="main") is not None
    proxy = TcpProxy(port, (pg_database["host"], int(pg_database["port"])))
    proxy.start()
    try:
        wait_for("recovery", lambda: up() == 1)
        assert daemon.value("dq_row_count", "dmn_outage", "row_count") == 2
        assert daemon.event("warehouse recovered", warehouse="main") is not None
        proxy.stop()
        wait_for("dq_check_up 0 after the warehouse went down", lambda: up() == 0)
        assert daemon.value("dq_row_count", "dmn_outage", "row_count") == 2  # the last value
        proxy.start()
        wait_for("a second recovery", lambda: up() == 1)
    finally:
        proxy.stop()
    assert daemon.stop() == 0


def test_a_query_slower_than_statement_timeout_is_cut(
        tmp_path: Path, pg_url: str, make_table: MakeTable,
        start: Callable[..., Daemon]) -> None:
    """`select pg_sleep(5)` with statement_timeout 1s errors as a timeout; other checks still run."""
    make_table("dmn_slow", {"id": "int"}, [(1,)])
    config = write_config(tmp_path / "checks.yaml", pg_url, (
        "  - name: dmn_slow\n    checks:\n      - row_count: {min: 1}\n"
        "      - custom: {name: sleepy, sql: 'select pg_sleep(5)', max: 1}\n"), timeout="1s")
    daemon = start(config)
    wait_for("the slow check to error",
             lambda: daemon.value("dq_check_up", "dmn_slow", "sleepy") == 0)
    assert daemon.value("dq_check_passed", "dmn_slow", "sleepy") == 0
    assert daemon.value("dq_check_up", "dmn_slow", "row_count") == 1
    assert daemon.value("dq_custom_value", "dmn_slow", "sleepy") is None  # never had a value
    checked = wait_for("the run's log event", lambda: daemon.event("table checked",
                                                                   table="dmn_slow"))
    assert (checked["level"], checked["errors"], checked["passed"]) == ("warning", 1, 1)
    assert checked["error"].startswith("statement_timeout (1s) exceeded")
    assert daemon.value("dq_check_duration_seconds", "dmn_slow", "sleepy") < 4.5
    assert daemon.stop() == 0


def _running_sleeps(pg_conn: psycopg.Connection[Any]) -> int:
    row = pg_conn.execute("select count(*) from pg_stat_activity where datname = current_database()"
                          " and application_name = 'dqmon' and state = 'active'"
                          " and query like '%pg_sleep(30)%'").fetchone()
    return int(row[0]) if row else 0


def test_sigterm_cancels_running_queries_and_exits_zero_within_the_grace_period(
        tmp_path: Path, pg_url: str, pg_conn: psycopg.Connection[Any], make_table: MakeTable,
        start: Callable[..., Daemon]) -> None:
    """SIGTERM during a 30 s query: it is cancelled, telemetry flushed, exit 0 within 2 s grace."""
    make_table("dmn_term", {"id": "int"}, [(1,)])
    config = write_config(tmp_path / "checks.yaml", pg_url, (
        "  - name: dmn_term\n    checks:\n"
        "      - custom: {name: long, sql: 'select pg_sleep(30)', max: 1}\n"), timeout="60s")
    daemon = start(config, "--grace-period", "2s")
    wait_for("the long query to run", lambda: _running_sleeps(pg_conn) == 1)
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=10) == 0
    assert wait_for("the query to be gone", lambda: _running_sleeps(pg_conn) == 0, 5) is True
    cancelling = daemon.event("cancelling running queries")
    assert cancelling is not None and cancelling["queries"] == 1
    checked = daemon.event("table checked", table="dmn_term")
    assert checked is not None and "canceling statement due to user request" in checked["error"]
    stopped = daemon.event("stopped")
    assert stopped is not None and (stopped["signal"], stopped["clean"]) == ("SIGTERM", True)


def test_sigterm_flushes_otlp_beside_metrics(
        tmp_path: Path, pg_url: str, make_table: MakeTable,
        start: Callable[..., Daemon]) -> None:
    """OTLP push works beside /metrics: with a 1 h interval, SIGTERM's flush delivers the points."""
    from otlp_receiver import OtlpReceiver

    make_table("dmn_otlp", {"id": "int"}, [(1,), (2,)])
    config = write_config(tmp_path / "checks.yaml", pg_url, row_count_table("dmn_otlp"))
    with OtlpReceiver() as receiver:
        daemon = start(config, env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                                    "OTEL_METRIC_EXPORT_INTERVAL": "3600000"}, export=True)
        wait_for("/metrics", lambda: daemon.value("dq_row_count", "dmn_otlp", "row_count"))
        assert receiver.points() == []  # nothing pushed yet: the interval is an hour
        assert daemon.stop() == 0
        rows = [p.value for p in receiver.points()
                if p.name == "dq.row_count" and p.attributes.get("dq.table") == "dmn_otlp"]
        assert rows == [2]
        assert "dq.scan dmn_otlp" in {s.name for s in receiver.spans()}


def test_sighup_reloads_a_good_file_and_rejects_a_broken_one(
        tmp_path: Path, pg_url: str, make_table: MakeTable,
        start: Callable[..., Daemon]) -> None:
    """A good file replaces the checks (removed ones vanish); a broken one keeps the old ones."""
    for name in ("dmn_ra", "dmn_rb", "dmn_rc"):
        make_table(name, {"id": "int"}, [(1,)])
    path = tmp_path / "checks.yaml"
    daemon = start(write_config(path, pg_url, row_count_table("dmn_ra") +
                                row_count_table("dmn_rb")))
    wait_for("a and b", lambda: daemon.tables() == {"dmn_ra", "dmn_rb"})
    write_config(path, pg_url, row_count_table("dmn_ra", 5) + row_count_table("dmn_rc"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for("a and c", lambda: daemon.tables() == {"dmn_ra", "dmn_rc"})
    wait_for("a's new threshold", lambda: daemon.value(
        "dq_check_passed", "dmn_ra", "row_count") == 0)
    path.write_text(path.read_text().replace("min: 5", "min: -5"))
    daemon.proc.send_signal(signal.SIGHUP)
    rejected = wait_for("the rejection", lambda: daemon.event(
        "reload rejected: the old config keeps running"))
    assert rejected["level"] == "error"
    [problem] = rejected["problems"]  # the file, line and field path (the wording is config's)
    assert problem.startswith(f"{path}:10 tables[0].checks[0].row_count.min: ")
    before = daemon.value("dq_check_last_run_timestamp_seconds", "dmn_rc", "row_count") or 0
    wait_for("c to keep running", lambda: (daemon.value(
        "dq_check_last_run_timestamp_seconds", "dmn_rc", "row_count") or 0) > before)
    assert daemon.tables() == {"dmn_ra", "dmn_rc"}
    assert daemon.get("/readyz")[0] == 200
    assert daemon.stop() == 0


def test_three_shards_cover_nine_tables_exactly_once(
        tmp_path: Path, pg_url: str, make_table: MakeTable,
        start: Callable[..., Daemon]) -> None:
    """Daemons with --shard 0/3, 1/3 and DQMON_SHARD=2/3 report disjoint sets covering all 9."""
    names = [f"dmn_shard_{i}" for i in range(9)]
    for name in names:
        make_table(name, {"id": "int"}, [(1,)])
    config = write_config(tmp_path / "checks.yaml", pg_url,
                          "".join(row_count_table(n) for n in names))
    daemons = [start(config, "--shard", "0/3", name="s0"),
               start(config, "--shard", "1/3", name="s1"),
               start(config, env={"DQMON_SHARD": "2/3"}, name="s2")]
    seen: list[set[str]] = []
    for i, daemon in enumerate(daemons):
        expected = {n for n in names if Shard(i, 3).owns(n)}
        seen.append(wait_for(f"shard {i}/3", lambda d=daemon, e=expected: d.tables() == e and e))
    assert [len(s) for s in seen] == [3, 2, 4]  # the stable hash splits these names 3/2/4
    assert sorted(n for s in seen for n in s) == names
    assert [d.stop() for d in daemons] == [0, 0, 0]
