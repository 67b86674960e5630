"""End to end: a real Prometheus scrapes a running `dqmon run` with the generated rules and
fires, then resolves, the freshness alert of a stale PostgreSQL table (issue 5)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from dqmon.alerts import RuleOptions, render_rules
from dqmon.config import load_config

from conftest import need_service
from processes import free_port, poll, stop

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus, pytest.mark.slow]

PROMETHEUS = Path("/usr/bin/prometheus")
MakeTable = Callable[[str, dict[str, str], Sequence[Sequence[Any]]], str]  # tests/conftest.py


def get_json(url: str) -> Any:
    """GET a JSON document; None when the server does not answer (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def alerts(prometheus: str, table: str) -> list[dict[str, Any]] | None:
    """Return the pending and firing dqmon alerts of `table` (None when Prometheus is not up)."""
    body = get_json(f"{prometheus}/api/v1/alerts")
    if body is None:
        return None
    return [a for a in body["data"]["alerts"] if a["labels"].get("dq_table") == table]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[[str, list[str]], Path]]:
    """Start subprocesses with their output in tmp_path; kill every one of them after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str]) -> Path:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            started.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL))
        return log

    yield start
    stop(started)


def write_checks(tmp_path: Path, url: str, table: str) -> Path:
    """Write a checks.yaml that checks `table`'s freshness every 2 seconds."""
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({
        "version": 1,
        "warehouses": {"pg": {"url": url}},
        "tables": [{"name": "events", "table": f"public.{table}", "schedule": "every 2s",
                    "checks": [{"freshness": {"column": "created_at", "max_age": "1h"}}]}],
    }), encoding="utf-8")
    return path


def write_prometheus(tmp_path: Path, checks: Path, dqmon_port: int) -> Path:
    """Write the generated rules (`for:` shortened to 1s) and a 1s-interval Prometheus config."""
    rules = tmp_path / "rules.yml"
    rules.write_text(render_rules(load_config(checks), RuleOptions(for_s=1, error_for_s=1)),
                     encoding="utf-8")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "dqmon",
                            "static_configs": [{"targets": [f"127.0.0.1:{dqmon_port}"]}]}],
    }), encoding="utf-8")
    return config


def test_freshness_alert_fires_for_a_stale_table_and_resolves_after_new_rows(
        make_table: MakeTable, pg_url: str, pg_conn: psycopg.Connection[Any], tmp_path: Path,
        processes: Callable[[str, list[str]], Path]) -> None:
    """A day-old table fires DQFreshness in Prometheus within a minute; a fresh row resolves it."""
    if not PROMETHEUS.exists():
        need_service("prometheus", f"{PROMETHEUS} is missing (Debian package `prometheus`)")
    day_ago = datetime.now(UTC) - timedelta(days=1)
    table = make_table("e2e_alert_events", {"id": "integer", "created_at": "timestamptz"},
                       [(1, day_ago)])
    checks = write_checks(tmp_path, pg_url, table)
    dqmon_port, prom_port = free_port(), free_port()
    prometheus = f"http://127.0.0.1:{prom_port}"
    logs = [
        processes("dqmon", [sys.executable, "-m", "dqmon", "run", "--config", str(checks),
                            "--listen", f"127.0.0.1:{dqmon_port}", "--no-export",
                            "--log-format", "json"]),
        processes("prometheus", [str(PROMETHEUS),
                                 f"--config.file={write_prometheus(tmp_path, checks, dqmon_port)}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"]),
    ]

    def firing() -> dict[str, Any] | None:
        found = [a for a in alerts(prometheus, "events") or []
                 if a["labels"]["alertname"] == "DQFreshness" and a["state"] == "firing"]
        return found[0] if found else None

    alert = poll("DQFreshness to fire", firing, 60, logs)
    assert alert["labels"] == {"alertname": "DQFreshness", "severity": "critical",
                               "dq_table": "events", "dq_check": "freshness",
                               "dq_warehouse": "pg", "dq_column": "created_at"}
    assert 86_400 <= float(alert["value"]) < 86_400 + 120
    assert alert["annotations"]["summary"].startswith("events.freshness failed: 1d ")
    firing_now = {a["labels"]["alertname"] for a in alerts(prometheus, "events") or []
                  if a["state"] == "firing"}
    assert firing_now == {"DQFreshness"}  # the monitor runs: no DQMonitorStale, DQCheckError

    pg_conn.execute(f"INSERT INTO {table} VALUES (2, now())")

    def resolved() -> bool:
        current = alerts(prometheus, "events")
        return current is not None and not any(
            a["labels"]["alertname"] == "DQFreshness" for a in current)

    poll("DQFreshness to resolve after a fresh row", resolved, 60, logs)
