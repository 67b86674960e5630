"""A real `dqmon run` survives SIGHUP with any broken file and keeps the last good config (issue 8).

SPEC section 6: "SIGHUP reloads checks.yaml: any bad new file (unreadable, invalid, or failing
only when built) is rejected with its reason and the old one keeps running." The warehouse is
a SQLite file the test builds, so no server is needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.slow]

T = TypeVar("T")
LAST_RUN = "dq_check_last_run_timestamp_seconds"
GOOD = """\
version: 1
warehouses:
  main: {{url: "sqlite:///{db}"}}
defaults: {{schedule: every 1s}}
tables:
  - name: orders
    checks:
      - row_count: {{min: 1}}
      - validity: {{name: status_known, column: status, in: [paid, late]}}
{extra}"""


def good(db: Path, extra: str = "") -> bytes:
    """Return the good config, optionally with more lines at the end of `tables:`."""
    return GOOD.format(db=db, extra=extra).encode()


def broken_files(db: Path) -> dict[str, tuple[bytes, str]]:
    """Return name -> (file bytes, words the rejection's first problem holds)."""
    text = good(db).decode()
    return {
        "control character": (text.replace("tables:", "tables:  # \x07").encode(),
                              ":5: invalid YAML: control character U+0007"),
        "nul byte": (text.replace("min: 1", "min: 1\x00").encode(),
                     ":8: invalid YAML: control character U+0000"),
        "invalid YAML": (text.replace("in: [paid, late]", "in: [paid, late").encode(),
                         "invalid YAML: unclosed '['"),
        "unknown key": (good(db, "    colour: blue\n"), ":10 tables[0].colour: unknown key"),
        "lag out of range": (good(db, "    partition: {column: at, lag: 5000}\n"),
                             ":10 tables[0].partition.lag: must be at most 3660"),
        "mixed in": (text.replace("[paid, late]", "[1, paid]").encode(),
                     ":9 tables[0].checks[1].validity.in: mixes numbers and text"),
        "not UTF-8": (b"version: 1\n# caf\xe9\n", ":2: the file is not UTF-8 text"),
        "empty": (b"", ":1: the file is empty"),
        "deep nesting": (b"version: " + b"[" * 100_000, ":1: the file nests lists and mappings"),
        "unset variable": (text.replace(f"sqlite:///{db}", "${DQMON_RELOAD_NOPE}").encode(),
                           ":3 warehouses.main.url: environment variable DQMON_RELOAD_NOPE"),
    }


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 10.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


class Daemon:
    """A `dqmon run` subprocess with its own port and a JSON log file."""

    def __init__(self, tmp_path: Path, config: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.log_path = tmp_path / "daemon.log"
        env = {k: v for k, v in os.environ.items() if k != "DQMON_RELOAD_NOPE"}
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dqmon", "run", "--config", str(config), "--listen",
                 f"127.0.0.1:{self.port}", "--log-format", "json", "--no-export"],
                stderr=log, stdout=subprocess.DEVNULL, env=env)

    def last_run(self, table: str, check: str) -> float | None:
        """Scrape /metrics; return one check's last-run timestamp, or None."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=5) as response:
                body = response.read().decode()
        except (urllib.error.URLError, OSError):
            return None
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                labels = sample.labels
                if (sample.name == LAST_RUN and labels.get("dq_table") == table
                        and labels.get("dq_check") == check):
                    return float(sample.value)
        return None

    def events(self, name: str) -> list[dict[str, Any]]:
        """Return the JSON log events called `name`, in order."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [e for e in (json.loads(line) for line in lines if line.startswith("{"))
                if e.get("event") == name]

    def stop(self) -> int:
        """SIGTERM the daemon and return its exit code (kill it if it will not stop)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """Build the SQLite warehouse file with an `orders` table."""
    db = tmp_path / "wh.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, status TEXT)")
        conn.execute("INSERT INTO orders VALUES (1, 'paid'), (2, 'late')")
        conn.commit()
    return db


@pytest.fixture
def daemon(tmp_path: Path, warehouse: Path) -> Iterator[tuple[Daemon, Path]]:
    """A daemon running the good config every second; stopped (or killed) after the test."""
    path = tmp_path / "checks.yaml"
    path.write_bytes(good(warehouse))
    running = Daemon(tmp_path, path)
    try:
        yield running, path
    finally:
        running.stop()


REJECTED = "reload rejected: the old config keeps running"


def reload_with(daemon: Daemon, path: Path, content: bytes | None) -> dict[str, Any]:
    """Put `content` (None: a directory) at `path`, SIGHUP, and return the rejection event."""
    if content is None:
        path.unlink()
        path.mkdir()
    else:
        path.write_bytes(content)
    seen = len(daemon.events(REJECTED))
    daemon.proc.send_signal(signal.SIGHUP)
    rejections = wait_for("the rejection", lambda: daemon.events(REJECTED)[seen:])
    assert len(rejections) == 1
    return rejections[0]


def test_every_broken_file_is_rejected_and_the_good_config_keeps_running(
        daemon: tuple[Daemon, Path], warehouse: Path) -> None:
    """Each broken file is one logged rejection naming it; the daemon lives and keeps checking."""
    running, path = daemon
    wait_for("the first run", lambda: running.last_run("orders", "status_known"), 15)
    cases: list[tuple[str, bytes | None, str]] = [
        (name, content, words) for name, (content, words) in broken_files(warehouse).items()]
    cases.append(("a directory", None, ": cannot read the file: Is a directory"))
    for name, content, words in cases:
        event = reload_with(running, path, content)
        assert running.proc.poll() is None, f"{name}: the daemon died"
        assert (event["level"], event["file"]) == ("error", str(path)), name
        assert event["problems"][0].startswith(str(path) + ":"), (name, event["problems"])
        assert words in event["problems"][0], (name, event["problems"])
        before = running.last_run("orders", "status_known") or 0.0
        wait_for(f"runs to go on after '{name}'",
                 lambda b=before: (running.last_run("orders", "row_count") or 0.0) > b)
    assert running.events("reload failed: the old config keeps running") == []
    path.rmdir()
    path.write_bytes(good(warehouse, "  - {name: again, table: orders, "
                                     "checks: [{row_count: {min: 1}}]}\n"))
    running.proc.send_signal(signal.SIGHUP)
    wait_for("a good file to load after all that", lambda: running.last_run("again", "row_count"))
    assert running.stop() == 0
