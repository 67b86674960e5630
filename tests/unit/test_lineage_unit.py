"""OpenLineage: dataset naming per dialect, results → RunEvents, and the sender's outage rule."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.event_v2 import RunEvent
from openlineage.client.serde import Serde
from sqlalchemy.engine import make_url

from dqmon import lineage
from dqmon.config import Config, TableSpec, parse_config
from dqmon.lineage import Lineage, NoLineage, TableRun, dataset_id, run_events
from dqmon.results import CheckResult, Status
from dqmon.warehouse import Warehouse

from lineage_sink import schema_errors

CONFIG = """\
version: 1
warehouses:
  pg: {url: "postgresql://dq:secret@db.example:6543/shop"}
tables:
  - name: orders
    table: sales.orders
    where: "status <> 'test'"
    segment_by: {column: country}
    checks:
      - row_count: {min: 10, max: 1000}
      - completeness: {columns: [customer_id], min_ratio: 0.9}
      - completeness: {name: recent_amount, columns: [amount], where: "day > 3"}
      - validity: {name: email_format, column: email, regex: '^[^@]+@[^@]+$'}
      - uniqueness: {columns: [order_id, line], severity: warning}
"""
T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def config() -> Config:
    """The orders table of CONFIG."""
    return parse_config(CONFIG)


def result(config: Config, check: str, value: float | None, status: Status, *,
           segment: str | None = None, error: str | None = None,
           started: float = T0) -> CheckResult:
    table = config.tables[0]
    spec = table.check(check)
    assert spec is not None, check
    return CheckResult(spec, "pg", None, value, status, 0.5, started, error, segment=segment)


def orders_run(config: Config, results: list[CheckResult], rows: int | None = 40) -> TableRun:
    table = config.tables[0]
    return TableRun(table, "postgres://db.example:6543", "shop.sales.orders", results, rows)


def as_json(events: list[RunEvent]) -> list[dict[str, Any]]:
    return [json.loads(Serde.to_json(e)) for e in events]


def assertions(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    facet = event["inputs"][0]["inputFacets"]["dataQualityAssertions"]
    return {a["name"]: a for a in facet["assertions"]}


# --- naming ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "schema", "expected"), [
    ("postgresql+psycopg://u:p@db:6543/shop", "sales",
     ("postgres://db:6543", "shop.sales.orders")),
    ("postgresql://u@db/shop", None, ("postgres://db:5432", "shop.public.orders")),
    ("postgresql://u@/shop?host=/var/run/postgresql", None,
     ("postgres://localhost:5432", "shop.public.orders")),
    ("mysql+pymysql://u:p@my:3307/shop", None, ("mysql://my:3307", "shop.orders")),
    ("mariadb+pymysql://u@maria/shop", "other", ("mysql://maria:3306", "other.orders")),
    ("sqlite+pysqlite:////data/wh.db", None, ("sqlite:///data/wh.db", "main.orders")),
    ("duckdb:////data/wh.duckdb", None, ("duckdb:///data/wh.duckdb", "wh.main.orders")),
    ("duckdb:////data/wh.duckdb", "raw", ("duckdb:///data/wh.duckdb", "wh.raw.orders")),
    ("snowflake://u:p@MyOrg-MyAcct/SHOP/PUBLIC?warehouse=WH", None,
     ("snowflake://myorg-myacct", "SHOP.PUBLIC.orders")),
    ("bigquery://my-project/sales", None, ("bigquery", "my-project.sales.orders")),
    ("trino://u@trino.example:8443/hive/web", None,
     ("trino://trino.example:8443", "hive.web.orders")),
    ("trino://u@trino.example/hive", "web", ("trino://trino.example:8080", "hive.web.orders")),
])
def test_dataset_naming_follows_the_openlineage_naming_spec(
        url: str, schema: str | None, expected: tuple[str, str]) -> None:
    """Each dialect's namespace and name are those of the naming spec (docs/lineage.md)."""
    assert dataset_id(make_url(url), schema, "orders") == expected


def test_a_relative_sqlite_path_is_named_by_its_absolute_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same file gets the same namespace from any working directory."""
    monkeypatch.chdir(tmp_path)
    assert dataset_id(make_url("sqlite:///wh.db"), None, "t") == (
        f"sqlite://{tmp_path}/wh.db", "main.t")


def test_no_credential_reaches_a_dataset_id() -> None:
    """The password and URL parameters never appear in the namespace or the name."""
    namespace, name = dataset_id(make_url("postgresql://dq:s3cret@db/shop?sslkey=k3y"), None, "t")
    assert "s3cret" not in namespace + name and "k3y" not in namespace + name


# --- results → events ----------------------------------------------------------------------------

def test_a_table_run_is_a_start_and_a_complete_with_one_run_id(config: Config) -> None:
    """START at the run's start, COMPLETE at its end, same runId, job = the table's name."""
    events = as_json(run_events(orders_run(config, [
        result(config, "row_count", 40, "pass"),
        result(config, "email_format", 1.0, "pass", started=T0 + 2)])))
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    assert [e["eventTime"] for e in events] == ["2027-01-15T08:00:00+00:00",
                                                "2027-01-15T08:00:02.500000+00:00"]
    assert {(e["job"]["namespace"], e["job"]["name"]) for e in events} == {("dqmon", "orders")}
    assert events[0]["inputs"] == [{"namespace": "postgres://db.example:6543",
                                    "name": "shop.sales.orders", "facets": {},
                                    "inputFacets": {}}]


def test_run_ids_are_stable_per_table_and_run_start(config: Config) -> None:
    """The same table and start give the same runId; another start or namespace another."""
    def run_id(started: float, namespace: str = "dqmon") -> str:
        run = orders_run(config, [result(config, "row_count", 40, "pass", started=started)])
        return str(run_events(run, namespace)[0].run.runId)

    assert run_id(T0) == run_id(T0)
    assert len({run_id(T0), run_id(T0 + 300), run_id(T0, "other")}) == 3


def test_a_failing_check_is_an_exact_assertion(config: Config) -> None:
    """completeness at 0.75 over 40 rows: success false, column, severity, 10 nulls."""
    events = as_json(run_events(orders_run(config, [
        result(config, "row_count", 40, "pass"),
        result(config, "completeness_customer_id", 0.75, "fail")])))
    done = events[1]
    assert assertions(done)["completeness_customer_id"] == {
        "assertion": "completeness", "name": "completeness_customer_id", "success": False,
        "column": "customer_id", "severity": "critical", "expected": ">= 0.9",
        "actual": "0.75", "params": {"status": "fail", "metric": "dq.completeness_ratio"}}
    assert assertions(done)["row_count"]["expected"] == "10..1000"
    metrics = done["inputs"][0]["inputFacets"]["dataQualityMetrics"]
    assert (metrics["rowCount"], metrics["columnMetrics"]) == (40, {"customer_id": {"nullCount": 10}})
    assert done["eventType"] == "COMPLETE"


def test_a_check_with_its_own_where_gives_no_null_count(config: Config) -> None:
    """Its ratio is over other rows than rowCount counts, so no nullCount is made up."""
    done = as_json(run_events(orders_run(config, [
        result(config, "recent_amount", 0.5, "fail")])))[1]
    assert done["inputs"][0]["inputFacets"]["dataQualityMetrics"]["columnMetrics"] == {}


def test_without_a_scan_there_is_no_metrics_facet(config: Config) -> None:
    """A run whose aggregate scan did not run sends assertions only."""
    done = as_json(run_events(orders_run(config, [
        result(config, "uniqueness_order_id_line", 1.0, "pass")], rows=None)))[1]
    assert set(done["inputs"][0]["inputFacets"]) == {"dataQualityAssertions"}
    assert assertions(done)["uniqueness_order_id_line"]["column"] == "order_id,line"


def test_an_errored_check_fails_the_run_without_its_message(config: Config) -> None:
    """An error is a FAIL event and status `error`; the server's text (a row value) stays out."""
    events = as_json(run_events(orders_run(config, [
        result(config, "row_count", 40, "pass"),
        result(config, "email_format", None, "error",
               error="invalid input syntax: 'alice@example.com'")])))
    assert events[1]["eventType"] == "FAIL"
    email = assertions(events[1])["email_format"]
    assert (email["success"], email["params"]["status"], "actual" in email) == (
        False, "error", False)
    assert "alice" not in json.dumps(events)


def test_a_failing_segment_fails_the_assertion_and_its_value_stays_out(config: Config) -> None:
    """One assertion per check: a segment's failure counts, the segment's value is never sent."""
    events = as_json(run_events(orders_run(config, [
        result(config, "email_format", 1.0, "pass"),
        result(config, "email_format", 0.5, "fail", segment="Liechtenstein")])))
    email = assertions(events[1])["email_format"]
    assert (email["success"], email["actual"]) == (False, "1")
    assert "Liechtenstein" not in json.dumps(events)


def test_no_sql_text_reaches_an_event(config: Config) -> None:
    """Neither the table's `where` nor a check's nor a rule's regex appear in the JSON."""
    text = json.dumps(as_json(run_events(orders_run(config, [
        result(config, "recent_amount", 0.5, "fail"),
        result(config, "email_format", 1.0, "pass")]))))
    assert "status <>" not in text and "day > 3" not in text and "^[^@]" not in text


def test_events_validate_against_the_openlineage_schemas(config: Config) -> None:
    """RunEvent 2-0-2 and every facet's own schema accept the events."""
    events = as_json(run_events(orders_run(config, [
        result(config, "row_count", 40, "pass"),
        result(config, "completeness_customer_id", 0.75, "fail"),
        result(config, "email_format", None, "error", error="boom")])))
    assert [schema_errors(e) for e in events] == [[], []]


def test_the_schema_check_can_fail(config: Config) -> None:
    """The validator above sees a wrong type in a facet."""
    done = as_json(run_events(orders_run(config, [result(config, "row_count", 40, "pass")])))[1]
    done["inputs"][0]["inputFacets"]["dataQualityMetrics"]["rowCount"] = "forty"
    assert any("'forty' is not of type 'integer'" in e for e in schema_errors(done))


@pytest.mark.parametrize(("low", "high", "text"), [
    (0.998, None, ">= 0.998"), (None, 7200.0, "<= 7200"), (1000.0, 5e6, "1000..5000000"),
    (None, None, None)])
def test_thresholds_are_written_as_text(low: float | None, high: float | None,
                                        text: str | None) -> None:
    """`expected` reads like the threshold column of run-once's output, in the value's unit."""
    assert lineage.expected(low, high) == text


def test_values_are_written_as_text() -> None:
    """Integers lose `.0`, infinities are `+Inf`, NaN is left out."""
    assert [lineage.number_text(v) for v in (3.0, 0.25, float("inf"), float("nan"), None)] == [
        "3", "0.25", "+Inf", None, None]


# --- configuration -----------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "on"), [
    ({}, False),
    ({"OPENLINEAGE_URL": "http://marquez:5000"}, True),
    ({"OPENLINEAGE_CONFIG": "/etc/ol.yml"}, True),
    ({"OPENLINEAGE__TRANSPORT__TYPE": "console"}, True),
    ({"OPENLINEAGE_URL": "http://marquez:5000", "OPENLINEAGE_DISABLED": "true"}, False),
    ({"OPENLINEAGE_NAMESPACE": "prod"}, False),
])
def test_lineage_is_on_only_when_the_client_is_configured(
        tmp_path: Path, env: dict[str, str], on: bool) -> None:
    """The client's URL, config file or transport variables turn lineage on; nothing else."""
    assert lineage.configured(env, home=tmp_path, cwd=tmp_path) is on


def test_an_openlineage_yml_turns_lineage_on(tmp_path: Path) -> None:
    """The client's own config file, in the working directory or ~/.openlineage, counts."""
    (tmp_path / "home" / ".openlineage").mkdir(parents=True)
    (tmp_path / "home" / ".openlineage" / "openlineage.yml").write_text("transport: {}\n")
    assert lineage.configured({}, home=tmp_path / "home", cwd=tmp_path)
    assert not lineage.configured({}, home=tmp_path, cwd=tmp_path)


def test_unconfigured_lineage_builds_no_client(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """Without configuration the run gets `NoLineage`, which passes the observer through."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    sink = lineage.from_environment({})
    observer = object()
    assert isinstance(sink, NoLineage) and sink.observe(observer) is observer  # type: ignore[arg-type]


# --- sending -----------------------------------------------------------------------------------

class FakeClient:
    """Records events; fails while `down` is set; blocks while `hold` is clear."""

    transport = type("Transport", (), {"url": "http://marquez:5000", "kind": "http"})()

    def __init__(self) -> None:
        self.events: list[RunEvent] = []
        self.down = False
        self.hold = threading.Event()
        self.hold.set()
        self.attempts = threading.Semaphore(0)

    def emit(self, event: RunEvent) -> None:
        self.hold.wait()
        try:
            if self.down:
                raise ConnectionError("Connection refused")
            self.events.append(event)
        finally:
            self.attempts.release()

    def wait_attempts(self, count: int) -> None:
        for _ in range(count):
            assert self.attempts.acquire(timeout=10)


def publish_orders(sink: Lineage, config: Config, started: float = T0) -> None:
    table: TableSpec = config.tables[0]
    settings = config.warehouses["pg"]
    sink.publish([table], {"pg": Warehouse("pg", settings)},
                 [result(config, "row_count", 40, "pass", started=started)])


def lineage_records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "dqmon.lineage"]


def test_sending_delivers_each_event_in_order(config: Config) -> None:
    """Published events reach the client, START before COMPLETE, by close."""
    client = FakeClient()
    sink = Lineage(lambda: client)
    publish_orders(sink, config)
    sink.close(timeout_s=10)
    assert [e.eventType.value for e in client.events if e.eventType] == ["START", "COMPLETE"]


def test_a_down_endpoint_warns_once_per_outage_and_once_on_recovery(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    """Four failed sends warn once; the first success after them says so once."""
    caplog.set_level(logging.INFO, logger="dqmon.lineage")
    client = FakeClient()
    client.down = True
    sink = Lineage(lambda: client)
    publish_orders(sink, config)
    publish_orders(sink, config, T0 + 60)
    client.wait_attempts(4)
    client.down = False
    publish_orders(sink, config, T0 + 120)
    sink.close(timeout_s=10)
    assert lineage_records(caplog) == [
        ("WARNING", "lineage: export to marquez:5000 failed (Connection refused); OpenLineage "
                    "events are dropped until it answers (the checks' results and exit code "
                    "are unaffected)"),
        ("INFO", "lineage: export to marquez:5000 works again")]
    assert len(client.events) == 2


def test_close_gives_up_on_a_hung_endpoint_with_one_warning(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    """An endpoint that never answers costs close its timeout and one warning, no hang."""
    caplog.set_level(logging.INFO, logger="dqmon.lineage")
    client = FakeClient()
    client.hold.clear()
    sink = Lineage(lambda: client)
    publish_orders(sink, config)
    sink.close(timeout_s=0.2)
    assert [level for level, _ in lineage_records(caplog)] == ["WARNING"]
    assert client.events == []
    client.hold.set()  # let the sender thread finish


def test_a_broken_publish_never_raises(config: Config, caplog: pytest.LogCaptureFixture) -> None:
    """A table whose warehouse is unknown logs an error and the run goes on."""
    sink = Lineage(FakeClient)
    sink.publish([config.tables[0]], {}, [result(config, "row_count", 40, "pass")])
    sink.close(timeout_s=10)
    assert [level for level, _ in lineage_records(caplog)] == ["ERROR"]


def test_a_client_that_cannot_be_built_costs_one_warning(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    """A bad lineage setting is said once; the run's publish and close go on."""
    def broken() -> FakeClient:
        raise ValueError("Need valid url for OpenLineageClient")

    sink = Lineage(broken)
    publish_orders(sink, config)
    sink.close(timeout_s=10)
    assert lineage_records(caplog) == [
        ("WARNING", "lineage: cannot set up the OpenLineage client (Need valid url for "
                    "OpenLineageClient); sending nothing")]


@pytest.mark.parametrize(("extra", "total"), [({}, 1), ({"OPENLINEAGE__TRANSPORT__TYPE": "http",
                                                 "OPENLINEAGE__TRANSPORT__URL": "http://x:1",
                                                 "OPENLINEAGE__TRANSPORT__RETRY": '{"total": 7}'},
                                                7)])
def test_retries_are_bounded_unless_the_user_set_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: dict[str, str],
        total: int) -> None:
    """The client's default 5 retries become 1 (run-once's wait); a user's own stay."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}
    monkeypatch.setattr(os, "environ", {**env, "OPENLINEAGE_URL": "http://127.0.0.1:1",
                                        "HOME": str(tmp_path), **extra})
    monkeypatch.chdir(tmp_path)
    client: Any = lineage.connect_client()
    assert client.transport.config.retry["total"] == total
