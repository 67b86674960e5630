"""Reference checks: the scope's values of a column found in another table's column (SPEC 8).

One query per check: the scope's non-null values LEFT JOIN the referenced column's distinct
values. Every engine runs it as a hash join (PostgreSQL: a Hash Right Join over a HashAggregate
of the referenced column), one pass over each table; the referenced table is not filtered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import TableClause

from dqmon.checks.aggregate import ratio
from dqmon.checks.scope import Scope
from dqmon.config.kinds import Reference
from dqmon.config.resolved import CheckSpec

VALUE = "dq_ref_value"  # the one column each side exposes: no clash with the scope's `where`


def reference_query(scope: Scope, spec: CheckSpec) -> sa.Select[Any]:
    """Count the scope's non-null values and those found in the referenced column."""
    column: ColumnElement[Any] = sa.column(params_of(spec).column)
    considered = (sa.select(column.label(VALUE)).select_from(scope.source)
                  .where(*scope.conditions(), column.is_not(None))
                  .subquery("dq_ref_scope"))
    found = target_values(spec).subquery("dq_ref_to")
    joined = considered.outerjoin(found, considered.c[VALUE] == found.c[VALUE])
    query = sa.select(sa.func.count(considered.c[VALUE]).label("considered"),
                      sa.func.count(found.c[VALUE]).label("found")).select_from(joined)
    return cast("sa.Select[Any]", query)


def target_values(spec: CheckSpec) -> sa.Select[Any]:
    """Return the referenced column's distinct non-null values, as column VALUE."""
    _, _, name = params_of(spec).target
    column: ColumnElement[Any] = sa.column(name)
    return (sa.select(column.label(VALUE)).select_from(target_table(spec))
            .where(column.is_not(None)).distinct())


def target_table(spec: CheckSpec) -> TableClause:
    """Return the referenced table, quoted by the dialect when compiled.

    Without a schema it is looked up as SQL looks up an unqualified name (the warehouse's
    default schema or search_path), like a monitored table without one.
    """
    schema, table, _ = params_of(spec).target
    return sa.table(table, schema=schema)


def params_of(spec: CheckSpec) -> Reference:
    """Return a reference check's parameters."""
    if not isinstance(spec.params, Reference):
        raise ValueError(f"{spec.name} is not a reference check")
    return spec.params


def evaluate_reference(row: Mapping[str, Any]) -> float:
    """Return found / considered values (1.0 when the scope has no non-null value)."""
    return ratio(row["found"], row["considered"])
