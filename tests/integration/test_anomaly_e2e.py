"""Learned baselines end to end (issue 12): two days of history backfilled into a real
Prometheus with `promtool tsdb create-blocks-from openmetrics`, its hourly summaries
replayed from it with `dqmon rules --backfill` and `promtool tsdb create-blocks-from rules`
(the path docs/alerting.md gives), a real `dqmon run` daemon publishing today's row counts,
the rules `dqmon rules` writes, and `DQAnomaly` firing for the one check whose value is far
off its band, and for no other."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dqmon.alerts import RuleOptions, render_rules
from dqmon.config import load_config

from conftest import need_service
from processes import free_port, poll, stop

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")

CHECKS = """
version: 1
warehouses:
  demo: {url: "sqlite:///%s"}
defaults: {schedule: every 1s, severity: warning}
tables:
  - name: orders
    checks:
      - row_count: {anomaly: {window: 2d, min_history: 1d}}
  - name: customers
    checks:
      - row_count: {anomaly: {window: 2d, min_history: 1d}}
"""


def http_json(url: str) -> Any:
    """GET a JSON document, or None while the server is not up."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def row_counts(warehouse: Path) -> dict[str, int]:
    """Return today's row count of the demo's tables."""
    import sqlite3
    with sqlite3.connect(warehouse) as conn:
        return {t: int(conn.execute(f"select count(*) from {t}").fetchone()[0])
                for t in ("orders", "customers")}


def history(levels: dict[str, float], end_s: int, days: int = 2) -> str:
    """Return OpenMetrics text: each table's row count every minute for `days`, ±1% noise."""
    rng = random.Random(12)
    lines = ["# TYPE dq_row_count gauge"]
    for table, level in levels.items():
        labels = (f'dq_warehouse="demo",dq_table="{table}",dq_check="row_count",'
                  'instance="old-pod",job="dqmon"')
        for at in range(end_s - days * 86400, end_s, 60):
            lines.append(f"dq_row_count{{{labels}}} {level * rng.uniform(0.99, 1.01):.1f} {at}")
    return "\n".join(lines) + "\n# EOF\n"


def backfill(text: str, tsdb: Path, tmp: Path) -> None:
    """Write `text` into TSDB blocks under `tsdb`."""
    source = tmp / "history.om"
    source.write_text(text, encoding="utf-8")
    subprocess.run([str(PROMTOOL), "tsdb", "create-blocks-from", "openmetrics", str(source),
                    str(tsdb)], check=True, capture_output=True, timeout=120)


def block_start(at_s: int) -> int:
    """Return the start of the 2-hour TSDB block holding `at_s`: promtool's rule backfill
    (2.42 to at least 3.7) writes nothing at all when `--start` falls in a block without
    an evaluation time of the group (prometheus/prometheus#19714)."""
    return at_s - at_s % 7200


def replay_summaries(checks: Path, tsdb: Path, tmp: Path, span: tuple[int, int],
                     procs: list[subprocess.Popen[bytes]]) -> None:
    """Backfill the hourly summaries of `tsdb`'s history into it, as docs/alerting.md says:
    a Prometheus without rules serves the history, promtool replays `dqmon rules --backfill`,
    and the blocks it writes move into `tsdb` before the real Prometheus starts."""
    backfill_rules = tmp / "backfill.yml"
    subprocess.run([sys.executable, "-m", "dqmon", "rules", "--config", str(checks),
                    "--backfill", "-o", str(backfill_rules)], check=True, capture_output=True,
                   timeout=60)
    config, log, url = tmp / "history.yml", tmp / "prometheus-history.log", free_port()
    config.write_text("global: {}\n", encoding="utf-8")
    start([str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
           f"--web.listen-address=127.0.0.1:{url}"], log, procs)
    reader = f"http://127.0.0.1:{url}"
    poll("the history Prometheus", lambda: http_json(f"{reader}/api/v1/status/buildinfo"), 30,
         [log])
    subprocess.run([str(PROMTOOL), "tsdb", "create-blocks-from", "rules", "--quiet",
                    f"--start={span[0]}", f"--end={span[1]}", f"--url={reader}",
                    f"--output-dir={tmp / 'summaries'}", str(backfill_rules)],
                   check=True, capture_output=True, timeout=120)
    stop([procs.pop()])
    assert (tmp / "summaries").is_dir(), "promtool replayed no summary"
    for block in (tmp / "summaries").iterdir():
        block.rename(tsdb / block.name)


def start(command: list[str], log: Path, procs: list[subprocess.Popen[bytes]],
          env: dict[str, str] | None = None) -> None:
    """Start a process that logs to `log`; the fixture stops it."""
    with log.open("wb") as out:
        procs.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env))


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes the test starts, terminated (then killed) at its end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    stop(started)


def prometheus_config(tmp: Path, rules: Path, target: str) -> Path:
    """Write a Prometheus config scraping dqmon every second, rules evaluated every second."""
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "dqmon", "static_configs": [{"targets": [target]}]}],
    }), encoding="utf-8")
    return path


def firing(url: str) -> list[tuple[str, str, str]] | None:
    """Return the firing alerts as (alertname, table, check), or None while none fire."""
    answer = http_json(f"{url}/api/v1/alerts")
    alerts = (answer or {}).get("data", {}).get("alerts", [])
    found = [(a["labels"]["alertname"], a["labels"].get("dq_table", ""),
              a["labels"].get("dq_check", "")) for a in alerts if a["state"] == "firing"]
    return sorted(found) or None


def test_a_value_far_off_its_backfilled_band_fires_dqanomaly_for_that_check_only(
        tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    """orders' history sits at a tenth of today's count, customers' at today's: after one
    scrape and two evaluations, DQAnomaly fires for orders.row_count and nothing else."""
    if not (PROMETHEUS.exists() and PROMTOOL.exists()):
        need_service("prometheus", "Debian's prometheus/promtool are missing")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DQMON_", "OTEL_"))}
    warehouse = tmp_path / "warehouse.db"
    subprocess.run([sys.executable, "-m", "dqmon", "demo", "--path", str(warehouse)], env=env,
                   check=True, capture_output=True, timeout=60)
    counts = row_counts(warehouse)
    checks = tmp_path / "checks.yaml"
    checks.write_text(CHECKS % warehouse, encoding="utf-8")
    rules = tmp_path / "rules.yml"
    options = RuleOptions(for_s=3600, anomaly_for_s=1)  # two 1s evaluations; others stay pending
    rules.write_text(render_rules(load_config(checks, env={}), options), encoding="utf-8")
    end = int(time.time()) - 900
    backfill(history({"orders": counts["orders"] / 10, "customers": counts["customers"]}, end),
             tmp_path / "tsdb", tmp_path)
    replay_summaries(checks, tmp_path / "tsdb", tmp_path, (block_start(end - 2 * 86400), end),
                     procs)
    port, prom_port = free_port(), free_port()
    logs = [tmp_path / "dqmon.log", tmp_path / "prometheus.log"]
    start([sys.executable, "-m", "dqmon", "run", "--config", str(checks), "--listen",
           f"127.0.0.1:{port}"], logs[0], procs, env)
    start([str(PROMETHEUS), f"--config.file={prometheus_config(tmp_path, rules, f'127.0.0.1:{port}')}",
           f"--storage.tsdb.path={tmp_path / 'tsdb'}",
           f"--web.listen-address=127.0.0.1:{prom_port}"], logs[1], procs)
    url = f"http://127.0.0.1:{prom_port}"
    alerts = poll("DQAnomaly to fire", lambda: firing(url), 30, logs)
    assert alerts == [("DQAnomaly", "orders", "row_count")]
    time.sleep(2)  # two more evaluations: customers' value inside its band stays quiet
    assert firing(url) == [("DQAnomaly", "orders", "row_count")]
    answer = http_json(f"{url}/api/v1/alerts")
    [alert] = [a for a in answer["data"]["alerts"] if a["state"] == "firing"]
    assert alert["annotations"]["summary"].startswith(
        f"orders.row_count is anomalous: {counts['orders']}, expected ")
    assert float(alert["value"]) > 3
