"""Soak benchmark (not a test): `dqmon run` over a few hundred tables for several minutes.

Builds N small tables in SQLite and/or PostgreSQL, starts the real daemon as a subprocess,
samples its RSS every second and scrapes /metrics, then SIGTERMs it and reports checks per
second (from its "table checked" log events), peak RSS, and RSS growth between the first and
the last minute.

    /work/venv/bin/python benchmarks/soak.py --tables 300 --minutes 5 --warehouse both
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROWS = 1000
PG_ADMIN = os.environ.get("DQMON_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
CHECKS = """    checks:
      - row_count: {min: 1}
      - completeness: {columns: [amount, status]}
      - validity: {name: amount_positive, condition: "amount > 0"}
      - freshness: {column: created_at, max_age: 1d}
      - uniqueness: {columns: [id]}
"""
CHECKS_PER_TABLE = 6  # completeness counts once per column


@dataclass
class Report:
    """What one soak run measured."""

    warehouse: str
    tables: int
    schedule: str
    seconds: float
    table_runs: int
    checks: int
    errors: int
    missed: int
    peak_rss_mib: float
    first_minute_rss_mib: float
    last_minute_rss_mib: float
    scrape_ms: float
    series: int
    rss_by_minute_mib: list[float]

    @property
    def checks_per_s(self) -> float:
        return self.checks / self.seconds

    def row(self) -> str:
        growth = self.last_minute_rss_mib - self.first_minute_rss_mib
        return (f"| {self.warehouse} | {self.tables} | {self.schedule} | {self.seconds / 60:.1f} "
                f"| {self.checks_per_s:.1f} | {self.errors} | {self.missed} "
                f"| {self.peak_rss_mib:.1f} | {self.first_minute_rss_mib:.1f} → "
                f"{self.last_minute_rss_mib:.1f} ({growth:+.1f}) | {self.scrape_ms:.0f} "
                f"| {self.series} |")

    def trend(self) -> str:
        """Return the mean RSS of each minute, to tell warm-up from a leak."""
        return f"{self.warehouse}: RSS by minute (MiB): " + ", ".join(
            f"{mib:.1f}" for mib in self.rss_by_minute_mib)


HEADER = ("| warehouse | tables | schedule | minutes | checks/s | errors | missed runs "
          "| peak RSS MiB | RSS first → last minute MiB | /metrics ms | series |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


# --- warehouses --------------------------------------------------------------------------------

def table_rows(seed: int) -> list[tuple[int, float | None, str, str]]:
    """Return ROWS rows with a few nulls: id, amount, status, created_at (ISO text)."""
    return [(i, None if (i + seed) % 97 == 0 else float(i % 500), "paid" if i % 3 else "new",
             f"2026-11-{1 + i % 20:02d}T12:00:00") for i in range(ROWS)]


def build_sqlite(path: Path, tables: int) -> str:
    """Create `tables` tables in a SQLite file; return its URL."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for t in range(tables):
            conn.execute(f"CREATE TABLE soak_{t} (id INTEGER, amount REAL, status TEXT, "
                         "created_at TEXT)")
            conn.executemany(f"INSERT INTO soak_{t} VALUES (?, ?, ?, ?)", table_rows(t))
        conn.commit()
    return f"sqlite:///{path}"


@contextlib.contextmanager
def postgres_database(tables: int) -> Iterator[str]:
    """Create a throwaway PostgreSQL database with `tables` tables; yield its URL; drop it."""
    import psycopg

    name = f"dqmon_soak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        info = admin.info
        dsn = f"host={info.host} port={info.port} user={info.user} dbname={name}"
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for t in range(tables):
                    conn.execute(f"CREATE TABLE soak_{t} (id int, amount numeric, status text, "
                                 "created_at timestamptz)")
                    with conn.cursor() as cur:
                        cur.executemany(f"INSERT INTO soak_{t} VALUES (%s, %s, %s, %s)",
                                        table_rows(t))
                conn.execute("ANALYZE")
            yield f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_config(path: Path, url: str, tables: int, schedule: str, connections: int) -> None:
    """Write a checks.yaml with `tables` tables of CHECKS_PER_TABLE checks each."""
    body = "".join(f"  - name: soak_{t}\n{CHECKS}" for t in range(tables))
    path.write_text(f"version: 1\nwarehouses:\n  main:\n    url: {url}\n"
                    f"    statement_timeout: 30s\n    max_connections: {connections}\n"
                    f"defaults:\n  schedule: {schedule}\ntables:\n{body}")


# --- the daemon --------------------------------------------------------------------------------

def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Read a memory field (VmRSS, VmHWM) of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def scrape(port: int) -> tuple[float, int]:
    """GET /metrics; return the milliseconds it took and the number of samples."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    lines = [line for line in body.splitlines() if line and not line.startswith("#")]
    return (time.perf_counter() - started) * 1000, len(lines)


def soak(warehouse: str, url: str, args: argparse.Namespace, workdir: Path) -> Report:
    """Run the daemon for args.minutes and measure it."""
    config = workdir / f"{warehouse}.yaml"
    write_config(config, url, args.tables, args.schedule, args.connections)
    port = free_port()
    log_path = workdir / f"{warehouse}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dqmon", "run", "--config", str(config),
                                 "--listen", f"127.0.0.1:{port}", "--no-export",
                                 "--log-format", "json"], stderr=log)
        try:
            samples, scrapes, peak = sample(proc, port, args.minutes * 60)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    return summarize(warehouse, args, log_path, samples, scrapes, peak)


def sample(proc: subprocess.Popen[bytes], port: int,
           seconds: float) -> tuple[list[tuple[float, int]], list[tuple[float, int]], int]:
    """Sample RSS every second and scrape every 15 s; return (rss samples, scrapes, peak)."""
    start = time.monotonic()
    samples: list[tuple[float, int]] = []
    scrapes: list[tuple[float, int]] = []
    next_scrape = start + 5
    while (now := time.monotonic()) - start < seconds:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited early with {proc.returncode}")
        samples.append((now - start, rss_kib(proc.pid)))
        if now >= next_scrape:
            with contextlib.suppress(OSError):
                scrapes.append(scrape(port))
            next_scrape = now + 15
        time.sleep(1)
    return samples, scrapes, rss_kib(proc.pid, "VmHWM")


def summarize(warehouse: str, args: argparse.Namespace, log_path: Path,
              samples: list[tuple[float, int]], scrapes: list[tuple[float, int]],
              peak_kib: int) -> Report:
    """Turn the log events and samples into a Report."""
    events = [json.loads(line) for line in log_path.read_text().splitlines()
              if line.startswith("{")]
    runs = [e for e in events if e["event"] == "table checked"]
    missed = sum(e["event"].startswith(("run missed", "run skipped")) for e in events)
    span = samples[-1][0] if samples else args.minutes * 60.0  # from start to SIGTERM
    window = min(60.0, span / 4)
    first = [kib for t, kib in samples if t <= window]
    last = [kib for t, kib in samples if t >= samples[-1][0] - window]
    return Report(warehouse=warehouse, tables=args.tables, schedule=args.schedule, seconds=span,
                  table_runs=len(runs), checks=sum(e["checks"] for e in runs),
                  errors=sum(e["errors"] for e in runs), missed=missed,
                  peak_rss_mib=peak_kib / 1024,
                  first_minute_rss_mib=statistics.mean(first) / 1024,
                  last_minute_rss_mib=statistics.mean(last) / 1024,
                  scrape_ms=statistics.median(ms for ms, _ in scrapes) if scrapes else 0.0,
                  series=scrapes[-1][1] if scrapes else 0,
                  rss_by_minute_mib=by_minute(samples))


def by_minute(samples: list[tuple[float, int]]) -> list[float]:
    """Return the mean RSS (MiB) of each whole or partial minute of the samples."""
    minutes: dict[int, list[int]] = {}
    for t, kib in samples:
        minutes.setdefault(int(t // 60), []).append(kib)
    return [statistics.mean(kibs) / 1024 for _, kibs in sorted(minutes.items())]


def main() -> None:
    """Parse the arguments, run each warehouse's soak, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--schedule", default="every 10s")
    parser.add_argument("--connections", type=int, default=4, help="max_connections")
    parser.add_argument("--warehouse", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    reports = []
    with tempfile.TemporaryDirectory(prefix="dqmon-soak-") as tmp:
        workdir = Path(tmp)
        if args.warehouse in ("sqlite", "both"):
            url = build_sqlite(workdir / "soak.db", args.tables)
            reports.append(soak("sqlite", url, args, workdir))
            print(reports[-1].row(), file=sys.stderr)
        if args.warehouse in ("postgresql", "both"):
            with postgres_database(args.tables) as url:
                reports.append(soak("postgresql", url, args, workdir))
                print(reports[-1].row(), file=sys.stderr)
    print(HEADER)
    for report in reports:
        print(report.row())
    for report in reports:
        print(report.trend())


if __name__ == "__main__":
    main()
