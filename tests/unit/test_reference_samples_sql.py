"""Reference and sample queries without a database: every dialect, quoting, value cutting."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqltext import DIALECTS, make_dialect, sql_text

from dqmon.checks.reference import reference_query
from dqmon.checks.samples import Sample, sample_query, samples_from_rows, shown
from dqmon.checks.scope import Scope
from dqmon.checks.timeutil import parse_slice
from dqmon.cli import render_json, render_text
from dqmon.config import TableSpec, parse_config
from dqmon.results import CheckResult

CONFIG = """
version: 1
warehouses: {main: {url: "sqlite://"}}
tables:
  - name: orders
    table: Sales.Order Lines
    where: "status <> 'test'"
    partition: {column: Created At, granularity: day}
    key: [Order Id, region]
    checks:
      - reference: {column: Customer Id, to: CRM.Customer List.Id}
      - completeness: {columns: [email], where: "region = 'EU'"}
      - validity: {name: known, column: status, in: [paid, "it's"]}
      - validity: {name: positive, condition: "amount > 0"}
      - uniqueness: {columns: [Order Id]}
      - uniqueness: {columns: [Order Id, region]}
"""




@pytest.fixture(scope="module")
def table() -> TableSpec:
    """The parsed `orders` table of CONFIG."""
    return parse_config(CONFIG, env={}).tables[0]


def _scope(table: TableSpec, dialect: str) -> Scope:
    return Scope(table, dialect, ZoneInfo("UTC"), parse_slice("2026-11-20", "day"))


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_reference_compiles_to_one_join_in_every_dialect(table: TableSpec, name: str) -> None:
    """One statement: the scoped values LEFT JOIN the referenced column's distinct values."""
    dialect = make_dialect(name)
    sql = sql_text(reference_query(_scope(table, dialect.name), table.checks[0]), dialect)
    assert sql.count("LEFT OUTER JOIN") == 1
    assert sql.upper().count("SELECT DISTINCT") == 1
    assert "2026-11-20 00:00:00" in sql and "2026-11-21 00:00:00" in sql
    assert "status <> 'test'" in sql


def test_reference_identifiers_are_quoted(table: TableSpec) -> None:
    """Both tables' schema, name and column are quoted by the dialect, never pasted."""
    dialect = make_dialect("postgresql")
    sql = sql_text(reference_query(_scope(table, "postgresql"), table.checks[0]), dialect)
    assert 'FROM "Sales"."Order Lines"' in sql
    assert 'FROM "CRM"."Customer List"' in sql
    assert '"Customer Id" AS dq_ref_value' in sql and '"Id" AS dq_ref_value' in sql
    # the referenced table is not filtered: only the referencing side has the scope
    referenced = sql[sql.index('"CRM"'):]
    assert "status" not in referenced and "2026" not in referenced


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_sample_queries_compile_with_a_limit_in_every_dialect(table: TableSpec,
                                                              name: str) -> None:
    """Every sampled kind compiles per dialect, in the scope, with the row limit."""
    dialect = make_dialect(name)
    for spec in table.checks:
        sql = sql_text(sample_query(_scope(table, dialect.name), spec, 3), dialect)
        assert "3" in sql.split("LIMIT")[-1] or "TOP 3" in sql or "FETCH FIRST 3" in sql, sql
        assert "status <> 'test'" in sql
        assert "2026-11-20 00:00:00" in sql


def test_sample_conditions_per_kind(table: TableSpec) -> None:
    """Offending rows: NULL, not found, a column rule not true, a condition not true, a
    key seen more than once; keys by the table's `key:` columns."""
    dialect = make_dialect("postgresql")
    sql = {spec.name: sql_text(sample_query(_scope(table, "postgresql"), spec, 3), dialect)
           for spec in table.checks}
    key = 'SELECT "Order Id" AS dq_key_0, region AS dq_key_1'
    assert sql["completeness_email"].startswith(key + " \nFROM")
    assert "email IS NULL" in sql["completeness_email"]
    assert "(region = 'EU')" in sql["completeness_email"]  # the check's own where
    assert "dq_ref_to.dq_ref_value IS NULL" in sql["reference_Customer Id"]
    assert ("status IS NOT NULL AND CASE WHEN (status IN ('paid', 'it''s')) THEN 0 ELSE 1 END = 1"
            in sql["known"])
    assert "CASE WHEN (amount > 0) THEN 0 ELSE 1 END = 1" in sql["positive"]
    assert "dq_value" not in sql["positive"]  # a condition has no value to show
    assert 'GROUP BY "Order Id", region \nHAVING count(*) > 1' in sql["uniqueness_Order Id_region"]


def test_rows_become_samples_cut_at_100_characters(table: TableSpec) -> None:
    """Keys by name, values JSON-ready; long text cut to 100 characters ending in an ellipsis."""
    known = table.checks[2]
    rows = [{"dq_key_0": 7, "dq_key_1": "EU", "dq_value": "x" * 150}]
    [sample] = samples_from_rows(known, table.key, rows)
    assert sample.key == {"Order Id": 7, "region": "EU"}
    assert sample.value == "x" * 99 + "…" and len(sample.value) == 100
    pair = table.checks[5]
    assert samples_from_rows(pair, table.key, [{"dq_value_0": 3, "dq_value_1": "EU"}]) == [
        Sample({}, {"Order Id": 3, "region": "EU"})]
    assert samples_from_rows(table.checks[4], table.key, [{"dq_value_0": 3}]) == [Sample({}, 3)]


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), (True, True), (3, 3), (2.5, 2.5), (float("nan"), "nan"),
    (Decimal("12.50"), "12.50"), (datetime(2026, 11, 20, 13), "2026-11-20 13:00:00"),
    (b"\x00\xff", "00ff"), (10 ** 120, "1" + "0" * 98 + "…"),
])
def test_shown_values_are_strict_json(value: object, expected: object) -> None:
    """Numbers stay numbers; everything else (and non-finite floats) becomes text."""
    assert shown(value) == expected
    json.dumps(shown(value), allow_nan=False)


def _result(table: TableSpec, index: int, segment: str | None = None) -> CheckResult:
    return CheckResult(table.checks[index], "main", None, 0.5, "fail", 0.01, 0.0,
                       segment=segment)


def test_text_shows_segments_and_samples_under_their_check(table: TableSpec) -> None:
    """A segment reads `check [column=value]`; samples follow their check, one row a line."""
    results = [_result(table, 2), _result(table, 2, "DE")]
    samples = {("orders", "known"): [Sample({"Order Id": 7, "region": "EU"}, "lost")],
               ("orders", "positive"): "permission denied"}
    lines = render_text(results, samples, {"orders": "country"}).splitlines()
    assert lines[2].startswith("orders  known [country=DE]  0.5000")
    assert lines[3:6] == ["samples: orders (known): 1 offending row(s)",
                          '  Order Id=7, region="EU": "lost"',
                          "samples: orders (positive): not taken: permission denied"]


def test_json_puts_samples_on_the_whole_scope_result_and_names_the_segment(
        table: TableSpec) -> None:
    """"samples" sits on the check's whole-scope result; a segment's result says "segment"."""
    results = [_result(table, 2), _result(table, 2, "DE"), _result(table, 3)]
    samples = {("orders", "known"): [Sample({"Order Id": 7, "region": "EU"}, "lost")],
               ("orders", "positive"): "permission denied"}
    whole, segment, positive = json.loads(render_json(results, samples))["results"]
    assert whole["samples"] == [{"key": {"Order Id": 7, "region": "EU"}, "value": "lost"}]
    assert "segment" not in whole
    assert (segment["segment"], "samples" in segment) == ("DE", False)
    assert segment["attributes"]["dq.segment"] == "DE"
    assert (positive["samples"], positive["samples_error"]) == ([], "permission denied")
    assert "samples" not in json.loads(render_json(results))["results"][0]


@pytest.mark.parametrize("name", ["postgresql", "mysql", "sqlite", "duckdb"])
def test_a_reference_target_cannot_carry_sql(name: str) -> None:
    """`to:` is three identifiers: a statement hidden in one stays inside its quotes."""
    hostile = parse_config(CONFIG.replace("to: CRM.Customer List.Id",
                                          'to: "crm.x; drop table victim; --.id"'), env={})
    dialect = make_dialect(name)
    table = hostile.tables[0]
    sql = sql_text(reference_query(_scope(table, dialect.name), table.checks[0]), dialect)
    quote = "`" if name == "mysql" else '"'
    assert f"{quote}x; drop table victim; --{quote}" in sql
    assert sql.count(";") == 2  # both inside that one quoted name
