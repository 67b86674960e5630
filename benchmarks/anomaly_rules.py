"""Evaluation cost of the learned-baseline rules (issue 12) on a real Prometheus.

N anomaly-watched row_count checks (default 1,000) with D days (default 14) of 1-minute
history are backfilled with `promtool tsdb create-blocks-from openmetrics` (one input file
per 2-hour block: promtool reads its whole input once per block it writes), and their hourly
summaries replayed from that history as docs/alerting.md says (`dqmon rules --backfill`,
`promtool tsdb create-blocks-from rules`). Prometheus then loads the rules `dqmon rules`
writes (the generic form, as `dqmon rules` picks beyond 500 checks, or --per-check) and
evaluates them every 30 s, the hourly summaries' group included (its `interval: 1h` is
lowered to 30 s here so that its cost is measured too). The script prints
`prometheus_rule_group_last_duration_seconds` per group, the median of several evaluations,
and the time each backfill step took.

    python benchmarks/anomaly_rules.py [--series 1000] [--days 14] [--per-check]
"""

from __future__ import annotations

import argparse
import http.server
import json
import random
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from dqmon.alerts import Form, render_rules
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


BLOCK_S = 7200  # promtool's default block range: it writes one block per 2-hour window


def write_history(tmp: Path, series: int, days: int, end_s: int) -> tuple[list[Path], int]:
    """Write every series' 1-minute history as OpenMetrics, one file per 2-hour block;
    return the files and the number of samples."""
    rng = random.Random(1)
    levels = [rng.uniform(1e3, 1e6) for _ in range(series)]
    start_s = end_s - days * 86400
    files, count = [], 0
    for block in range(start_s - start_s % BLOCK_S, end_s, BLOCK_S):
        path = tmp / f"history-{block}.om"
        with path.open("w", encoding="utf-8") as out:
            out.write("# TYPE dq_row_count gauge\n")
            for i, level in enumerate(levels):
                labels = f'dq_warehouse="w",dq_table="t{i:05d}",dq_check="row_count",job="dqmon"'
                times = range(max(block, start_s), min(block + BLOCK_S, end_s), 60)
                out.writelines(f"dq_row_count{{{labels}}} {level * rng.uniform(0.98, 1.02):.0f}"
                               f" {at}\n" for at in times)
                count += len(times)
            out.write("# EOF\n")
        files.append(path)
    return files, count


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


def start_prometheus(tmp: Path, config: dict[str, object]) -> tuple[subprocess.Popen[bytes], str]:
    """Start Prometheus on the TSDB under `tmp` with `config`; return it and its URL."""
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    with (tmp / "prometheus.log").open("ab") as log:
        proc = subprocess.Popen([PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=5).close()
            return proc, url
        except OSError:
            time.sleep(1)
    proc.terminate()
    raise SystemExit(f"Prometheus did not start: see {tmp / 'prometheus.log'}")


def stop_prometheus(proc: subprocess.Popen[bytes]) -> None:
    """Stop a Prometheus started here."""
    proc.terminate()
    proc.wait(timeout=120)


def replay_summaries(tmp: Path, backfill: str, span: tuple[int, int]) -> None:
    """Replay the hourly summaries over the history into the TSDB (docs/alerting.md)."""
    (tmp / "backfill.yml").write_text(backfill, encoding="utf-8")
    proc, url = start_prometheus(tmp, {"global": {}})
    try:
        subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "rules", "--quiet",
                        f"--start={span[0]}", f"--end={span[1]}", f"--url={url}",
                        f"--output-dir={tmp / 'summaries'}", str(tmp / "backfill.yml")],
                       check=True, capture_output=True)
    finally:
        stop_prometheus(proc)
    for block in (tmp / "summaries").iterdir():
        block.rename(tmp / "tsdb" / block.name)


def serve_today(series: int) -> http.server.HTTPServer:
    """Serve today's value of every series on /metrics, as a running dqmon would."""
    rng = random.Random(1)
    page = "".join(
        f'dq_row_count{{dq_warehouse="w",dq_table="t{i:05d}",dq_check="row_count"}} '
        f"{rng.uniform(1e3, 1e6):.0f}\n" for i in range(series)).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            """Stay quiet."""

    server = http.server.HTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(tmp: Path, rules: str, series: int, evaluations: int) -> dict[str, list[float]]:
    """Run Prometheus on the backfilled TSDB with `rules`, scraping today's values every
    30 s; sample each group's duration."""
    every_30s = yaml.safe_load(rules)
    for group in every_30s["groups"]:
        group.pop("interval", None)
    (tmp / "rules.yml").write_text(yaml.safe_dump(every_30s), encoding="utf-8")
    server = serve_today(series)
    target = f"127.0.0.1:{server.server_address[1]}"
    proc, url = start_prometheus(tmp, {
        "global": {"evaluation_interval": "30s", "scrape_interval": "30s"},
        "rule_files": [str(tmp / "rules.yml")],
        "scrape_configs": [{"job_name": "dqmon", "static_configs": [{"targets": [target]}]}]})
    try:
        durations_seen = sample(url, evaluations)
        print("slowest rules at the last evaluation: " + ", ".join(
            f"{name} {seconds:.3f} s" for seconds, name in slowest_rules(url)), flush=True)
        print(f"checks with a learned band: {count(url, 'dq:anomaly_upper')}, "
              f"hourly summaries read per check: "
              f"{count(url, 'count_over_time(dq:dq_row_count:avg_1h[30d])', 'max')}")
        return durations_seen
    finally:
        stop_prometheus(proc)
        server.shutdown()


def count(url: str, expr: str, how: str = "count") -> str:
    """Return `how(expr)` evaluated now, as text (`none` when it has no result)."""
    query = urllib.parse.urlencode({"query": f"{how}({expr})"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=60) as response:
        result = json.loads(response.read())["data"]["result"]
    return result[0]["value"][1] if result else "none"


WARM_UP = 2  # readings dropped first: Prometheus compacts the backfilled blocks after start


def sample(url: str, evaluations: int) -> dict[str, list[float]]:
    """Collect `evaluations` distinct readings per group, 30 s apart, after the warm-up."""
    seen: dict[str, list[float]] = {}
    wanted = evaluations + WARM_UP
    deadline = time.monotonic() + 60 + 35 * wanted
    while time.monotonic() < deadline and min(map(len, seen.values()), default=0) < wanted:
        time.sleep(5)
        try:
            now = durations(url)
        except OSError:
            continue
        for group, value in now.items():
            if value and (not seen.get(group) or seen[group][-1] != value):
                seen.setdefault(group, []).append(value)
    return {group: values[WARM_UP:] for group, values in seen.items()}


def slowest_rules(url: str, top: int = 4) -> list[tuple[float, str]]:
    """Return the rules with the longest last evaluation (Prometheus's rules API)."""
    with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=60) as response:
        groups = json.loads(response.read())["data"]["groups"]
    timed = [(float(rule.get("evaluationTime", 0)), rule["name"])
             for group in groups for rule in group["rules"]]
    return sorted(timed, reverse=True)[:top]


def main() -> None:
    """Backfill, evaluate, print the median duration per rule group."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--evaluations", type=int, default=5)
    parser.add_argument("--per-check", action="store_true")
    parser.add_argument("--also", metavar="RULES", type=Path,
                        help="another rule file to measure on the same TSDB after dqmon's "
                             "(e.g. an earlier release's `dqmon rules`), for a ratio")
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="keep the TSDB in DIR and reuse it when it is there already")
    args = parser.parse_args()
    config = parse_config(checks_yaml(args.series, args.days), "checks.yaml", env={})
    form: Form = "per-check" if args.per_check else "generic"
    rules, backfill = render_rules(config, form=form), render_rules(config, form=form,
                                                                   backfill=True)
    with tempfile.TemporaryDirectory() as name:
        tmp = args.keep or Path(name)
        if not (tmp / "tsdb").exists():
            history(tmp, backfill, args.series, args.days)
        report(measure(tmp, rules, args.series, args.evaluations))
        if args.also:
            print(f"--- {args.also}:")
            report(measure(tmp, args.also.read_text(encoding="utf-8"), args.series,
                           args.evaluations))


def history(tmp: Path, backfill: str, series: int, days: int) -> None:
    """Backfill `days` of history of `series` and replay their hourly summaries."""
    tmp.mkdir(parents=True, exist_ok=True)
    end = int(time.time()) - 60
    started = time.monotonic()
    files, samples = write_history(tmp, series, days, end)
    for path in files:
        subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                        str(path), str(tmp / "tsdb")], check=True, capture_output=True)
        path.unlink()
    print(f"backfilled {samples:,} samples in {time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    start = end - days * 86400
    # A --start inside a 2-hour block makes promtool write nothing (prometheus#19714).
    replay_summaries(tmp, backfill, (start - start % BLOCK_S, end))
    print(f"replayed the hourly summaries in {time.monotonic() - started:.0f} s", flush=True)


def report(seen: dict[str, list[float]]) -> None:
    """Print each group's median and max duration."""
    for group, values in sorted(seen.items()):
        print(f"{group}: median {statistics.median(values):.3f} s over {len(values)} "
              f"evaluations (max {max(values):.3f} s)", flush=True)


if __name__ == "__main__":
    main()
