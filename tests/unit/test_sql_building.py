"""SQL building without a database: one select per scope, quoting, and every dialect."""

from __future__ import annotations

import dataclasses
from zoneinfo import ZoneInfo

import pytest
from sqltext import DIALECTS, make_dialect, sql_text

from dqmon.checks import Scope, aggregate_query, uniqueness_query
from dqmon.checks.timeutil import parse_slice
from dqmon.config import AGGREGATE_KINDS, parse_config

CONFIG = """
version: 1
warehouses: {main: {url: "sqlite://"}}
tables:
  - name: orders
    table: Sales.Order Lines
    where: "status <> 'test'"
    partition: {column: Created At, granularity: day}
    checks:
      - freshness: {column: Created At, max_age: 2h}
      - row_count: {min: 1}
      - completeness: {columns: [order_id, Customer]}
      - validity: {name: positive, condition: "amount > 0"}
      - validity: {name: known, column: status, in: [paid, "it's"]}
      - validity: {name: email, column: email, regex: '^[^@]+@'}
      - validity: {name: range, column: amount, between: [0, 100]}
      - uniqueness: {columns: [order_id, Customer]}
"""





@pytest.fixture(scope="module")
def table():  # type: ignore[no-untyped-def]
    """The parsed `orders` table of CONFIG."""
    return parse_config(CONFIG, env={}).tables[0]


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_dialect_compiles_one_scan(table, name: str) -> None:  # type: ignore[no-untyped-def]
    """The aggregate checks compile, per dialect, into one SELECT over one FROM."""
    dialect = make_dialect(name)
    scope = Scope(table, dialect.name, ZoneInfo("UTC"), parse_slice("2026-11-20", "day"))
    aggregates = [c for c in table.checks if c.kind in AGGREGATE_KINDS]
    sql = sql_text(aggregate_query(scope, aggregates), dialect)
    assert sql.count("SELECT") == 1
    assert sql.count("FROM") == 1
    assert "2026-11-20 00:00:00" in sql and "2026-11-21 00:00:00" in sql
    # several key columns: a portable GROUP BY (no multi-column count(DISTINCT) in SQLite)
    unique = sql_text(uniqueness_query(scope, table.checks[-1]), dialect)
    assert "GROUP BY" in unique
    assert "COUNT(DISTINCT" not in unique.upper() and "SELECT DISTINCT" not in unique.upper()
    single = dataclasses.replace(table.checks[-1], columns=("order_id",))
    unique = sql_text(uniqueness_query(scope, single), dialect).upper()
    assert "COUNT(DISTINCT" in unique and "GROUP BY" not in unique


def test_identifiers_are_quoted_not_pasted(table) -> None:  # type: ignore[no-untyped-def]
    """Schema, table and column names from the file are quoted by the dialect."""
    dialect = make_dialect("postgresql")
    scope = Scope(table, "postgresql", ZoneInfo("UTC"), parse_slice("2026-11-20", "day"))
    sql = sql_text(aggregate_query(scope, table.checks[:4]), dialect)
    assert 'FROM "Sales"."Order Lines"' in sql
    assert 'max("Created At")' in sql
    assert 'count("Customer")' in sql
    assert "count(order_id)" in sql  # a plain lower-case name needs no quotes


def test_literals_are_bound_parameters(table) -> None:  # type: ignore[no-untyped-def]
    """Values from the file travel as parameters; the query text holds no literal values."""
    dialect = make_dialect("postgresql")
    scope = Scope(table, "postgresql", ZoneInfo("UTC"), parse_slice("2026-11-20", "day"))
    aggregates = [c for c in table.checks if c.kind in AGGREGATE_KINDS]
    text = sql_text(aggregate_query(scope, aggregates), dialect, literal=False)
    assert "paid" not in text and "it's" not in text and "2026" not in text
    assert "^[^@]+@" not in text
    literal = sql_text(aggregate_query(scope, aggregates), dialect)
    assert "'it''s'" in literal  # and quoted properly when rendered for --show-sql


@pytest.mark.parametrize(("name", "expected"), [
    ("postgresql", "~"), ("duckdb", "~"), ("mysql", "REGEXP"), ("sqlite", "REGEXP"),
    ("trino", "regexp_like("), ("snowflake", "regexp_instr("), ("bigquery", "REGEXP_CONTAINS("),
])
def test_regex_is_a_search_in_each_dialect(table, name: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    """Regex validity compiles to each dialect's partial-match operator."""
    dialect = make_dialect(name)
    scope = Scope(table, dialect.name, ZoneInfo("UTC"))
    email = next(c for c in table.checks if c.name == "email")
    assert expected in sql_text(aggregate_query(scope, [email]), dialect)


def test_sqlite_normalises_text_timestamps(table) -> None:  # type: ignore[no-untyped-def]
    """SQLite compares datetime(column) so ISO text with any offset falls in the right slice."""
    dialect = make_dialect("sqlite")
    scope = Scope(table, "sqlite", ZoneInfo("UTC"), parse_slice("2026-11-20T13", "hour"))
    sql = sql_text(aggregate_query(scope, table.checks[:1]), dialect)
    assert "datetime(\"Created At\") >= '2026-11-20 13:00:00'" in sql
    assert "datetime(\"Created At\") < '2026-11-20 14:00:00'" in sql
    assert "max(julianday(\"Created At\"))" in sql


def test_between_bounds_take_the_column_type(table) -> None:  # type: ignore[no-untyped-def]
    """Between bounds are numeric literals, not float8 parameters that cast every row."""
    dialect = make_dialect("postgresql")
    scope = Scope(table, "postgresql", ZoneInfo("UTC"))
    rng = next(c for c in table.checks if c.name == "range")
    text = sql_text(aggregate_query(scope, [rng]), dialect, literal=False)
    assert "amount BETWEEN 0 AND 100" in text
    half = dataclasses.replace(rng, params=rng.params.model_copy(update={"between": (0.5, 1e6)}))
    assert "amount BETWEEN 0.5 AND 1000000" in sql_text(
        aggregate_query(scope, [half]), dialect, literal=False)
