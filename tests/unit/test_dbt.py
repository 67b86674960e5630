"""dbt's artifacts mapped to dqmon results and spans (dqmon/dbt.py, SPEC 13), without dbt.

The documents below copy the shape of what dbt-core 1.11 writes for tests/dbt_project (the
integration test runs the real thing); each test changes the one field it is about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dqmon import dbt
from dqmon.config.resolved import Threshold
from dqmon.errors import UsageError

NOW_S = 2_000_000_000.0
RESULTS_V6 = "https://schemas.getdbt.com/dbt/run-results/v6.json"
MANIFEST_V12 = "https://schemas.getdbt.com/dbt/manifest/v12.json"
NOT_NULL = "test.shop.not_null_orders_id.84ef11d8fe"
SOURCE_UNIQUE = "test.shop.source_unique_raw_payments_id.fe13cb6349"
SINGULAR = "test.shop.assert_no_negative_totals"


def result(uid: str, status: str = "pass", failures: int | None = 0,
           message: str | None = None) -> dict[str, Any]:
    """One item of run_results.json's `results`, executed from t=100 s to t=100.5 s."""
    timing = [{"name": "compile", "started_at": "1970-01-01T00:01:39Z",
               "completed_at": "1970-01-01T00:01:40Z"},
              {"name": "execute", "started_at": "1970-01-01T00:01:40Z",
               "completed_at": "1970-01-01T00:01:40.500000Z"}]
    return {"status": status, "timing": timing if status != "skipped" else [],
            "execution_time": 0.25, "message": message, "failures": failures, "unique_id": uid}


def run_results(*results: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"dbt_schema_version": RESULTS_V6,
                         "generated_at": "1970-01-01T00:02:00Z"},
            "results": list(results)}


def generic(name: str, attached: str | None, depends: list[str], model: str,
            column: str | None = "id", **config: str) -> dict[str, Any]:
    """A generic test's manifest node."""
    return {"name": name, "resource_type": "test", "attached_node": attached,
            "column_name": column, "depends_on": {"nodes": depends},
            "test_metadata": {"name": "unique", "kwargs": {"model": model}},
            "config": {"severity": "ERROR", "warn_if": "!= 0", "error_if": "!= 0", **config}}


MANIFEST = {
    "metadata": {"dbt_schema_version": MANIFEST_V12},
    "nodes": {
        NOT_NULL: generic("not_null_orders_id", "model.shop.orders", ["model.shop.orders"],
                          "{{ get_where_subquery(ref('orders')) }}"),
        SOURCE_UNIQUE: generic("source_unique_raw_payments_id", None,
                               ["model.shop.orders", "source.shop.raw.payments"],
                               "{{ get_where_subquery(source('raw', 'payments')) }}",
                               severity="warn"),
        SINGULAR: {"name": "assert_no_negative_totals", "resource_type": "test",
                   "attached_node": None, "test_metadata": None, "column_name": None,
                   "depends_on": {"nodes": ["model.shop.order_payments", "model.shop.orders"]},
                   "config": {"severity": "ERROR", "error_if": "> 10"}},
        "model.shop.orders": {"name": "orders", "resource_type": "model"},
    },
}


def imported(*results: dict[str, Any], manifest: dict[str, Any] | None = MANIFEST,
             ) -> dbt.Imported:
    nodes = dbt.parse_run_results(run_results(*results), "run_results.json", NOW_S)
    tests = None if manifest is None else dbt.parse_manifest(manifest, "manifest.json")
    return dbt.import_run(nodes, tests)


def by_check(outcome: dbt.Imported) -> dict[str, Any]:
    return {r.check: r for r in outcome.results}


# --- results ---------------------------------------------------------------------------------

def test_a_generic_test_is_a_custom_check_of_its_attached_model() -> None:
    """dq.table is the attached model, dq.check the test's name, the value its failures."""
    (found,) = imported(result(NOT_NULL, "fail", 3)).results
    assert (found.table, found.check, found.metric, found.value, found.status) == (
        "orders", "not_null_orders_id", "dq.custom_value", 3.0, "fail")
    assert found.attributes() == {"dq.warehouse": "dbt", "dq.table": "orders",
                                  "dq.check": "not_null_orders_id", "dq.column": "id"}
    assert (found.severity, found.spec.threshold, found.spec.kind) == (
        "critical", Threshold(max=0), "custom")
    assert (found.duration_s, found.started_at_s, found.error) == (0.25, 100.0, None)


def test_a_source_test_names_the_source_its_model_argument_quotes() -> None:
    """A source test has no attached_node: its `model` argument picks `raw.payments`."""
    (found,) = imported(result(SOURCE_UNIQUE)).results
    assert (found.table, found.status, found.value) == ("raw.payments", "pass", 0.0)


def test_a_singular_test_names_its_first_dependency() -> None:
    """A singular test belongs to the first node it depends on; error_if `> 10` is max 10."""
    (found,) = imported(result(SINGULAR, "fail", 12)).results
    assert (found.table, found.spec.column_attribute) == ("order_payments", None)
    assert found.spec.threshold == Threshold(max=10)


@pytest.mark.parametrize(("severity", "status", "expected"), [
    ("ERROR", "fail", ("fail", "critical")),
    ("warn", "warn", ("fail", "warning")),
    ("ERROR", "warn", ("fail", "warning")),  # crossed warn_if, not error_if: dbt warned
    ("ERROR", "pass", ("pass", "critical")),
])
def test_severity_and_status(severity: str, status: str, expected: tuple[str, str]) -> None:
    """error -> critical, warn -> warning; dbt's `warn` status is a failed warning."""
    manifest = {"nodes": {NOT_NULL: {**MANIFEST["nodes"][NOT_NULL],  # type: ignore[index]
                                     "config": {"severity": severity}}}}
    (found,) = imported(result(NOT_NULL, status, 1), manifest=manifest).results
    assert (found.status, found.severity) == expected


def test_an_errored_test_has_no_value_and_an_error_without_sql() -> None:
    """dbt's `error` is dqmon's: no value (up = 0), dbt's message up to the SQL excerpt."""
    message = ("Runtime Error in test x (tests/x.sql)\n  Binder Error: no column \"c\"\n"
               "  LINE 12: select c from t\n\n  more")
    (found,) = imported(result(SINGULAR, "error", None, message)).results
    assert (found.status, found.value) == ("error", None)
    assert found.error == 'Runtime Error in test x (tests/x.sql) Binder Error: no column "c"'


def test_a_skipped_test_did_not_run() -> None:
    """A skipped test is an error (it could not run), timed when dbt wrote the file."""
    (found,) = imported(result(NOT_NULL, "skipped", None)).results
    assert (found.status, found.started_at_s) == ("error", 120.0)
    assert found.error == "skipped by dbt (a node it depends on failed or errored)"


def test_without_a_manifest_the_unique_id_is_all_there_is() -> None:
    """No manifest: the test's name and project from its unique_id, dbt's defaults, a note."""
    outcome = imported(result(NOT_NULL, "fail", 2), manifest=None)
    (found,) = outcome.results
    assert (found.table, found.check, found.severity, found.spec.threshold) == (
        "shop", "not_null_orders_id", "critical", Threshold(max=0))
    assert found.spec.column_attribute is None
    assert len(outcome.notes) == 1 and outcome.notes[0].startswith("no --manifest")


def test_a_test_missing_from_the_manifest_is_named() -> None:
    """A test the manifest does not know falls back to its unique_id and is noted."""
    outcome = imported(result(NOT_NULL), result("test.shop.stray_test.abc"))
    assert by_check(outcome)["stray_test"].table == "shop"
    assert outcome.notes == ["1 test(s) not in the manifest (from another run?), published "
                             "under their dbt project: stray_test"]


def test_only_data_tests_become_results_sorted() -> None:
    """Models, seeds, hooks and unit tests are spans only; results sort by table and check."""
    outcome = imported(result("model.shop.orders", "success", None), result(SINGULAR),
                       result("unit_test.shop.orders.test_it", "fail"), result(NOT_NULL),
                       result(SOURCE_UNIQUE))
    assert [(r.table, r.check) for r in outcome.results] == [
        ("order_payments", "assert_no_negative_totals"), ("orders", "not_null_orders_id"),
        ("raw.payments", "source_unique_raw_payments_id")]
    assert len(outcome.spans) == 5


def test_a_run_without_tests_says_so() -> None:
    """A `dbt run` (no tests) publishes nothing but spans, and says so."""
    outcome = imported(result("model.shop.orders", "success", None))
    assert outcome.results == [] and outcome.notes[0].startswith("no data tests")


@pytest.mark.parametrize(("condition", "bound"), [
    ("!= 0", Threshold(max=0)), (">0", Threshold(max=0)), ("> 10", Threshold(max=10)),
    (">= 5", Threshold(max=4)), ("!= 3", Threshold()), ("< 2", Threshold()),
    ("= 0", Threshold())])
def test_threshold_from_error_if(condition: str, bound: Threshold) -> None:
    """A one-sided `error_if`/`warn_if` becomes the failures' max; anything else no bound."""
    assert dbt.threshold(condition) == bound


# --- spans -----------------------------------------------------------------------------------

def test_a_span_per_node() -> None:
    """Each node has a span `dbt.<type> <name>` with dbt's execute times and its outcome."""
    outcome = imported(result("model.shop.orders.v2", "success", None),
                       result(NOT_NULL, "fail", 3))
    model, test = outcome.spans
    assert (model.name, model.start_s, model.end_s, model.error) == (
        "dbt.model orders.v2", 100.0, 100.5, None)
    assert model.attributes == {"dq.warehouse": "dbt", "dbt.unique_id": "model.shop.orders.v2",
                                "dbt.resource_type": "model", "dbt.status": "success"}
    assert test.name == "dbt.test not_null_orders_id"
    assert test.attributes == {"dq.warehouse": "dbt", "dbt.unique_id": NOT_NULL,
                               "dbt.resource_type": "test", "dbt.status": "fail",
                               "dq.table": "orders", "dq.check": "not_null_orders_id",
                               "dbt.failures": 3}


def test_an_errored_node_has_an_error_span_and_a_skipped_one_none() -> None:
    """An errored node's span carries the error; a skipped one is a zero-length span."""
    errored, skipped = imported(result("model.shop.orders", "error", None, "Boom\n\nsql"),
                                result(NOT_NULL, "skipped", None)).spans
    assert errored.error == "Boom"
    assert (skipped.error, skipped.start_s, skipped.end_s) == (None, 120.0, 120.0)


# --- reading the files -----------------------------------------------------------------------

def write(tmp_path: Path, content: str) -> str:
    path = tmp_path / "run_results.json"
    path.write_text(content, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("content", "message"), [
    ("{\n  not json", ":2: not JSON: Expecting property name enclosed in double quotes"),
    ("[1, 2]", ": not a dbt run-results file (expected a JSON object)"),
    (json.dumps({"metadata": {"dbt_schema_version": MANIFEST_V12}}),
     f": not a dbt run-results file (its dbt_schema_version is {MANIFEST_V12})"),
])
def test_a_bad_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    """An unreadable or foreign file is a UsageError naming the file (and the line)."""
    path = write(tmp_path, content)
    with pytest.raises(UsageError) as raised:
        dbt.read_json(path, "run-results")
    assert str(raised.value) == path + message


def test_a_missing_file_is_named() -> None:
    """A path that does not exist is named as such."""
    with pytest.raises(UsageError, match=r"^/no/such/run_results.json: no such file$"):
        dbt.read_json("/no/such/run_results.json", "run-results")


@pytest.mark.parametrize(("doc", "message"), [
    ({}, "r.json: results: expected a list of node results"),
    ({"results": [1]}, "r.json: results[0]: expected an object"),
    ({"results": [{"status": "pass"}]}, "r.json: results[0].unique_id: missing"),
    ({"results": [{"unique_id": "x", "status": "pass"}]},
     "r.json: results[0].unique_id: 'x' is not a dbt unique_id"),
    ({"results": [{**result(NOT_NULL), "failures": "3"}]},
     "r.json: results[0].failures: unexpected value '3'"),
    ({"results": [{**result(NOT_NULL), "status": None}]}, "r.json: results[0].status: missing"),
])
def test_a_malformed_run_results_names_the_field(doc: dict[str, Any], message: str) -> None:
    """A document that is not shaped like run_results names the field at fault."""
    with pytest.raises(UsageError) as raised:
        dbt.parse_run_results(doc, "r.json", NOW_S)
    assert str(raised.value) == message


def test_a_manifest_without_nodes_is_refused() -> None:
    """A manifest needs its `nodes` object."""
    with pytest.raises(UsageError, match=r"^m.json: nodes: expected an object of dbt nodes$"):
        dbt.parse_manifest({"metadata": {}}, "m.json")
