"""Scale benchmark (issue 9, SPEC 11): `dqmon run` over 500 to 10,000 PostgreSQL tables.

Measures, does not assert. For each size N it
  1. creates a database `dqmon_scale_<N>` with N small tables (5 rows each) in schema `scale`,
     committed in batches of BATCH_TABLES tables (one transaction for all of them would need
     3 locks per table: table, TOAST table and TOAST index, past the default lock table of
     64 x max_connections), then ANALYZE, and a login role `dqmon_scale_<N>` that has only
     CONNECT and `pg_read_all_data` (docs/security.md); an existing database with exactly N
     tables in `scale` is reused (see --keep);
  2. writes a checks.yaml:
       --mode scan      N listed tables x 6 scan checks (row_count, completeness x 2,
                        validity, freshness, uniqueness), `every <period>s`;
       --mode metadata  one `discover:` block over `scale` with volume, freshness
                        {source: metadata} and schema_change, `every <period>s`;
  3. starts `python -m dqmon run --no-export --listen 127.0.0.1:<port> --log-format json`,
     samples its CPU and RSS from /proc every second and scrapes /metrics every
     --scrape-interval seconds (what a Prometheus would do; these scrapes are part of the
     daemon's CPU), for --duration seconds after the daemon is ready;
  4. then scrapes /metrics 5 more times (fewer if they overrun --final-budget, at least once),
     stops the daemon with SIGTERM, times
     `dqmon rules --generic` on the same file, and drops the database and role (unless --keep).

What each column means (one Markdown row per size, and a detail block under the table):
  startup s          process start -> /readyz answers 200 (imports, config, discovery)
  first round s      ready -> the latest *first* run of any check, read from the first value of
                     each `dq_check_last_run_timestamp_seconds` series seen on /metrics; runs
                     are spread over the first period by design (daemon.spread_s), so ~1 period
                     is the expected value
  done/due           checks run (the daemon's "table checked" log events) over checks due by
                     the schedule (each table's stable offset spread_s + k x period, from the
                     "config loaded" event) between ready and the end; both per second
  p95 lag            at the first of the final scrapes (the end of the window): p95 over all
                     expected checks of (the time the scrape was sent -
                     dq_check_last_run_timestamp_seconds); a check without a series counts
                     as (scrape time - ready). With runs spread evenly a healthy
                     daemon shows ~0.95 period; the SPEC 11 target is < 1 period
  CPU %              daemon user+sys CPU over the observation window, % of one core (the
                     machine has 2: 200 % is all of it); peak = busiest 10 s window
  peak RSS           VmHWM of the daemon at the end
  series / MiB / ms  non-comment lines, size and median wall time of the final /metrics scrapes
  overflow           series with an `otel_metric_overflow` label (must be 0), and the
                     daemon's own dq_monitor overflow gauge
  rules              `dqmon rules --generic` on the same file: wall time (fresh process, config
                     load included) and output size

Shorter periods keep a run bounded: with --period 60 or 120 instead of 300/900 the rates
(checks/s, CPU %) are period_target/period times what the target schedule costs, the first
round and the lag scale with the period, and series, bytes, scrape time, RSS and rules do not
depend on the period.

    python benchmarks/scale.py --tables 10000 --build-only     # build once (minutes), keep it
    python benchmarks/scale.py --mode metadata --tables 2000,10000 --period 120
    python benchmarks/scale.py --mode scan --tables 500,2000 --period 60
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

PG_ADMIN = os.environ.get("DQMON_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
SCHEMA = "scale"
BATCH_TABLES = 500  # tables per transaction (3 relation locks each)
STATEMENTS_PER_EXECUTE = 100  # tables per round trip (simple protocol: several statements)
ROWS = ("(1, 10.5, 'paid', now() - interval '1 hour'), (2, 20, 'new', now()), "
        "(3, 30, 'paid', now()), (4, 40.25, 'shipped', now()), (5, 50, 'paid', now())")
SCAN_CHECKS = """    checks:
      - row_count: {min: 1}
      - completeness: {columns: [amount, status]}
      - validity: {name: amount_positive, condition: "amount > 0"}
      - freshness: {column: created_at, max_age: 1d}
      - uniqueness: {columns: [id]}
"""
METADATA_CHECKS = """    checks:
      - volume: {min: 1}
      - freshness: {source: metadata, max_age: 1d}
      - schema_change: {}
"""
CHECKS_PER_TABLE = {"scan": 6, "metadata": 3}  # completeness counts once per column
DEFAULT_PERIOD_S = {"scan": 300.0, "metadata": 900.0}
LAST_RUN = "dq_check_last_run_timestamp_seconds{"
OVERFLOW_LABEL = "otel_metric_overflow"
FINAL_SCRAPES = 5  # at the end, fewer when they overrun --final-budget
CPU_WINDOW_S = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")

HEADER = ("| mode | tables | checks | period s | observed s | startup s | first round s "
          "| done/due checks/s | p95 lag s (x period) | CPU % mean / peak 10 s | peak RSS MiB "
          "| /metrics series | /metrics MiB | scrape ms | overflow | rules --generic s / KiB "
          "| check errors / warnings / HTTP errors |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


# --- the database ------------------------------------------------------------------------------

def table_names(tables: int) -> list[str]:
    """Return the warehouse table names t00000, t00001, ..."""
    return [f"t{i:05d}" for i in range(tables)]


def _create_sql(name: str) -> str:
    return (f"CREATE TABLE {SCHEMA}.{name} (id int, amount numeric, status text, "
            f"created_at timestamptz); INSERT INTO {SCHEMA}.{name} VALUES {ROWS};")


def _existing_tables(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select count(*) from pg_tables where schemaname = %s",
                           (SCHEMA,)).fetchone()
    return int(row[0]) if row else 0


def _fill(dsn: str, tables: int) -> None:
    """Create the schema and the tables, BATCH_TABLES per transaction, then ANALYZE."""
    import psycopg

    names = table_names(tables)
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        for start in range(0, tables, BATCH_TABLES):
            batch = names[start:start + BATCH_TABLES]
            for at in range(0, len(batch), STATEMENTS_PER_EXECUTE):
                conn.execute("".join(_create_sql(n) for n in
                                     batch[at:at + STATEMENTS_PER_EXECUTE]))
            conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")  # reltuples for volume (autovacuum may be off, as here)


@contextlib.contextmanager
def scale_database(tables: int, keep: bool) -> Iterator[tuple[str, float]]:
    """Create (or reuse) dqmon_scale_<N> and its read-only role; yield (URL, build seconds)."""
    import psycopg

    name = f"dqmon_scale_{tables}"
    started = time.perf_counter()
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        info = admin.info
        dsn = f"host={info.host} port={info.port} user={info.user} dbname={name}"
        exists = admin.execute("select 1 from pg_database where datname = %s",
                               (name,)).fetchone() is not None
        if exists and _existing_tables(dsn) != tables:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = False
        try:
            if not exists:
                admin.execute(f'CREATE DATABASE "{name}"')
                _fill(dsn, tables)
            _create_role(admin, name)
            build_s = time.perf_counter() - started
            yield f"postgresql+psycopg://{name}@{info.host}:{info.port}/{name}", build_s
        finally:
            if not keep:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def _create_role(admin: object, name: str) -> None:
    """A login role with CONNECT and pg_read_all_data only, read-only by default."""
    execute = admin.execute  # type: ignore[attr-defined]
    if execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone() is None:
        execute(f'CREATE ROLE "{name}" LOGIN')
    execute(f'GRANT CONNECT ON DATABASE "{name}" TO "{name}"')
    execute(f'GRANT pg_read_all_data TO "{name}"')
    execute(f'ALTER ROLE "{name}" SET default_transaction_read_only = on')


# --- the config --------------------------------------------------------------------------------

def write_config(path: Path, url: str, tables: int, mode: str, period_s: float,
                 connections: int) -> list[str]:
    """Write the checks.yaml; return the dq.table names the daemon will monitor."""
    head = (f"version: 1\nwarehouses:\n  main:\n    url: {url}\n    statement_timeout: 30s\n"
            f"    max_connections: {connections}\n")
    schedule = f"every {period_s:g}s"
    names = table_names(tables)
    if mode == "scan":
        body = "".join(f"  - name: {n}\n    table: {SCHEMA}.{n}\n{SCAN_CHECKS}" for n in names)
        path.write_text(f"{head}defaults:\n  schedule: {schedule}\ntables:\n{body}")
        return names
    path.write_text(f"{head}discover:\n  - warehouse: main\n    schemas: [{SCHEMA}]\n"
                    f"    refresh: 1h\n    schedule: {schedule}\n{METADATA_CHECKS}")
    return [f"{SCHEMA}.{n}" for n in names]


# --- the daemon and /proc ----------------------------------------------------------------------

def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_s(pid: int) -> float:
    """Return the user+system CPU seconds of a process (all its threads)."""
    with contextlib.suppress(ImportError):
        import psutil  # type: ignore[import-untyped]

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def memory_kib(pid: int, field_name: str = "VmRSS") -> int:
    """Read a memory field (VmRSS, VmHWM) of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def get(url: str, timeout_s: float = 60.0) -> tuple[int, bytes]:
    """GET a URL; return (status, body); status 0 when the connection failed."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


@dataclass
class Scrape:
    """One /metrics answer."""

    at_s: float  # unix time the request was sent (Prometheus stamps samples so)
    ms: float
    status: int
    size: int
    series: int
    overflow: int  # series with an otel_metric_overflow label
    monitor_overflow: float | None  # the daemon's own dq_monitor overflow gauge
    last_run: dict[str, float]  # check's label set -> last run (unix s)


def scrape(port: int) -> Scrape:
    """GET /metrics and pick out what the benchmark needs."""
    at_s, started = time.time(), time.perf_counter()
    status, body = get(f"http://127.0.0.1:{port}/metrics")
    ms = (time.perf_counter() - started) * 1000
    text = body.decode()
    lines = [line for line in text.split("\n") if line and not line.startswith("#")]
    last_run: dict[str, float] = {}
    overflow, monitor = 0, None
    for line in lines:
        if line.startswith(LAST_RUN):
            labels, _, value = line.rpartition(" ")
            last_run[_check_key(labels)] = float(value)
        if OVERFLOW_LABEL in line:
            overflow += 1
        if line.startswith("dq_monitor_") and "overflow" in line.partition("{")[0]:
            monitor = float(line.rpartition(" ")[2])
    return Scrape(at_s, ms, status, len(body), len(lines), overflow, monitor, last_run)


def _check_key(labels: str) -> str:
    """Return `table/check` from a series' label set (other labels do not name the check)."""
    table = re.search(r'dq_table="([^"]*)"', labels)
    check = re.search(r'dq_check="([^"]*)"', labels)
    return f"{table.group(1) if table else '?'}/{check.group(1) if check else '?'}"


@dataclass
class Observation:
    """What sampling one daemon run collected."""

    spawned_s: float
    ready_s: float
    end_s: float = 0.0
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (unix s, CPU s)
    rss_kib: list[int] = field(default_factory=list)
    peak_kib: int = 0
    scrapes: list[Scrape] = field(default_factory=list)
    final: list[Scrape] = field(default_factory=list)
    first_run: dict[str, float] = field(default_factory=dict)  # check -> first last_run seen


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout_s: float) -> float:
    """Poll /readyz until it answers 200; return the unix time it did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited early with {proc.returncode}")
        if get(f"http://127.0.0.1:{port}/readyz", 2.0)[0] == 200:
            return time.time()
        time.sleep(0.2)
    raise SystemExit(f"the daemon was not ready within {timeout_s:.0f} s")


def observe(proc: subprocess.Popen[bytes], port: int, spawned_s: float,
            args: argparse.Namespace, period_s: float) -> Observation:
    """Sample CPU and RSS every second and scrape /metrics every scrape interval."""
    ready_s = wait_ready(proc, port, timeout_s=max(120.0, period_s))
    obs = Observation(spawned_s, ready_s)
    duration_s = args.duration if args.duration is not None else 1.2 * period_s
    next_scrape = time.monotonic()
    while (now_s := time.time()) - ready_s < duration_s:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited early with {proc.returncode}")
        obs.cpu.append((now_s, cpu_s(proc.pid)))
        obs.rss_kib.append(memory_kib(proc.pid))
        if time.monotonic() >= next_scrape:
            next_scrape = time.monotonic() + args.scrape_interval
            _keep(obs, scrape(port), obs.scrapes)
        time.sleep(1.0)
    obs.end_s = time.time()
    obs.cpu.append((obs.end_s, cpu_s(proc.pid)))
    budget_end = time.monotonic() + args.final_budget
    while len(obs.final) < FINAL_SCRAPES and (not obs.final or time.monotonic() < budget_end):
        _keep(obs, scrape(port), obs.final)
    obs.peak_kib = memory_kib(proc.pid, "VmHWM")
    return obs


def _keep(obs: Observation, answer: Scrape, into: list[Scrape]) -> None:
    into.append(answer)
    for check, last_s in answer.last_run.items():
        obs.first_run.setdefault(check, last_s)


# --- the log -----------------------------------------------------------------------------------

def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class LogFacts:
    """What the daemon's JSON log says."""

    loaded_s: float | None = None
    discovered: int | None = None
    first_run: dict[str, float] = field(default_factory=dict)  # table -> first run's end
    last_run: dict[str, float] = field(default_factory=dict)  # table -> last run's end by until_s
    checks_done: int = 0
    check_errors: int = 0
    warnings: dict[str, int] = field(default_factory=dict)


def read_log(path: Path, until_s: float) -> LogFacts:
    """Count the checks run until `until_s`, errors and warnings, and when the config loaded."""
    facts = LogFacts()
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        at_s = _unix(event["time"])
        if event["event"] == "config loaded" and facts.loaded_s is None:
            facts.loaded_s, facts.discovered = at_s, event.get("tables")
        elif event["event"] == "table checked" and at_s <= until_s:
            facts.checks_done += int(event["checks"])
            facts.check_errors += int(event["errors"])
            facts.first_run.setdefault(event["table"], at_s)
            facts.last_run[event["table"]] = at_s
        if event["level"] in ("warning", "error") and event["event"] != "table checked":
            facts.warnings[event["event"]] = facts.warnings.get(event["event"], 0) + 1
    return facts


def checks_due(tables: list[str], checks_per_table: int, period_s: float, start_s: float,
               end_s: float) -> int:
    """Count the checks due between start_s and end_s: table t first runs at spread_s(t)."""
    from dqmon.daemon import spread_s

    runs = 0
    for name in tables:
        first_s = start_s + spread_s(name, period_s)
        if first_s <= end_s:
            runs += int((end_s - first_s) // period_s) + 1
    return runs * checks_per_table


# --- one size ----------------------------------------------------------------------------------

@dataclass
class Report:
    """One size's measurements."""

    mode: str
    tables: int
    checks: int
    period_s: float
    build_s: float
    obs: Observation
    facts: LogFacts
    due: int
    rules_s: float
    rules_kib: float
    rules_rc: int
    loadavg: tuple[str, str]

    @property
    def observed_s(self) -> float:
        return self.obs.end_s - self.obs.ready_s

    def first_round_s(self) -> str:
        """Ready -> the latest first run, or how many checks never ran."""
        if len(self.obs.first_run) < self.checks:
            return f"incomplete ({len(self.obs.first_run)}/{self.checks} checks)"
        return f"{max(self.obs.first_run.values()) - self.obs.ready_s:.0f}"

    def lags_s(self, at: int = 0) -> list[float]:
        """Per expected check at final scrape `at`: scrape time - last run (never run: - ready).

        The first final scrape is the end of the window; the later ones follow back to back,
        which is harder on the daemon than any Prometheus, so they are not the headline.
        """
        last = self.obs.final[at]
        lags = [last.at_s - t for t in last.last_run.values()]
        return lags + [last.at_s - self.obs.ready_s] * max(0, self.checks - len(lags))

    def cpu_percent(self) -> tuple[float, float]:
        """Mean CPU % over the window and the busiest CPU_WINDOW_S window."""
        samples = self.obs.cpu
        mean = (samples[-1][1] - samples[0][1]) / max(1e-9, samples[-1][0] - samples[0][0])
        peak = 0.0
        for i in range(len(samples)):
            j = next((k for k in range(i, len(samples))
                      if samples[k][0] - samples[i][0] >= CPU_WINDOW_S), None)
            if j is None:
                break
            peak = max(peak, (samples[j][1] - samples[i][1]) / (samples[j][0] - samples[i][0]))
        return 100 * mean, 100 * peak

    def row(self) -> str:
        final = self.obs.final
        lag95 = percentile(self.lags_s(), 0.95)
        window_s = self.obs.end_s - (self.facts.loaded_s or self.obs.ready_s)
        cpu_mean, cpu_peak = self.cpu_percent()
        overflow = max(s.overflow for s in self.obs.scrapes + final)
        monitor = final[-1].monitor_overflow
        http_errors = sum(s.status != 200 for s in self.obs.scrapes + final)
        warnings = sum(self.facts.warnings.values())
        lag_cell = (f"{lag95:.0f} ({lag95 / self.period_s:.2f})" if final[0].last_run
                    else "no check ran")
        rules = (f"{self.rules_s:.2f} / {self.rules_kib:.0f}" if self.rules_rc == 0
                 else f"exit {self.rules_rc}")
        return (f"| {self.mode} | {self.tables:,} | {self.checks:,} | {self.period_s:g} "
                f"| {self.observed_s:.0f} | {self.obs.ready_s - self.obs.spawned_s:.1f} "
                f"| {self.first_round_s()} "
                f"| {self.facts.checks_done / window_s:.1f} / {self.due / window_s:.1f} "
                f"| {lag_cell} "
                f"| {cpu_mean:.0f} / {cpu_peak:.0f} | {self.obs.peak_kib / 1024:.0f} "
                f"| {statistics.median(s.series for s in final):,.0f} "
                f"| {statistics.median(s.size for s in final) / 2**20:.1f} "
                f"| {statistics.median(s.ms for s in final):.0f} "
                f"| {overflow} (gauge {'-' if monitor is None else f'{monitor:g}'}) | {rules} "
                f"| {self.facts.check_errors} / {warnings} / {http_errors} |")

    def details(self) -> str:
        """The numbers behind the row, and the trends a row hides."""
        lags = self.lags_s()
        trend = ", ".join(
            f"{s.at_s - self.obs.ready_s:.0f}s: {len(s.last_run)} checks p95 "
            f"{percentile([s.at_s - t for t in s.last_run.values()], 0.95):.0f}s "
            f"{s.ms:.0f}ms" for s in self.obs.scrapes if s.last_run)
        rss = self.obs.rss_kib
        facts, start_s = self.facts, self.facts.loaded_s or self.obs.ready_s
        log_round = (f"{max(facts.first_run.values()) - start_s:.0f}s"
                     if len(facts.first_run) == self.tables else
                     f"incomplete ({len(facts.first_run)}/{self.tables} tables)")
        log_lags = [self.obs.end_s - t for t in facts.last_run.values()]
        log_lags += [self.obs.end_s - start_s] * (self.tables - len(log_lags))
        last_lag = percentile(self.lags_s(-1), 0.95)
        return (f"{self.mode} {self.tables}: build/reuse {self.build_s:.1f}s; "
                f"discovered {self.facts.discovered}; done {self.facts.checks_done} of "
                f"{self.due} due; lag p50 {percentile(lags, 0.5):.0f}s p95 "
                f"{percentile(lags, 0.95):.0f}s max {max(lags):.0f}s (p95 {last_lag:.0f}s after "
                f"{len(self.obs.final)} back-to-back final scrapes); from the log: first round "
                f"{log_round}, p95 table lag at the end {percentile(log_lags, 0.95):.0f}s; "
                f"RSS at ready "
                f"{rss[0] / 1024:.0f} MiB, at end {rss[-1] / 1024:.0f} MiB; "
                f"final scrape ms {[round(s.ms) for s in self.obs.final]}; "
                f"warnings {self.facts.warnings or 'none'}; load average before/after "
                f"{self.loadavg[0]} / {self.loadavg[1]}\n  scrapes (s after ready: checks seen, "
                f"p95 lag, ms): {trend}")


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (nearest rank) of values, NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run_size(tables: int, args: argparse.Namespace, workdir: Path) -> Report:
    """Build, run, measure and tear down one size."""
    period_s = args.period or DEFAULT_PERIOD_S[args.mode]
    with scale_database(tables, args.keep) as (url, build_s):
        config = workdir / f"{args.mode}-{tables}.yaml"
        names = write_config(config, url, tables, args.mode, period_s, args.connections)
        load_before = _loadavg()
        obs, log_path = run_daemon(config, args, period_s, workdir / f"{args.mode}-{tables}.log")
    facts = read_log(log_path, obs.end_s)
    per_table = CHECKS_PER_TABLE[args.mode]
    due = checks_due(names, per_table, period_s, facts.loaded_s or obs.ready_s, obs.end_s)
    rules_s, rules_kib, rules_rc = time_rules(config)
    return Report(args.mode, tables, tables * per_table, period_s, build_s, obs, facts, due,
                  rules_s, rules_kib, rules_rc, (load_before, _loadavg()))


def run_daemon(config: Path, args: argparse.Namespace, period_s: float,
               log_path: Path) -> tuple[Observation, Path]:
    """Start `dqmon run`, observe it, SIGTERM it."""
    port = args.port or free_port()
    with log_path.open("w") as log:
        spawned_s = time.time()
        proc = subprocess.Popen([sys.executable, "-m", "dqmon", "run", "--config", str(config),
                                 "--no-export", "--listen", f"127.0.0.1:{port}",
                                 "--log-format", "json"],
                                stdout=subprocess.DEVNULL, stderr=log)
        try:
            obs = observe(proc, port, spawned_s, args, period_s)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return obs, log_path


def time_rules(config: Path) -> tuple[float, float, int]:
    """Time `dqmon rules --generic` (fresh process); return (s, output KiB, exit code)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dqmon", "rules", "--config", str(config),
                           "--generic"], capture_output=True, check=False)
    return time.perf_counter() - started, len(done.stdout) / 1024, done.returncode


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    """Parse the arguments, run each size in turn, print a Markdown table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tables", default="500,2000,5000,10000",
                        help="comma-separated sizes (default: 500,2000,5000,10000)")
    parser.add_argument("--mode", choices=["scan", "metadata"], default="metadata")
    parser.add_argument("--period", type=float, default=None,
                        help="schedule period in seconds (default 300 scan, 900 metadata)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds to observe after the daemon is ready (default 1.2 periods)")
    parser.add_argument("--scrape-interval", type=float, default=15.0,
                        help="seconds between /metrics scrapes while observing")
    parser.add_argument("--final-budget", type=float, default=60.0,
                        help="seconds for the final scrapes: up to 5, at least 1")
    parser.add_argument("--build-only", action="store_true",
                        help="only create the databases and role, and keep them (implies --keep)")
    parser.add_argument("--connections", type=int, default=4, help="max_connections")
    parser.add_argument("--port", type=int, default=0, help="daemon port (default: a free one)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database, role and the work directory (config, log)")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.tables.split(",") if s.strip()]
    if args.build_only:
        for tables in sizes:
            with scale_database(tables, keep=True) as (url, build_s):
                print(f"{url}: {build_s:.1f} s", file=sys.stderr)
        return
    reports = []
    workdir = Path(tempfile.mkdtemp(prefix="dqmon-scale-"))
    try:
        for tables in sizes:
            reports.append(run_size(tables, args, workdir))
            print(reports[-1].row(), file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            for path in workdir.iterdir():
                path.unlink()
            workdir.rmdir()
    print(HEADER)
    for report in reports:
        print(report.row())
    print()
    for report in reports:
        print(report.details())


if __name__ == "__main__":
    main()
