"""Benchmark: `dqmon rules` per-check vs generic at scale (issue 9). Measures, does not assert.

For each size, writes a checks.yaml of N tables x 6 checks (freshness, row_count, one
completeness column, validity, uniqueness, schema; every 5m), then for each form runs
  dqmon rules   the CLI in a fresh process (config load included): wall time, peak RSS;
  render        the same rules from a one-table config copied N times in memory (no YAML
                load): wall time, peak RSS, and the size of the file it writes;
  promtool      `promtool check rules` on that file: wall time and peak RSS.
The CLI may refuse a file that is too large for the config loader; the row says so and the
other columns are still measured. Peak RSS comes from GNU time (`/usr/bin/time -v`). Each
command runs once: the figures are large and far apart, so one run is enough.

    python benchmarks/rules_scale.py --tables 500 2000 10000
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"
PROMTOOL = "/usr/bin/promtool"
CHECKS = """\
      - freshness: {column: created_at, max_age: 2h}
      - row_count: {min: 1000}
      - completeness: {columns: [order_id], min_ratio: 0.999}
      - validity: {name: status_known, column: status, in: [paid, shipped]}
      - uniqueness: {columns: [order_id]}
      - schema: {columns: {order_id: integer}}
"""


@dataclass(frozen=True)
class Run:
    """One measured command."""

    wall_s: float
    rss_mib: float
    stdout: str


def checks_yaml(tables: int) -> str:
    """Return a checks.yaml with `tables` tables of 6 checks each, every 5m."""
    body = "".join(f"  - name: t{i:05d}\n    schedule: every 5m\n    checks:\n{CHECKS}"
                   for i in range(tables))
    return ('version: 1\nwarehouses:\n  main: {url: "sqlite:///x.db"}\n'
            f"tables:\n{body}")


# Renders the rules of argv[1] (one table) copied argv[2] times, in form argv[3], to argv[4].
RENDER = """
import dataclasses, sys
from pathlib import Path
from dqmon.alerts import render_rules
from dqmon.config import load_config
config = load_config(sys.argv[1], env={})
tables = tuple(dataclasses.replace(config.tables[0], name=f"t{i:05d}")
               for i in range(int(sys.argv[2])))
config = dataclasses.replace(config, tables=tables)
Path(sys.argv[4]).write_text(render_rules(config, form=sys.argv[3]), encoding="utf-8")
"""


def measure(command: list[str]) -> Run | str:
    """Run `command` under GNU time: its wall time, peak RSS and stdout, or why it failed."""
    start = time.perf_counter()
    done = subprocess.run([GNU_TIME, "-v", *command], capture_output=True, text=True,
                          check=False)
    wall_s = time.perf_counter() - start
    if done.returncode != 0:
        return done.stderr.splitlines()[0] if done.stderr else f"exit {done.returncode}"
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return Run(wall_s, int(rss.group(1)) / 1024 if rss else float("nan"), done.stdout)


def cells(run: Run | str, digits: int = 1) -> str:
    """Return the `time | RSS` cells of a run, or its failure across both."""
    if isinstance(run, str):
        return f"refused: {run} | -"
    return f"{run.wall_s:.{digits}f} s | {run.rss_mib:.0f} MiB"


def bench(workdir: Path, tables: int, form: str) -> str:
    """Measure one size and form; return its Markdown table row."""
    config = workdir / f"checks-{tables}.yaml"
    if not config.exists():
        config.write_text(checks_yaml(tables), encoding="utf-8")
    one = workdir / "checks-1.yaml"
    one.write_text(checks_yaml(1), encoding="utf-8")
    cli = measure([sys.executable, "-m", "dqmon", "rules", "--config", str(config),
                   f"--{form}", "-o", str(workdir / f"cli-{tables}-{form}.yml")])
    rules = workdir / f"rules-{tables}-{form}.yml"
    render = measure([sys.executable, "-c", RENDER, str(one), str(tables), form, str(rules)])
    if isinstance(render, str):
        sys.exit(f"rendering {tables} tables failed: {render}")
    check = measure([PROMTOOL, "check", "rules", str(rules)])
    found = re.search(r"SUCCESS: (\d+) rules found", "" if isinstance(check, str) else check.stdout)
    count = f"{int(found.group(1)):,}" if found else "?"
    size_mb = rules.stat().st_size / 1e6
    return (f"| {tables:,} | {tables * 6:,} | {form} | {count} | {size_mb:.3f} MB | "
            f"{cells(cli)} | {cells(render)} | {cells(check, 2)} |")


def main() -> None:
    """Print one Markdown table row per size and form."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, nargs="+", default=[500, 2000, 10000])
    parser.add_argument("--forms", nargs="+", default=["per-check", "generic"],
                        choices=["per-check", "generic"])
    parser.add_argument("--workdir", type=Path, help="keep configs and rule files here")
    args = parser.parse_args()
    print("| tables | checks | form | rules | file | `dqmon rules` | its peak RSS | "
          "render only | its peak RSS | `promtool check rules` | its peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="dqmon-rules-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for tables in args.tables:
            for form in args.forms:
                print(bench(workdir, tables, form), flush=True)


if __name__ == "__main__":
    main()
