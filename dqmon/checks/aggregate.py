"""Freshness, row count, completeness and validity: one select per scope."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from dqmon.checks.scope import Scope, raw_sql_condition
from dqmon.checks.timeutil import age_seconds
from dqmon.config.models import Validity
from dqmon.config.resolved import CheckSpec

ROWS = "dq_rows"
NOW = "dq_now"


def aggregate_query(scope: Scope, specs: Sequence[CheckSpec]) -> sa.Select[Any]:
    """Build the ONE select that answers every aggregate check of `scope`."""
    columns: dict[str, ColumnElement[Any]] = {ROWS: sa.func.count()}
    for i, spec in enumerate(specs):
        columns.update(_expressions(scope, spec, f"c{i}"))
    if any(s.kind == "freshness" for s in specs):
        columns[NOW] = _now(scope.dialect)
    query = sa.select(*(expr.label(name) for name, expr in columns.items()))
    return query.select_from(scope.source).where(*scope.conditions())


def evaluate_aggregate(scope: Scope, specs: Sequence[CheckSpec],
                       row: Mapping[str, Any]) -> list[float]:
    """Turn the scan's one row into each check's value, in the order of `specs`."""
    rows = int(row[ROWS] or 0)
    return [_value(scope, spec, f"c{i}", row, rows) for i, spec in enumerate(specs)]


def _expressions(scope: Scope, spec: CheckSpec, key: str) -> dict[str, ColumnElement[Any]]:
    if spec.kind == "freshness":
        col: ColumnElement[Any] = sa.column(spec.columns[0])
        latest = sa.func.julianday(col) if scope.dialect == "sqlite" else col
        return {f"{key}_latest": sa.func.max(latest)}
    if spec.kind == "completeness":
        return {f"{key}_filled": sa.func.count(sa.column(spec.columns[0]))}
    if spec.kind == "validity":
        assert isinstance(spec.params, Validity)
        # CASE gives NULL for invalid rows, and count() skips NULLs
        valid = sa.case((_valid(spec.params, scope.dialect), 1))
        column = spec.params.column
        considered = sa.func.count(sa.column(column)) if column else sa.func.count()
        return {f"{key}_valid": sa.func.count(valid), f"{key}_considered": considered}
    return {}  # row_count is the scan's own count(*)


def _valid(rule: Validity, dialect: str) -> ColumnElement[bool]:
    if rule.condition is not None:
        return raw_sql_condition(rule.condition)
    col: ColumnElement[Any] = sa.column(rule.column or "")
    if rule.in_ is not None:
        return col.in_(rule.in_)
    if rule.regex is not None:
        return regex_search(sa.cast(col, sa.String()), rule.regex, dialect)
    assert rule.between is not None
    return col.between(number(rule.between[0]), number(rule.between[1]))


def number(value: float) -> ColumnElement[Any]:
    """A finite number from the config as an untyped SQL literal.

    A bound float travels as float8 and makes PostgreSQL cast every numeric row to float
    (2.3x slower on `amount BETWEEN`); a literal takes the column's type. Validated config
    numbers only, never text: nothing can be injected.
    """
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return sa.literal_column(str(int(value)) if value.is_integer() else repr(value))


def regex_search(text: ColumnElement[Any], pattern: str, dialect: str) -> ColumnElement[bool]:
    """True when `pattern` matches anywhere in `text` (a search, as PostgreSQL's `~`)."""
    if dialect == "trino":  # SQLAlchemy's trino dialect has no regexp_match
        return sa.func.regexp_like(text, pattern)
    if dialect == "snowflake":  # Snowflake's REGEXP/RLIKE match the whole string
        return sa.func.regexp_instr(text, pattern) > 0
    return text.regexp_match(pattern)


def _now(dialect: str) -> ColumnElement[Any]:
    """The warehouse's clock, in UTC (SQLite: a julian day number)."""
    if dialect == "sqlite":
        return sa.func.julianday("now")
    return sa.func.current_timestamp()


def _value(scope: Scope, spec: CheckSpec, key: str, row: Mapping[str, Any], rows: int) -> float:
    if spec.kind == "freshness":
        return age_seconds(row[f"{key}_latest"], row[NOW], scope.tz)
    if spec.kind == "row_count":
        return float(rows)
    if spec.kind == "completeness":
        return ratio(row[f"{key}_filled"], rows)
    if spec.kind == "validity":
        return ratio(row[f"{key}_valid"], row[f"{key}_considered"])
    raise ValueError(f"{spec.kind} is not an aggregate check")


def ratio(part: object, whole: object) -> float:
    """Return part/whole, and 1.0 for an empty whole (nothing to fault: SPEC section 2)."""
    whole_n = int(whole or 0)  # type: ignore[call-overload]
    if whole_n == 0:
        return 1.0
    part_n = int(part or 0)  # type: ignore[call-overload]
    return float(part_n / whole_n)


