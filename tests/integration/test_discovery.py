"""Discovery on PostgreSQL (SPEC 9): a `discover:` block's tables through run-once and through a
real `dqmon run` daemon, which picks up new tables and forgets dropped ones at each refresh."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import run_cli

pytestmark = [pytest.mark.postgres]

T = TypeVar("T")
REFRESH_S = 2.0
SCHEDULE_S = 1.0
MARGIN_S = 3.0  # a loaded CI machine: the refresh job, the first run and a scrape
INITIAL = ("a_one", "a_two", "a_two_bak", "keep", "other")  # a_one is also listed


# --- helpers -----------------------------------------------------------------------------------

def config_text(url: str, schema: str) -> str:
    """Return a checks.yaml that discovers a_* and keep (no *_bak) and also lists a_one."""
    return f"""\
version: 1
warehouses:
  main:
    url: "{url}"
    max_connections: 2
    statement_timeout: 10s
tables:
  - name: listed_one
    table: {schema}.a_one
    schedule: every 1s
    checks: [row_count: {{min: 1}}]
discover:
  - schemas: [{schema}]
    include: ["a_*", "keep"]
    exclude: ["*_bak"]
    refresh: {REFRESH_S:g}s
    schedule: every {SCHEDULE_S:g}s
    checks: [volume: {{}}, schema_change: {{}}]
"""


def make(conn: psycopg.Connection[Any], name: str, rows: int = 4) -> None:
    """Create a table with `rows` rows and ANALYZE it."""
    conn.execute(f"CREATE TABLE {name} (id integer, note text)")
    conn.execute(f"INSERT INTO {name} SELECT i, 'n' || i FROM generate_series(1, {rows}) i")
    conn.execute(f"ANALYZE {name}")


@pytest.fixture
def schema(pg_conn: psycopg.Connection[Any]) -> Iterator[str]:
    """A fresh schema with the INITIAL tables (the reader role reads it: pg_read_all_data)."""
    name = f"disc_{uuid.uuid4().hex[:8]}"
    pg_conn.execute(f"CREATE SCHEMA {name}")
    try:
        for table in INITIAL:
            make(pg_conn, f"{name}.{table}")
        yield name
    finally:
        pg_conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(0.1)


class Daemon:
    """A `dqmon run --no-export` subprocess serving /metrics on a free port."""

    def __init__(self, tmp_path: Path, config: Path) -> None:
        self.port = free_port()
        self.log_path = tmp_path / "daemon.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dqmon", "run", "--config", str(config), "--listen",
             f"127.0.0.1:{self.port}", "--log-format", "json", "--no-export"],
            stdout=subprocess.DEVNULL, stderr=self._log, env=dict(os.environ))

    def metrics(self) -> str:
        """Return the /metrics body, or "" while the server is not up."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=5) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, OSError):
            assert self.proc.poll() is None, f"daemon exited:\n{self.log_path.read_text()}"
            return ""

    def series(self) -> dict[tuple[str, str, str], float]:
        """Return every dq_* sample by (metric, dq_table, dq_check)."""
        found: dict[tuple[str, str, str], float] = {}
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if "dq_table" in sample.labels:
                    key = (sample.name, sample.labels["dq_table"], sample.labels["dq_check"])
                    found[key] = sample.value
        return found

    def tables(self) -> frozenset[str]:
        """Return every dq_table value on /metrics, whatever the metric."""
        return frozenset(table for _, table, _ in self.series())

    def stop(self) -> int:
        """SIGTERM the daemon; return its exit code (killed after 15 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            self.kill()

    def kill(self) -> None:
        """Kill the daemon if it still runs and close its log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def daemon(tmp_path: Path, pg_url: str, schema: str) -> Iterator[Daemon]:
    """A daemon discovering `schema` as the least-privilege reader; killed after the test."""
    config = tmp_path / "checks.yaml"
    config.write_text(config_text(pg_url, schema))
    started = Daemon(tmp_path, config)
    yield started
    started.kill()


# --- tests -------------------------------------------------------------------------------------

def test_run_once_checks_discovered_tables_and_listed_ones_once(
        tmp_path: Path, pg_url: str, schema: str, pg_conn: psycopg.Connection[Any],
        capsys: pytest.CaptureFixture[str]) -> None:
    """run-once checks every table matching include and not exclude, as schema.table; a listed
    table keeps its own entry only."""
    config = tmp_path / "checks.yaml"
    config.write_text(config_text(pg_url, schema))
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--format", "json",
                             "--no-export")
    assert code == 0, err
    results = json.loads(out)["results"]
    assert sorted((r["table"], r["check"]) for r in results) == [
        (f"{schema}.a_two", "schema_change"), (f"{schema}.a_two", "volume"),
        (f"{schema}.keep", "schema_change"), (f"{schema}.keep", "volume"),
        ("listed_one", "row_count")]
    volume = next(r for r in results if r["table"] == f"{schema}.keep" and r["check"] == "volume")
    assert volume["value"] == 4
    assert volume["attributes"] == {"dq.warehouse": "main", "dq.table": f"{schema}.keep",
                                    "dq.check": "volume", "dq.source": "metadata"}


@pytest.mark.slow
def test_daemon_discovers_new_tables_and_forgets_dropped_ones(
        daemon: Daemon, schema: str, pg_conn: psycopg.Connection[Any]) -> None:
    """A running daemon reports a new matching table within one refresh, never an excluded one,
    and drops every series of a dropped table, without a restart."""
    expected = {"listed_one", f"{schema}.a_two", f"{schema}.keep"}
    wait_for("the first discovered tables", lambda: daemon.tables() == expected, 45)
    series = daemon.series()
    assert series[("dq_row_count", f"{schema}.keep", "volume")] == 4
    assert series[("dq_schema_changes", f"{schema}.a_two", "schema_change")] == 0
    assert series[("dq_check_up", f"{schema}.keep", "volume")] == 1
    assert series[("dq_row_count", "listed_one", "row_count")] == 4
    assert not any(t == f"{schema}.a_one" for _, t, _ in series)  # listed: its own name only

    make(pg_conn, f"{schema}.a_new", rows=9)
    make(pg_conn, f"{schema}.a_new_bak")
    created = time.monotonic()
    wait_for("a_new on /metrics", lambda: f"{schema}.a_new" in daemon.tables(),
             REFRESH_S + SCHEDULE_S + MARGIN_S)
    assert time.monotonic() - created <= REFRESH_S + SCHEDULE_S + MARGIN_S
    wait_for("a_new's volume", lambda: daemon.series().get(
        ("dq_row_count", f"{schema}.a_new", "volume")) == 9, SCHEDULE_S + MARGIN_S)

    pg_conn.execute(f"DROP TABLE {schema}.a_two")
    wait_for("a_two's series to leave /metrics",
             lambda: f'dq_table="{schema}.a_two"' not in daemon.metrics(),
             REFRESH_S + MARGIN_S)
    time.sleep(REFRESH_S)  # one more refresh and runs: nothing excluded or dropped comes back
    assert daemon.tables() == {"listed_one", f"{schema}.keep", f"{schema}.a_new"}
    assert daemon.stop() == 0
