"""Uniqueness, schema and custom checks: one query each."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from dqmon.checks.aggregate import ratio
from dqmon.checks.scope import Scope
from dqmon.config.kinds import Custom, Schema
from dqmon.config.resolved import CheckSpec


def uniqueness_query(scope: Scope, spec: CheckSpec) -> sa.Select[Any]:
    """Count distinct keys and rows with a full key, in one pass over the scope.

    One column: count(DISTINCT k), which every engine runs well (on PostgreSQL 4-5x faster
    than grouping). Several columns: a GROUP BY, the portable spelling (SQLite and others
    have no multi-column count(DISTINCT)).
    """
    keys: list[ColumnElement[Any]] = [sa.column(c) for c in spec.columns]
    if len(keys) == 1:
        query = (sa.select(sa.func.count(sa.distinct(keys[0])).label("distinct_keys"),
                           sa.func.count(keys[0]).label("keyed_rows"))
                 .select_from(scope.source).where(*scope.conditions()))
        return cast("sa.Select[Any]", query)
    groups = (sa.select(sa.func.count().label("n"))
              .select_from(scope.source)
              .where(*scope.conditions(), *(k.is_not(None) for k in keys))
              .group_by(*keys)
              .subquery("dq_keys"))
    query = sa.select(sa.func.count().label("distinct_keys"),
                      sa.func.sum(groups.c.n).label("keyed_rows"))
    return cast("sa.Select[Any]", query)


def evaluate_uniqueness(row: Mapping[str, Any]) -> float:
    """Return distinct keys / keyed rows (1.0 when no row has a full key)."""
    return ratio(row["distinct_keys"], row["keyed_rows"])


def custom_query(spec: CheckSpec) -> sa.TextClause:
    """Return the owner's SQL as given (it runs in a read-only session)."""
    assert isinstance(spec.params, Custom)
    return sa.text(spec.params.sql)


def evaluate_custom(rows: list[tuple[Any, ...]]) -> float:
    """Return the single number a custom query produced."""
    if len(rows) != 1 or len(rows[0]) != 1:
        shape = f"{len(rows)} row(s) of {len(rows[0]) if rows else 0} column(s)"
        raise ValueError(f"a custom query must return one row with one column, got {shape}")
    value = rows[0][0]
    if value is None:
        raise ValueError("the custom query returned NULL")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the custom query returned a non-number: {value!r}") from None
    if math.isnan(number):
        raise ValueError("the custom query returned NaN")
    return number


_FAMILIES: list[tuple[type[TypeEngine[Any]], str]] = [
    (sa.Boolean, "boolean"),
    (sa.Integer, "integer"),
    (sa.Numeric, "numeric"),
    (sa.Float, "numeric"),
    (sa.DateTime, "timestamp"),
    (sa.Date, "date"),
    (sa.JSON, "json"),
    (sa.String, "text"),  # Text, Enum, Unicode are Strings
]


def type_family(column_type: TypeEngine[Any]) -> str:
    """Map a reflected column type to its family (SPEC section 2)."""
    for base, family in _FAMILIES:
        if isinstance(column_type, base):
            return family
    name = type(column_type).__name__.upper()
    if "JSON" in name:
        return "json"
    if "TIMESTAMP" in name:
        return "timestamp"
    return "other"


_NAMED_FAMILIES = [  # substrings of SQL type names, most specific first
    ("TIMESTAMP", "timestamp"), ("DATETIME", "timestamp"), ("BOOL", "boolean"),
    ("BIGINT", "integer"), ("SMALLINT", "integer"), ("TINYINT", "integer"), ("HUGEINT", "integer"),
    ("INT", "integer"), ("DECIMAL", "numeric"), ("NUMERIC", "numeric"), ("DOUBLE", "numeric"),
    ("FLOAT", "numeric"), ("REAL", "numeric"), ("DATE", "date"), ("JSON", "json"),
    ("CHAR", "text"), ("TEXT", "text"), ("STRING", "text"), ("UUID", "other"),
]


def type_family_from_name(type_name: str) -> str:
    """Map a type name from information_schema (e.g. DECIMAL(10,2)) to its family."""
    upper = type_name.upper()
    return next((family for key, family in _NAMED_FAMILIES if key in upper), "other")


def evaluate_schema(spec: CheckSpec,
                    actual: Mapping[str, str]) -> tuple[float, dict[str, Any]]:
    """Count expected columns missing or of another family (and, with `allow_extra: false`,
    the table's columns the file does not list); name them in details (SPEC 8)."""
    assert isinstance(spec.params, Schema)
    expected = spec.params.columns
    by_lower = {name.lower(): name for name in actual}
    found = {column: column if column in actual else by_lower.get(column.lower())
             for column in expected}  # the table's name of each listed column, or None
    missing = [column for column, name in found.items() if name is None]
    mismatched = {column: {"expected": expected[column], "actual": actual[name]}
                  for column, name in found.items()
                  if name is not None and actual[name] != expected[column]}
    listed = {name for name in found.values() if name is not None}
    extra = [] if spec.params.allow_extra else [c for c in actual if c not in listed]
    details = {"missing": missing, "extra": extra, "mismatched": mismatched}
    return float(len(missing) + len(mismatched) + len(extra)), details
