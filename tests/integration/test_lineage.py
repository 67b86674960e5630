"""OpenLineage on the wire: run-once and a daemon table run post RunEvents to an HTTP sink.

The SQLite demo warehouse gives exact, known data (tests/integration/test_sqlite.py): its
orders fail `email_format` and miss 3 of 2,398 customer ids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dqmon.config import load_config
from dqmon.daemon.jobs import Published, TableJob, WarehouseSlot
from dqmon.daemon.runner import Runs, TableRunner
from dqmon.demo import build_demo
from dqmon.lineage import Lineage
from dqmon.warehouse import Warehouse

from lineage_sink import LineageSink, schema_errors
from otlp_receiver import closed_port

REPO = Path(__file__).resolve().parents[2]
ROWS = 2398  # 2,400 orders minus the 2 test orders the table's `where` leaves out


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    """The repo's checks.yaml, pointed at a freshly built demo warehouse."""
    db = build_demo(tmp_path / "warehouse.db")
    text = (REPO / "checks.yaml").read_text()
    config = tmp_path / "checks.yaml"
    config.write_text(text.replace("sqlite:///demo/warehouse.db", f"sqlite:///{db}"))
    return config


def run_once(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `dqmon run-once` in a fresh process: no OTel export, no inherited lineage settings."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OTEL_", "OPENLINEAGE"))}
    env = {**clean, "HOME": str(config.parent), "OTEL_METRICS_EXPORTER": "none",
           "OTEL_TRACES_EXPORTER": "none", **env}
    return subprocess.run([sys.executable, "-m", "dqmon", "run-once", "--config", str(config),
                           *args], env=env, cwd=config.parent, capture_output=True, text=True,
                          timeout=120, check=False)


def stable(stdout: str) -> list[str]:
    """Return run-once's lines without the freshness ones (their age grows between runs)."""
    return [line for line in stdout.splitlines() if " freshness " not in line]


def assertions(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    facet = event["inputs"][0]["inputFacets"]["dataQualityAssertions"]
    return {a["name"]: a for a in facet["assertions"]}


def test_run_once_posts_a_start_and_a_complete_per_table(demo_config: Path) -> None:
    """Two tables: four schema-valid events, one runId per table, START before COMPLETE."""
    with LineageSink() as sink:
        proc = run_once(demo_config, {"OPENLINEAGE_URL": sink.url})
    assert proc.returncode == 1 and proc.stderr == ""
    assert [schema_errors(e) for e in sink.events] == [[]] * 4
    assert set(sink.paths) == {"/api/v1/lineage"}
    by_job: dict[str, list[str]] = {}
    for event in sink.events:
        by_job.setdefault(event["job"]["name"], []).append(event["eventType"])
    assert by_job == {"orders": ["START", "COMPLETE"], "customers": ["START", "COMPLETE"]}
    assert len({e["run"]["runId"] for e in sink.events}) == 2


def test_the_orders_events_are_exact(demo_config: Path) -> None:
    """The failing email_format check and the measured nulls arrive as they are."""
    with LineageSink() as sink:
        proc = run_once(demo_config, {"OPENLINEAGE_URL": sink.url}, "--table", "orders")
    assert proc.returncode == 0
    start, done = sink.events
    dataset = (done["inputs"][0]["namespace"], done["inputs"][0]["name"])
    assert dataset == (f"sqlite://{demo_config.parent}/warehouse.db", "main.orders")
    email = assertions(done)["email_format"]
    assert {k: v for k, v in email.items() if k != "actual"} == {
        "assertion": "validity", "name": "email_format", "success": False, "column": "email",
        "severity": "warning", "expected": ">= 1", "params": {"status": "fail",
                                                              "metric": "dq.validity_ratio"}}
    assert float(email["actual"]) == pytest.approx(1 - 5 / ROWS)
    assert assertions(done)["completeness_order_id"]["success"] is True
    metrics = done["inputs"][0]["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == ROWS
    assert metrics["columnMetrics"] == {"order_id": {"nullCount": 0},
                                        "customer_id": {"nullCount": 3},
                                        "amount": {"nullCount": 0}}
    assert start["eventTime"] <= done["eventTime"]


def test_no_sql_and_no_row_value_is_sent(demo_config: Path) -> None:
    """The `where`, the custom SQL, the regex and the demo's planted values never leave."""
    with LineageSink() as sink:
        run_once(demo_config, {"OPENLINEAGE_URL": sink.url}, "--samples", "5")
    text = json.dumps(sink.events).lower()
    assert sink.events
    for needle in ("select", "status <>", "shipped_at", "[^@", "example.com", " at "):
        assert needle not in text, needle


def test_lineage_changes_neither_the_results_nor_the_exit_code(demo_config: Path) -> None:
    """stdout and the exit code are those of a run without lineage."""
    plain = run_once(demo_config, {}, "--table", "customers")
    with LineageSink() as sink:
        sent = run_once(demo_config, {"OPENLINEAGE_URL": sink.url}, "--table", "customers")
    assert (sent.returncode, stable(sent.stdout)) == (plain.returncode, stable(plain.stdout))
    assert sink.events


def test_no_export_sends_no_lineage(demo_config: Path) -> None:
    """--no-export sends nothing at all (SPEC 3), lineage included."""
    with LineageSink() as sink:
        proc = run_once(demo_config, {"OPENLINEAGE_URL": sink.url}, "--no-export")
    assert proc.returncode == 1 and sink.events == []


def test_a_closed_port_costs_one_warning_and_a_bounded_delay(demo_config: Path) -> None:
    """A dead endpoint: same stdout and exit code, one warning line, well under 10 s."""
    plain = run_once(demo_config, {})
    port = closed_port()
    began = time.monotonic()
    down = run_once(demo_config, {"OPENLINEAGE_URL": f"http://127.0.0.1:{port}"})
    elapsed_s = time.monotonic() - began
    assert (down.returncode, stable(down.stdout)) == (plain.returncode, stable(plain.stdout))
    lines = [line for line in down.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lineage: export to 127.0.0.1:{port} failed"), lines
    assert elapsed_s < 10


def test_a_daemon_table_run_posts_its_events(demo_config: Path) -> None:
    """The daemon's runner publishes each table run beside its gauges, through the client."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    config = load_config(demo_config)
    table = config.tables[0]
    job = TableJob(table, WarehouseSlot(Warehouse("main", config.warehouses["main"]), "x"))
    published = Published(jobs={table.name: job})
    with LineageSink() as sink:
        client = OpenLineageClient(transport=HttpTransport(HttpConfig(url=sink.url)))
        sent = Lineage(lambda: client)
        TableRunner(NullReporter(), published, Runs(), lineage=sent).run(job)
        sent.close(timeout_s=10)
    assert [e["eventType"] for e in sink.events] == ["START", "COMPLETE"]
    assert [schema_errors(e) for e in sink.events] == [[], []]
    done = sink.events[1]
    assert done["inputs"][0]["inputFacets"]["dataQualityMetrics"]["rowCount"] == ROWS
    assert assertions(done)["email_format"]["success"] is False


class NullReporter:
    """A telemetry stand-in that records nothing."""

    @property
    def observer(self) -> Any:
        from dqmon.scan import NullObserver

        return NullObserver()

    def run_span(self) -> Any:
        import contextlib

        return contextlib.nullcontext()

    def record(self, results: Any) -> None:
        pass

    def retain(self, specs: Any) -> None:
        pass

    def shutdown(self, timeout_s: float = 3.0) -> None:
        pass
