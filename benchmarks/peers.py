"""Peer benchmark (issue 11): `dqmon run-once` next to Soda Core on the same table and checks.

Builds the `orders` table of benchmarks/scan_vs_sql.py (benchmarks/_orders.py: N rows over 30
days, indexed on created_at) and a login role with only CONNECT and pg_read_all_data, which
every contender uses. The same 9 checks in both tools: freshness, row_count, completeness of
order_id, customer_id and amount, 3 validity rules (status in a set, email regex, amount
between 0 and 100000) and uniqueness of order_id. Each contender is a fresh process, timed
whole (cold start included), on the whole table and on one UTC day (rows/30 rows):
  psql         the best hand-written SQL, 2 statements (a FILTER aggregate, count(DISTINCT));
  bare Python  a process importing SQLAlchemy, psycopg, PyYAML and the OTel SDK that sends
               the same work as one query (the floor a Python tool cannot go under);
  dqmon        `dqmon run-once --no-export --table orders` (`partition:` + `--partition DAY`);
  Soda Core    `soda scan -d bench -c configuration.yml checks.yml` (a `filter` on the day);
  exporting    dqmon run-once without --no-export, sending its metrics and spans to a live
               OTLP gRPC receiver in this process (tests/otlp_receiver.py): what export adds.
Soda runs as installed: for each failing missing/invalid check it also fetches sample rows
(its default), which dqmon does not. One untimed warm-up of each, whose per-check verdicts are
compared between dqmon and Soda (a disagreement is printed, never hidden); then --repeat
rounds, each running every contender once in a rotated order. Reported: medians, and paired
ratios (dqmon / other within a round, then the median over rounds), so a noisy machine mostly
cancels out.

Soda Core gets its own virtualenv, made on first use (--soda-venv, default
~/.cache/dqmon-bench/soda) with `pip install soda-core-postgres==3.5.6`. Its usage statistics
are off: it runs with HOME set to a scratch directory whose `.soda/config.yml` says
`send_anonymous_usage_stats: false` (docs.soda.io, "Soda Library usage statistics"; Soda
Core 3.x reads the first of ~/.soda/config.yml, ./.soda/config.yml, /tmp/.soda/config.yml and
has no environment switch).

    python benchmarks/peers.py --rows 2000000 --repeat 5
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from _orders import orders_database, sqlalchemy_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from otlp_receiver import OtlpReceiver  # noqa: E402 - a real receiver, after sys.path

SODA_PIN = "soda-core-postgres==3.5.6"
DEFAULT_SODA_VENV = Path.home() / ".cache" / "dqmon-bench" / "soda"
SCOPES = ("whole", "day")

# The 9 checks, in the order both tools report them; Soda's checks carry dqmon's names.
NAMES = ("freshness", "row_count", "completeness_order_id", "completeness_customer_id",
         "completeness_amount", "status_known", "email_format", "amount_range",
         "uniqueness_order_id")

DQMON_CHECKS = """\
version: 1
warehouses: {{main: {{url: "{url}", statement_timeout: 10m}}}}
tables:
  - name: orders
{partition}    checks:
      - freshness: {{column: created_at, max_age: 2h}}
      - row_count: {{min: 1}}
      - completeness: {{columns: [order_id, customer_id, amount]}}
      - validity: {{name: status_known, column: status, in: [pending, paid, shipped, cancelled]}}
      - validity: {{name: email_format, column: email, regex: '^[^@]+@[^@]+\\.[^@]+$'}}
      - validity: {{name: amount_range, column: amount, between: [0, 100000]}}
      - uniqueness: {{columns: [order_id]}}
"""
DQMON_PARTITION = "    partition: {column: created_at, granularity: day}\n"

SODA_CHECKS = """\
{filter}checks for orders{suffix}:
  - freshness(created_at) < 2h: {{name: freshness}}
  - row_count >= 1: {{name: row_count}}
  - missing_count(order_id) = 0: {{name: completeness_order_id}}
  - missing_count(customer_id) = 0: {{name: completeness_customer_id}}
  - missing_count(amount) = 0: {{name: completeness_amount}}
  - invalid_count(status) = 0:
      name: status_known
      valid values: [pending, paid, shipped, cancelled]
  - invalid_count(email) = 0:
      name: email_format
      valid regex: '^[^@]+@[^@]+\\.[^@]+$'
  - invalid_count(amount) = 0: {{name: amount_range, valid min: 0, valid max: 100000}}
  - duplicate_count(order_id) = 0: {{name: uniqueness_order_id}}
"""
SODA_FILTER = "filter orders [day]:\n  where: \"{where}\"\n\n"

SODA_CONFIGURATION = """\
data_source bench:
  type: postgres
  host: "{host}"
  port: "{port}"
  username: "{user}"
  password: ""
  database: "{dbname}"
  schema: public
"""

AGGREGATE = """SELECT count(*), max(created_at), now(), count(order_id), count(customer_id),
       count(amount),
       count(*) FILTER (WHERE status IN ('pending','paid','shipped','cancelled')), count(status),
       count(*) FILTER (WHERE email ~ '^[^@]+@[^@]+\\.[^@]+$'), count(email),
       count(*) FILTER (WHERE amount BETWEEN 0 AND 100000)
FROM orders{where}"""
DISTINCT = "SELECT count(DISTINCT order_id), count(order_id) FROM orders{where}"

BARE_PYTHON = """\
import sys
import opentelemetry.sdk.metrics, opentelemetry.sdk.trace, psycopg, sqlalchemy, yaml
with sqlalchemy.create_engine(sys.argv[1]).connect() as conn:
    conn.execute(sqlalchemy.text(sys.argv[2])).fetchall()
"""


@dataclass(frozen=True)
class Contender:
    """One way of answering the checks: a label and its command per scope."""

    label: str
    commands: dict[str, list[str]]
    ok_codes: tuple[int, ...] = (0,)
    env: dict[str, str] | None = None


@dataclass(frozen=True)
class Setup:
    """Everything the contenders need to know about the database under test."""

    url: str
    dsn: dict[str, str]
    day: str
    day_rows: int
    where: str
    work: Path


# --- the database -------------------------------------------------------------------------------

@contextmanager
def reader_role(conn: psycopg.Connection[Any]) -> Iterator[str]:
    """Yield a login role with CONNECT and pg_read_all_data only (docs/security.md)."""
    name = f"{conn.info.dbname}_reader"
    conn.execute(f'CREATE ROLE "{name}" LOGIN')
    try:
        conn.execute(f'GRANT CONNECT ON DATABASE "{conn.info.dbname}" TO "{name}"')
        conn.execute(f'GRANT pg_read_all_data TO "{name}"')
        conn.execute(f'ALTER ROLE "{name}" SET default_transaction_read_only = on')
        yield name
    finally:
        conn.execute(f'REVOKE ALL ON DATABASE "{conn.info.dbname}" FROM "{name}"')
        conn.execute(f'DROP ROLE "{name}"')


def make_setup(conn: psycopg.Connection[Any], role: str, work: Path) -> Setup:
    """Pick the day in the middle of the table and describe the database for the contenders."""
    day = conn.execute("SELECT ((now() AT TIME ZONE 'UTC') - interval '15 days')::date"
                       ).fetchone()[0]  # type: ignore[index]
    where = (f"created_at >= timestamptz '{day} 00:00:00+00' "
             f"AND created_at < timestamptz '{day} 00:00:00+00' + interval '1 day'")
    day_rows = conn.execute(f"SELECT count(*) FROM orders WHERE {where}"
                            ).fetchone()[0]  # type: ignore[index]
    info = conn.info
    dsn = {"host": info.host, "port": str(info.port), "user": role, "dbname": info.dbname}
    return Setup(sqlalchemy_url(conn, role), dsn, str(day), day_rows, where, work)


# --- the contenders -----------------------------------------------------------------------------

def psql(setup: Setup) -> Contender:
    """The best hand-written SQL: 2 statements through one psql process."""
    d = setup.dsn
    base = ["psql", "-X", "-q", "-A", "-t", "-h", d["host"], "-p", d["port"], "-U", d["user"],
            "-d", d["dbname"]]

    def command(where: str) -> list[str]:
        return [*base, "-c", AGGREGATE.format(where=where), "-c", DISTINCT.format(where=where)]

    return Contender("best hand-written SQL, 2 statements through psql",
                     {"whole": command(""), "day": command(f" WHERE {setup.where}")})


def bare_python(setup: Setup) -> Contender:
    """A Python process with dqmon's heavy imports that sends the same work as one query."""
    def command(where: str) -> list[str]:
        sql = (f"SELECT * FROM ({AGGREGATE.format(where=where)}) AS a "
               f"CROSS JOIN ({DISTINCT.format(where=where)}) AS u")
        return [sys.executable, "-c", BARE_PYTHON, setup.url, sql]

    return Contender("a bare Python process importing SQLAlchemy, psycopg, PyYAML and the OTel "
                     "SDK, sending one query",
                     {"whole": command(""), "day": command(f" WHERE {setup.where}")})


def dqmon(setup: Setup) -> Contender:
    """`dqmon run-once --no-export` as an orchestrator would start it."""
    commands = {}
    for scope, partition in (("whole", ""), ("day", DQMON_PARTITION)):
        path = setup.work / f"dqmon-{scope}.yaml"
        path.write_text(DQMON_CHECKS.format(url=setup.url, partition=partition))
        commands[scope] = [str(Path(sys.executable).with_name("dqmon")), "run-once",
                           "--config", str(path), "--no-export", "--table", "orders"]
    commands["day"] += ["--partition", setup.day]
    return Contender("**dqmon run-once --no-export**", commands, ok_codes=(0, 1))


def dqmon_exporting(setup: Setup, endpoint: str) -> Contender:
    """`dqmon run-once` exporting its metrics and spans to a live OTLP gRPC receiver."""
    plain = dqmon(setup)
    commands = {scope: [arg for arg in cmd if arg != "--no-export"]
                for scope, cmd in plain.commands.items()}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
           "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    return Contender("dqmon run-once, exporting to a live OTLP receiver", commands,
                     ok_codes=(0, 1), env=env)


def soda(setup: Setup, soda_bin: Path, version: str) -> Contender:
    """`soda scan` with its usage statistics off, on a fresh process each time."""
    home = setup.work / "soda-home"
    (home / ".soda").mkdir(parents=True)
    (home / ".soda" / "config.yml").write_text("send_anonymous_usage_stats: false\n")
    configuration = setup.work / "configuration.yml"
    configuration.write_text(SODA_CONFIGURATION.format(**setup.dsn))
    commands = {}
    for scope, (filt, suffix) in (("whole", ("", "")),
                                  ("day", (SODA_FILTER.format(where=setup.where), " [day]"))):
        path = setup.work / f"soda-{scope}.yml"
        path.write_text(SODA_CHECKS.format(filter=filt, suffix=suffix))
        commands[scope] = [str(soda_bin), "scan", "-d", "bench", "-c", str(configuration),
                           str(path)]
    return Contender(f"Soda Core {version}", commands, ok_codes=(0, 1, 2),
                     env={**os.environ, "HOME": str(home)})


# --- Soda's virtualenv --------------------------------------------------------------------------

def soda_install(venv: Path) -> tuple[Path, str]:
    """Return the soda executable and Soda Core's version, making the virtualenv if needed."""
    soda_bin = venv / "bin" / "soda"
    if not soda_bin.exists():
        print(f"installing {SODA_PIN} into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", SODA_PIN],
                             capture_output=True, text=True)
        if pip.returncode:
            sys.exit(f"pip install {SODA_PIN} failed:\n{pip.stderr[-2000:]}")
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import importlib.metadata as m; print(m.version('soda-core'))"],
        check=True, capture_output=True, text=True).stdout.strip()
    return soda_bin, version


# --- running and verdicts -----------------------------------------------------------------------

def timed(contender: Contender, scope: str) -> float:
    """Run the contender's command once in a fresh process; return its wall time in seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(contender.commands[scope], env=contender.env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in contender.ok_codes:
        sys.exit(f"{contender.label} ({scope}) exited {proc.returncode}:\n"
                 f"{proc.stderr.decode()[-2000:]}")
    return elapsed


def verdict(name: str, status: str, value: object) -> str:
    """The status, with the row count for row_count: both tools must see the same rows."""
    return f"{status} {value:,.0f}" if name == "row_count" and isinstance(value, int | float) \
        else status


def dqmon_verdicts(contender: Contender, scope: str) -> dict[str, str]:
    """Run dqmon once with JSON output; return check name -> pass/fail/error."""
    out = subprocess.run([*contender.commands[scope], "--format", "json"],
                         capture_output=True, text=True).stdout
    return {r["check"]: verdict(r["check"], r["status"], r["value"])
            for r in json.loads(out)["results"]}


def soda_verdicts(contender: Contender, scope: str, work: Path) -> dict[str, str]:
    """Run Soda once writing its scan results file; return check name -> pass/fail/error."""
    results = work / f"soda-results-{scope}.json"
    proc = subprocess.run([*contender.commands[scope], "-srf", str(results)],
                          env=contender.env, capture_output=True, text=True)
    if not results.exists():
        sys.exit(f"soda wrote no results ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    checks = json.loads(results.read_text())["checks"]
    return {c["name"]: verdict(c["name"], c["outcome"], c.get("diagnostics", {}).get("value"))
            for c in checks}


def measure(contenders: Sequence[Contender], repeat: int) -> dict[str, list[list[float]]]:
    """Time every contender and scope once per round, rotating the order; scope -> rounds."""
    times: dict[str, list[list[float]]] = {scope: [] for scope in SCOPES}
    n = len(contenders)
    for r in range(repeat):
        order = [(r + i) % n for i in range(n)]
        for scope in SCOPES:
            row = [0.0] * n
            for i in order:
                row[i] = timed(contenders[i], scope)
            times[scope].append(row)
        print(f"round {r + 1}/{repeat}: " + "  ".join(
            f"{scope} " + " ".join(f"{t:.3f}" for t in times[scope][-1]) for scope in SCOPES),
            file=sys.stderr)
    return times


# --- the report ---------------------------------------------------------------------------------

def median_of(rounds: list[list[float]], i: int) -> float:
    """Median time of contender i over the rounds."""
    return statistics.median(row[i] for row in rounds)


def paired(rounds: list[list[float]], i: int, j: int) -> float:
    """Median over rounds of contender i's time / contender j's time in the same round."""
    return statistics.median(row[i] / row[j] for row in rounds)


def report_table(contenders: Sequence[Contender], times: dict[str, list[list[float]]],
                 setup: Setup) -> list[str]:
    """The Markdown table of medians, one row per contender."""
    lines = [f"| contender | whole table | one day ({setup.day_rows:,} rows, indexed) |",
             "|---|---|---|"]
    for i, c in enumerate(contenders):
        whole, day = (median_of(times[s], i) for s in SCOPES)
        bold = "**" if c.label.startswith("**") else ""
        lines.append(f"| {c.label} | {bold}{whole:.3f} s{bold} | {bold}{day:.3f} s{bold} |")
    return lines


RATIOS = (  # (contender, other contender, row label, issue 11's target)
    (2, 3, "dqmon / Soda Core", "<= 0.40 whole at 2M (2.5x faster), <= 0.50 one day"),
    (2, 1, "dqmon / bare-Python floor", "<= 1.10 one day"),
    (2, 0, "dqmon / hand-written SQL (psql)", "<= 1.10 whole at 10M"),
    (4, 2, "exporting / --no-export", "< 1.05 whole at 2M; one day: see the next row"),
)


def report_ratios(times: dict[str, list[list[float]]], repeat: int) -> list[str]:
    """The Markdown table of paired ratios, and the seconds OTLP export adds."""
    lines = [f"| paired ratio (median of {repeat}) | whole table | one day | issue 11 target |",
             "|---|---|---|---|"]
    for i, j, label, target in RATIOS:
        whole, day = (paired(times[s], i, j) for s in SCOPES)
        lines.append(f"| {label} | {whole:.2f} | {day:.2f} | {target} |")
    whole, day = (statistics.median(row[4] - row[2] for row in times[s]) for s in SCOPES)
    lines.append(f"| OTLP export adds (paired, seconds) | {whole:.3f} | {day:.3f} | "
                 "< 0.15 s one day |")
    return lines


def report_verdicts(verdicts: dict[str, tuple[dict[str, str], dict[str, str]]]) -> list[str]:
    """One line per check: dqmon's and Soda's verdict per scope; disagreements flagged."""
    lines = [f"{'check':<26}{'whole: dqmon/soda':<34}day: dqmon/soda"]
    disagree = []
    for name in NAMES:
        cells = []
        for scope in SCOPES:
            ours, theirs = (v.get(name, "missing") for v in verdicts[scope])
            cells.append(f"{ours}/{theirs}")
            if ours != theirs:
                disagree.append(f"{name} ({scope}: dqmon {ours}, soda {theirs})")
        lines.append(f"{name:<26}{cells[0]:<32}  {cells[1]}")
    lines.append("verdicts agree" if not disagree else "DISAGREEMENT: " + "; ".join(disagree))
    return lines


def refuse_errors(verdicts: dict[str, tuple[dict[str, str], dict[str, str]]]) -> None:
    """Stop before timing if a check could not run: the times would not measure the checks."""
    broken = [f"{tool} {name} ({scope}): {v.get(name, 'missing')}"
              for scope in SCOPES for tool, v in zip(("dqmon", "soda"), verdicts[scope],
                                                     strict=True)
              for name in NAMES if v.get(name, "missing").split()[0] not in ("pass", "fail")]
    if broken:
        sys.exit("\n".join([*report_verdicts(verdicts), "checks that did not run: ",
                            *broken]))


def context_lines(args: argparse.Namespace, setup: Setup, soda_version: str,
                  load: tuple[float, ...]) -> list[str]:
    """Where and on what the numbers were measured; `load` is the load average at the start."""
    commit = subprocess.run(["git", "log", "-1", "--oneline"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return [f"rows: {args.rows:,}  one day: {setup.day} ({setup.day_rows:,} rows)  "
            f"repeat: {args.repeat}  cores: {os.cpu_count()}  "
            f"load average before timing: {', '.join(f'{x:.2f}' for x in load)}",
            f"dqmon commit: {commit}",
            f"Soda Core {soda_version} ({SODA_PIN}), Python {sys.version.split()[0]}"]


# --- main ---------------------------------------------------------------------------------------

def compile_dqmon() -> None:
    """Write dqmon's .pyc files, as installing a wheel does (pip compiles at install time).

    An editable install under PYTHONDONTWRITEBYTECODE=1 (set on these machines) never
    writes them, so every run would compile dqmon's modules from source: about 0.15 s of
    each one-day run here, a cost no installed dqmon pays.
    """
    spec = importlib.util.find_spec("dqmon")
    assert spec is not None and spec.submodule_search_locations is not None
    compileall.compile_dir(spec.submodule_search_locations[0], quiet=1)


def run(conn: psycopg.Connection[Any], args: argparse.Namespace, work: Path) -> None:
    """Build the contenders, check their verdicts, time them and print the report."""
    soda_bin, soda_version = soda_install(args.soda_venv)
    compile_dqmon()
    with reader_role(conn) as role, OtlpReceiver() as receiver:
        setup = make_setup(conn, role, work)
        contenders = [psql(setup), bare_python(setup), dqmon(setup),
                      soda(setup, soda_bin, soda_version),
                      dqmon_exporting(setup, receiver.endpoint)]
        verdicts = {s: (dqmon_verdicts(contenders[2], s), soda_verdicts(contenders[3], s, work))
                    for s in SCOPES}
        refuse_errors(verdicts)
        load = os.getloadavg()
        for c in contenders:  # warm-up: page cache, .pyc files, the server's buffers
            for s in SCOPES:
                timed(c, s)
        times = measure(contenders, args.repeat)
    print("\n".join([*context_lines(args, setup, soda_version, load), "",
                     *report_table(contenders, times, setup), "",
                     *report_ratios(times, args.repeat), "", *report_verdicts(verdicts)]))


def main() -> None:
    """Parse the arguments, build the table in a throwaway database and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--admin", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--soda-venv", type=Path, default=DEFAULT_SODA_VENV,
                        help="Soda Core's virtualenv, made on first use (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dqmon-peers-") as work, \
            orders_database(args.admin, args.rows) as conn:
        run(conn, args, Path(work))


if __name__ == "__main__":
    main()
