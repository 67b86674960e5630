"""/metrics cost (issue 9): dqmon's own page against the SDK's Prometheus reader, one run.

For each size N (tables), records N tables x 3 metadata checks (volume, metadata freshness,
schema_change: the 10,000-table target of SPEC 11) into one daemon-mode Telemetry, then
times --repeat renders of
  dqmon   Telemetry.metrics_text(): the page the daemon serves (telemetry/exposition.py)
  sdk     opentelemetry-exporter-prometheus's PrometheusMetricReader + prometheus_client's
          generate_latest on the same results (what the daemon served before), at the
          cardinality limit dqmon sets
and reports medians, their ratio, the page's samples and bytes, and the growth of the
process's peak RSS across each renderer's renders (ru_maxrss; run the sizes in ascending
order, each in a fresh process with --only, for an RSS figure per size).

    python benchmarks/metrics_page.py --tables 500,2000,10000 --repeat 5
    python benchmarks/metrics_page.py --tables 10000 --only dqmon   # RSS of dqmon's alone
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from prometheus_client import CollectorRegistry, generate_latest

from dqmon.config import parse_config
from dqmon.results import CheckResult
from dqmon.telemetry import Telemetry


def config_text(tables: int) -> str:
    """N tables, each with the three metadata monitors."""
    entries = "\n".join(
        f"  - {{name: scale.t{n}, checks: [{{volume: {{min: 1}}}}, "
        f"{{freshness: {{source: metadata, max_age: 1h}}}}, {{schema_change: {{}}}}]}}"
        for n in range(tables))
    return ("version: 1\nwarehouses:\n  main: {url: 'postgresql://u@h/db'}\n"
            f"tables:\n{entries}\n")


def results(tables: int) -> list[CheckResult]:
    """One passing result per check, with distinct values."""
    config = parse_config(config_text(tables), env={"DQMON_MAX_CONFIG_VALUES": "10000000"})
    now = time.time()
    return [CheckResult(spec, "main", None, float(n), "pass", 0.002, now)
            for n, spec in enumerate(c for t in config.tables for c in t.checks)]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(render: Callable[[], bytes], repeat: int) -> tuple[float, float, float, bytes]:
    """Return the first and median seconds, the peak-RSS growth in MiB and the last body.

    dqmon formats a series' labels at its first render after a result is recorded (a daemon
    records each check once per period and is scraped many times in between): `first` is
    that render, the median the steady state.
    """
    before, times, body = rss_mib(), [], b""
    for _ in range(repeat):
        started = time.perf_counter()
        body = render()
        times.append(time.perf_counter() - started)
    return times[0], statistics.median(times), rss_mib() - before, body


def measure(tables: int, repeat: int, only: str | None) -> None:
    recorded = results(tables)
    registry = CollectorRegistry(auto_describe=True)
    readers = [PrometheusMetricReader(registry=registry)] if only != "dqmon" else []
    telemetry = Telemetry(daemon=True, export=False, env={}, metric_readers=readers)
    telemetry.record(recorded)
    rows: dict[str, tuple[float, float, float, bytes]] = {}
    if only in (None, "dqmon"):
        rows["dqmon"] = timed(lambda: telemetry.metrics_text()[0], repeat)
    if only in (None, "sdk"):
        rows["sdk"] = timed(lambda: generate_latest(registry), repeat)
    telemetry.shutdown()
    for name, (first, median, rss, body) in rows.items():
        samples = sum(1 for line in body.splitlines() if not line.startswith(b"#"))
        print(f"tables={tables} checks={len(recorded)} {name}: first {first:.3f} s, "
              f"median {median:.3f} s, "
              f"samples {samples}, {len(body) / 2**20:.1f} MiB, peak RSS +{rss:.0f} MiB "
              f"(process {rss_mib():.0f} MiB)", flush=True)
    if len(rows) == 2:
        print(f"tables={tables} sdk/dqmon = {rows['sdk'][1] / rows['dqmon'][1]:.1f}x",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default="500,2000,10000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("dqmon", "sdk"))
    args = parser.parse_args()
    for tables in (int(n) for n in args.tables.split(",")):
        measure(tables, args.repeat, args.only)


if __name__ == "__main__":
    main()
