"""Where a `run-once` process spends its time, step by step, next to the bare-Python floor
(issue 11; docs/performance.md, "Where one run's time goes").

Each round starts two fresh interpreters. One times dqmon's steps with `time.perf_counter`,
its collector set as `dqmon.cli.console` sets it (off until the file is read): importing
SQLAlchemy, psycopg and PyYAML (as the floor does), click and the CLI, pydantic,
`dqmon.config` (the models' build), the rest of run-once's modules, reading and validating
the file, and the run itself (engine, connect, role check, statements). The other is the
floor of benchmarks/peers.py: SQLAlchemy, psycopg, PyYAML and the OTel SDK imported, then an
engine, a connection and one query. Medians over the rounds, in milliseconds. Run it against
any config with one table, e.g. the one-day config peers.py writes:

    python benchmarks/startup_phases.py --config day.yaml --table orders \\
        --partition 2026-11-12 --query "select 1" --rounds 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

DQMON = """\
import gc, json, sys, time
gc.disable()  # as dqmon.cli.console: the collector is off during the start-up
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import psycopg, sqlalchemy, yaml; mark("SQLAlchemy, psycopg, PyYAML")
import click, dqmon.cli; mark("click and the CLI")
import pydantic; mark("pydantic")
import dqmon.config; mark("dqmon.config (the models)")
import dqmon.runonce as r; mark("run-once's other modules")
config = dqmon.config.load_config(sys.argv[1]); mark("reading and validating the file")
gc.freeze(); gc.enable()
r.run_once(config, r.Request(tables=[sys.argv[2]], checks=[], partition=sys.argv[3] or None,
                             json=False, export=False, sample_rows=None)); mark("the run")
print(json.dumps({b[0]: 1e3 * (b[1] - a[1]) for a, b in zip(marks, marks[1:])}))
"""

FLOOR = """\
import json, sys, time
t0 = time.perf_counter()
import psycopg, sqlalchemy, yaml
t1 = time.perf_counter()
import opentelemetry.sdk.metrics, opentelemetry.sdk.trace
t2 = time.perf_counter()
with sqlalchemy.create_engine(sys.argv[1]).connect() as conn:
    conn.execute(sqlalchemy.text(sys.argv[2])).fetchall()
t3 = time.perf_counter()
print(json.dumps({"SQLAlchemy, psycopg, PyYAML": 1e3 * (t1 - t0),
                  "the OTel SDK": 1e3 * (t2 - t1),
                  "engine, connect, the query": 1e3 * (t3 - t2)}))
"""


def rounds(script: str, args: list[str], count: int) -> dict[str, float]:
    """Run `script` `count` times in fresh interpreters; return each step's median (ms)."""
    runs = [json.loads(subprocess.run([sys.executable, "-c", script, *args], check=True,
                                      capture_output=True, text=True).stdout)
            for _ in range(count)]
    return {step: statistics.median(run[step] for run in runs) for step in runs[0]}


def main() -> None:
    """Time both processes' steps and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--partition", default="")
    parser.add_argument("--url", help="the floor's SQLAlchemy URL (default: the config's "
                                      "first warehouse)")
    parser.add_argument("--query", default="select 1", help="the floor's one query")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    from dqmon.config import load_config

    url = args.url or next(iter(load_config(args.config).warehouses.values())).url
    for name, script, script_args in (
            ("dqmon run-once --no-export", DQMON, [args.config, args.table, args.partition]),
            ("bare-Python floor", FLOOR, [url, args.query])):
        steps = rounds(script, script_args, args.rounds)
        print(f"{name}: {sum(steps.values()):.0f} ms")
        for step, ms in steps.items():
            print(f"  {step:35s} {ms:6.1f} ms")


if __name__ == "__main__":
    main()
