"""The table's one aggregate scan: every scanned check's partials in ONE select (SPEC 2, 8).

Freshness, row count, completeness, validity and the scanned statistics each add their
partial aggregates (`partials.Input`); a check's own `where` becomes CASE WHEN inside them
(conditional aggregation, never another query). With `segment_by` the same select groups by
the segment column; the groups' partials then give each published segment and, combined,
the whole scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from dqmon.checks import partials, segments
from dqmon.checks.partials import NOW, ROWS, Input, Partials, ratio
from dqmon.checks.rules import number, regex_search, valid_condition
from dqmon.checks.scope import Scope, raw_sql_condition
from dqmon.config.kinds import Validity
from dqmon.config.resolved import CheckSpec

__all__ = ["ScanAnswer", "aggregate_query", "evaluate_aggregate", "number", "ratio",
           "read_scan", "regex_search"]

SEGMENT = "dq_segment"  # the label of the segment column in a grouped scan
_NAMES = {ROWS: "dq_rows", NOW: "dq_now"}


@dataclass(frozen=True)
class ScanAnswer:
    """What the scan's rows say: each check's partials, whole and per published segment."""

    rows: int  # rows in scope
    whole: list[Partials]  # per check, in the order of the specs
    segments: list[tuple[str, list[Partials]]]  # largest first, __other__ last


def aggregate_query(scope: Scope, specs: Sequence[CheckSpec]) -> sa.Select[Any]:
    """Build the ONE select that answers every scanned check of `scope` (and its segments)."""
    columns = [_expression(inp, scope, specs).label(name)
               for inp, name in _layout(scope.dialect, specs)[0].items()]
    segment_by = scope.table.segment_by
    if segment_by is not None:
        segment: ColumnElement[Any] = sa.column(segment_by.column)
        columns.append(segment.label(SEGMENT))
    query = sa.select(*columns).select_from(scope.source).where(*scope.conditions())
    return query.group_by(segment) if segment_by is not None else query


def read_scan(scope: Scope, specs: Sequence[CheckSpec],
              rows: Sequence[Mapping[str, Any]]) -> ScanAnswer:
    """Split the scan's rows (one per segment group, or the one row) into checks' partials."""
    names, roles = _layout(scope.dialect, specs)
    groups = [[partials.read(spec, {role: row[names[inp]] for role, inp in wanted.items()})
               for spec, wanted in zip(specs, roles, strict=True)] for row in rows]
    counts = [int(row[_NAMES[ROWS]] or 0) for row in rows]
    whole = _combined(specs, groups, range(len(groups)))
    if scope.table.segment_by is None:
        return ScanAnswer(sum(counts), whole, [])
    published = segments.publish([row[SEGMENT] for row in rows], counts,
                                 scope.table.segment_by.max_segments)
    return ScanAnswer(sum(counts), whole,
                      [(s.label, _combined(specs, groups, s.groups)) for s in published])


def evaluate_aggregate(scope: Scope, specs: Sequence[CheckSpec],
                       rows: Sequence[Mapping[str, Any]]) -> list[float | None]:
    """Return each check's whole-scope value from the scan's rows, in the order of `specs`."""
    answer = read_scan(scope, specs, rows)
    return [partials.finalize(spec, p, scope.tz) for spec, p in zip(specs, answer.whole,
                                                                     strict=True)]


def _combined(specs: Sequence[CheckSpec], groups: Sequence[Sequence[Partials]],
              indices: Sequence[int]) -> list[Partials]:
    return [partials.combine(spec, [groups[g][i] for g in indices])
            for i, spec in enumerate(specs)]


Layout = tuple[dict[Input, str], list[dict[str, Input]]]


def _layout(dialect: str, specs: Sequence[CheckSpec]) -> Layout:
    """Name each distinct input once (equal inputs share a column); say which each check reads.

    Built from the specs alone, without SQL: the statement is compiled once per table, the
    layout is recomputed per run to read its rows.
    """
    names: dict[Input, str] = {ROWS: _NAMES[ROWS]}
    roles = [partials.inputs(spec, i, dialect) for i, spec in enumerate(specs)]
    for wanted in roles:
        for inp in wanted.values():
            names.setdefault(inp, _NAMES.get(inp) or f"p{len(names)}_{inp.fn}")
    return names, roles


def _expression(inp: Input, scope: Scope, specs: Sequence[CheckSpec]) -> ColumnElement[Any]:
    """Return the SQL aggregate of one input."""
    if inp.fn == "now":  # grouped: an aggregate, as every engine accepts beside GROUP BY
        now = _now(scope.dialect)
        return now if scope.table.segment_by is None else sa.func.max(now)
    if inp.fn == "valid":
        assert inp.rule is not None
        rule = specs[inp.rule].params
        assert isinstance(rule, Validity)
        return sa.func.count(_when(inp.where, sa.literal_column("1"),
                                   valid_condition(rule, scope.dialect, scope.tz)))
    if inp.fn == "count" and inp.column is None:  # rows: count(*), or count(CASE ... 1)
        return sa.func.count() if inp.where is None else sa.func.count(
            _when(inp.where, sa.literal_column("1")))
    value = _when(inp.where, _value(inp, scope.dialect))
    return _AGGREGATES[inp.fn](value, scope.dialect)


def _value(inp: Input, dialect: str) -> ColumnElement[Any]:
    """Return what an input aggregates: the column, its length, or its julian day (SQLite)."""
    col: ColumnElement[Any] = sa.column(inp.column or "")
    if inp.length:
        text = sa.cast(col, sa.String())
        return sa.func.char_length(text) if dialect in _CHAR_LENGTH else sa.func.length(text)
    if inp.fn == "latest" and dialect == "sqlite":
        return sa.func.julianday(col)
    return col


# char_length counts characters where `length` may count bytes (PostgreSQL bytea, MySQL);
# SQLite, Trino, Snowflake and BigQuery spell it `length` and count characters of text.
_CHAR_LENGTH = frozenset({"postgresql", "duckdb", "mysql", "mariadb"})


def _when(where: str | None, value: ColumnElement[Any],
          condition: ColumnElement[bool] | None = None) -> ColumnElement[Any]:
    """Return `value` where the check's `where` (and `condition`) hold, else NULL."""
    conditions = [c for c in (raw_sql_condition(where) if where else None, condition)
                  if c is not None]
    if not conditions:
        return value
    return sa.case((sa.and_(*conditions) if len(conditions) > 1 else conditions[0], value))


def _var(value: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    if dialect in ("mysql", "mariadb"):
        # MariaDB rounds var_samp of a DECIMAL to its scale + 4 places; a double keeps them
        value = value * sa.literal_column("1e0")
    return sa.func.var_samp(value)


_AGGREGATES: dict[str, Callable[[ColumnElement[Any], str], ColumnElement[Any]]] = {
    "count": lambda v, _d: sa.func.count(v),
    "sum": lambda v, _d: sa.func.sum(v),
    "min": lambda v, _d: sa.func.min(v),
    "max": lambda v, _d: sa.func.max(v),
    "latest": lambda v, _d: sa.func.max(v),
    "sumsq": lambda v, _d: sa.func.total(v * v),  # SQLite: total() never overflows
    "var": _var,
}


def _now(dialect: str) -> ColumnElement[Any]:
    """The warehouse's clock, in UTC (SQLite: a julian day number)."""
    if dialect == "sqlite":
        return sa.func.julianday("now")
    return sa.func.current_timestamp()

