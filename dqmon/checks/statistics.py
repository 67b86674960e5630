"""distinct_count and the percentiles: one query each, outside the table's scan (SPEC 8).

count(DISTINCT ...) keeps PostgreSQL from a parallel aggregate (PITFALLS.md) and a percentile
sorts the column: both would slow the one scan, as uniqueness would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from dqmon.checks.partials import statistic_number
from dqmon.checks.rules import number
from dqmon.checks.scope import Scope, raw_sql_condition
from dqmon.config.kinds import PERCENTILES
from dqmon.config.resolved import CheckSpec

VALUE = "dq_value"


def statistic_query(scope: Scope, spec: CheckSpec) -> sa.Select[Any]:
    """Build the query of a statistic outside the scan, over the scope and the check's where."""
    col: ColumnElement[Any] = sa.column(spec.columns[0])
    own = [raw_sql_condition(spec.where)] if spec.where else []
    if spec.stat == "distinct_count":
        value: ColumnElement[Any] = sa.func.count(sa.distinct(col))
    else:
        value = percentile(col, PERCENTILES[spec.stat or ""], scope.dialect)
    query = (sa.select(value.label(VALUE)).select_from(scope.source)
             .where(*scope.conditions(), *own))
    percentile_rows = scope.dialect == "bigquery" and spec.stat != "distinct_count"
    return query.limit(1) if percentile_rows else query


def percentile(col: ColumnElement[Any], q: float, dialect: str) -> ColumnElement[Any]:
    """Return the continuous percentile `q` of the column's non-null values, per dialect."""
    if dialect in ("sqlite", "mysql", "mariadb"):  # `validate` refuses these (exit 2)
        raise ValueError(f"{dialect} has no percentile function")
    if dialect == "bigquery":  # analytic only: the same value on every row, LIMIT 1
        return sa.func.percentile_cont(col, number(q)).over()
    if dialect == "trino":  # Trino has only the approximate (t-digest) percentile
        return sa.func.approx_percentile(col, number(q))
    return sa.func.percentile_cont(number(q)).within_group(col)


def evaluate_statistic(spec: CheckSpec, rows: Sequence[Mapping[str, Any]]) -> float | None:
    """Return the statistic: 0 distinct values, or no percentile (None), for an empty scope."""
    value = rows[0][VALUE] if rows else None  # BigQuery's analytic form: no row, no value
    if value is None:
        return 0.0 if spec.stat == "distinct_count" else None
    return statistic_number(spec, value)
