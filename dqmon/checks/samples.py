"""Diagnosis samples (SPEC 12): up to N offending rows of a failing check, for stdout only.

The query per kind is built here; `run-once --samples N` runs it after the scan through the
same read-only session as every check. Sample values are row data: they never go into a
`CheckResult`, a span, a metric or a log, only into what run-once prints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from dqmon.checks.reference import VALUE as REF_VALUE
from dqmon.checks.reference import target_values
from dqmon.checks.rules import valid_condition
from dqmon.checks.scope import Scope, raw_sql_condition
from dqmon.config.kinds import Validity
from dqmon.config.resolved import CheckSpec

SAMPLED_KINDS = frozenset({"completeness", "validity", "uniqueness", "reference"})
MAX_CHARS = 100  # every shown value is cut to this many characters
VALUE = "dq_value"


@dataclass(frozen=True)
class Sample:
    """One offending row: the table's key columns and the offending value."""

    key: Mapping[str, Any]
    value: Any

    def to_json(self) -> dict[str, Any]:
        """Return the sample as JSON-ready data."""
        return {"key": dict(self.key), "value": self.value}


def sample_query(scope: Scope, spec: CheckSpec, limit: int) -> sa.Select[Any]:
    """Build the query for up to `limit` offending rows of `spec` in `scope`."""
    if spec.kind == "uniqueness":
        return _duplicate_keys(scope, spec, limit)
    source, offending, value = _offending(scope, spec)
    keys: list[ColumnElement[Any]] = [sa.column(name).label(f"dq_key_{i}")
                                      for i, name in enumerate(scope.table.key)]
    values = [] if value is None else [value.label(VALUE)]
    own = [raw_sql_condition(spec.where)] if spec.where else []
    query = sa.select(*keys, *values).select_from(source)
    return query.where(*scope.conditions(), *own, offending).limit(limit)


Offending = tuple[sa.FromClause, ColumnElement[bool], ColumnElement[Any] | None]


def _offending(scope: Scope, spec: CheckSpec) -> Offending:
    """Return where to look, the condition an offending row meets, and the value to show."""
    if spec.kind == "completeness":
        return scope.source, sa.column(spec.columns[0]).is_(None), None
    if spec.kind == "reference":
        return _not_found(scope, spec)
    if spec.kind == "validity":
        assert isinstance(spec.params, Validity)
        # not true, as the scan counts it: a NULL rule result is invalid too
        invalid = sa.case((valid_condition(spec.params, scope.dialect, scope.tz), 0), else_=1) == 1
        if spec.params.column is None:
            return scope.source, invalid, None
        column: ColumnElement[Any] = sa.column(spec.params.column)
        return scope.source, sa.and_(column.is_not(None), invalid), column
    raise ValueError(f"{spec.kind} checks have no samples")


def _not_found(scope: Scope, spec: CheckSpec) -> Offending:
    """The scope LEFT JOIN the referenced values: rows whose value found no partner."""
    column: ColumnElement[Any] = sa.column(spec.columns[0])
    found = target_values(spec).subquery("dq_ref_to")
    source = scope.source.outerjoin(found, column == found.c[REF_VALUE])
    return source, sa.and_(column.is_not(None), found.c[REF_VALUE].is_(None)), column


def _duplicate_keys(scope: Scope, spec: CheckSpec, limit: int) -> sa.Select[Any]:
    """Return up to `limit` keys that occur more than once in the scope."""
    keys: list[ColumnElement[Any]] = [sa.column(name) for name in spec.columns]
    labelled = [key.label(f"{VALUE}_{i}") for i, key in enumerate(keys)]
    query = (sa.select(*labelled).select_from(scope.source)
             .where(*scope.conditions(), *(key.is_not(None) for key in keys))
             .group_by(*keys).having(sa.func.count() > 1))
    return query.limit(limit)


def samples_from_rows(spec: CheckSpec, key: Sequence[str],
                      rows: Sequence[Mapping[str, Any]]) -> list[Sample]:
    """Turn a sample query's rows into samples, every value cut to MAX_CHARS characters."""
    if spec.kind == "uniqueness":
        return [Sample({}, _duplicate(spec, row)) for row in rows]
    return [Sample({name: shown(row[f"dq_key_{i}"]) for i, name in enumerate(key)},
                   shown(row.get(VALUE))) for row in rows]


def _duplicate(spec: CheckSpec, row: Mapping[str, Any]) -> Any:
    """The duplicated key: its value, or {column: value} for a key of several columns."""
    values = {name: shown(row[f"{VALUE}_{i}"]) for i, name in enumerate(spec.columns)}
    return next(iter(values.values())) if len(values) == 1 else values


def shown(value: Any) -> Any:
    """Return a value as JSON can hold it: numbers and booleans as they are, the rest as text
    cut to MAX_CHARS characters (a cut value ends in an ellipsis)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and math.isfinite(value) and len(str(value)) <= MAX_CHARS:
        return value
    text = value.hex() if isinstance(value, bytes | bytearray | memoryview) else str(value)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"
