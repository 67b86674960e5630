"""Evaluation cost of the learned-baseline rules (issue 12) on a real Prometheus.

N anomaly-watched row_count checks (default 1,000) with D days (default 14) of 1-minute
history are backfilled with `promtool tsdb create-blocks-from openmetrics`; Prometheus then
loads the rules `dqmon rules` writes for them (the generic form, as `dqmon rules` picks
beyond 500 checks, or --per-check) and evaluates them every 30 s. The script prints
`prometheus_rule_group_last_duration_seconds` per group, the median of several evaluations.

    python benchmarks/anomaly_rules.py [--series 1000] [--days 14] [--per-check]
"""

from __future__ import annotations

import argparse
import random
import re
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from dqmon.alerts import render_rules
from dqmon.config import parse_config

PROMETHEUS, PROMTOOL = "/usr/bin/prometheus", "/usr/bin/promtool"
DURATION = re.compile(r'prometheus_rule_group_last_duration_seconds\{rule_group="[^"]*;([^"]+)"\}'
                      r" (\S+)")


def checks_yaml(series: int, days: int) -> str:
    """Return a config of `series` tables, each with one anomaly-watched row_count check."""
    tables = [{"name": f"t{i:05d}", "schedule": "every 1m",
               "checks": [{"row_count": {"anomaly": {"window": f"{days}d",
                                                     "min_history": f"{min(days, 3)}d"}}}]}
              for i in range(series)]
    return yaml.safe_dump({"version": 1, "warehouses": {"w": {"url": "sqlite:///x.db"}},
                           "tables": tables})


def write_history(path: Path, series: int, days: int, end_s: int) -> int:
    """Write every series' 1-minute history as OpenMetrics; return the number of samples."""
    rng, count = random.Random(1), 0
    with path.open("w", encoding="utf-8") as out:
        out.write("# TYPE dq_row_count gauge\n")
        for i in range(series):
            labels = f'dq_warehouse="w",dq_table="t{i:05d}",dq_check="row_count",job="dqmon"'
            level = rng.uniform(1e3, 1e6)
            lines = [f"dq_row_count{{{labels}}} {level * rng.uniform(0.98, 1.02):.0f} {at}\n"
                     for at in range(end_s - days * 86400, end_s, 60)]
            out.writelines(lines)
            count += len(lines)
        out.write("# EOF\n")
    return count


def free_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def durations(url: str) -> dict[str, float]:
    """Return each rule group's last evaluation time from Prometheus's own /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {group: float(value) for group, value in DURATION.findall(text)}


def measure(tmp: Path, rules: str, evaluations: int) -> dict[str, list[float]]:
    """Run Prometheus on the backfilled TSDB with `rules`; sample each group's duration."""
    (tmp / "rules.yml").write_text(rules, encoding="utf-8")
    (tmp / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"evaluation_interval": "30s"}, "rule_files": [str(tmp / "rules.yml")]}))
    port = free_port()
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen([PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        return sample(f"http://127.0.0.1:{port}", evaluations)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def sample(url: str, evaluations: int) -> dict[str, list[float]]:
    """Collect `evaluations` distinct readings per group, 30 s apart."""
    seen: dict[str, list[float]] = {}
    deadline = time.monotonic() + 60 + 35 * evaluations
    while time.monotonic() < deadline and min(map(len, seen.values()), default=0) < evaluations:
        time.sleep(5)
        try:
            now = durations(url)
        except OSError:
            continue
        for group, value in now.items():
            if value and (not seen.get(group) or seen[group][-1] != value):
                seen.setdefault(group, []).append(value)
    return seen


def main() -> None:
    """Backfill, evaluate, print the median duration per rule group."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--evaluations", type=int, default=5)
    parser.add_argument("--per-check", action="store_true")
    args = parser.parse_args()
    config = parse_config(checks_yaml(args.series, args.days), "checks.yaml", env={})
    rules = render_rules(config, form="per-check" if args.per_check else "generic")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        started = time.monotonic()
        samples = write_history(tmp / "history.om", args.series, args.days,
                                int(time.time()) - 600)
        subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics",
                        str(tmp / "history.om"), str(tmp / "tsdb")], check=True,
                       capture_output=True)
        (tmp / "history.om").unlink()
        print(f"backfilled {samples:,} samples in {time.monotonic() - started:.0f} s")
        for group, values in sorted(measure(tmp, rules, args.evaluations).items()):
            print(f"{group}: median {statistics.median(values):.3f} s over {len(values)} "
                  f"evaluations (max {max(values):.3f} s)")


if __name__ == "__main__":
    main()
