"""A scope: the rows of one table after `where` and the partition window (SPEC section 2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import TableClause

from dqmon.checks.timeutil import Slice
from dqmon.config.resolved import TableSpec

# The partition bounds are named parameters: a statement compiled once per table takes each
# run's slice by these names (issue 9, dqmon.warehouse.Statement).
START, END = "dq_slice_start", "dq_slice_end"


@dataclass(frozen=True)
class Scope:
    """What one scan of a table covers, for one dialect."""

    table: TableSpec
    dialect: str
    tz: tzinfo
    slice: Slice | None = None

    @property
    def source(self) -> TableClause:
        """Return the table, its schema and name quoted by the dialect when compiled."""
        return sa.table(self.table.table, schema=self.table.schema)

    def conditions(self) -> list[ColumnElement[bool]]:
        """Return the `where` and partition predicates that define the scope."""
        out: list[ColumnElement[bool]] = []
        if self.table.where:
            out.append(raw_sql_condition(self.table.where))
        if self.slice is not None and self.table.partition is not None:
            col = self.timestamp_text(sa.column(self.table.partition.column))
            bounds = self.params()
            out += [col >= sa.bindparam(START, bounds[START]),
                    col < sa.bindparam(END, bounds[END])]
        return out

    def params(self) -> dict[str, Any]:
        """Return this scope's own values of the bound parameters (the slice's bounds)."""
        if self.slice is None or self.table.partition is None:
            return {}
        return {START: self._bound(self.slice.start), END: self._bound(self.slice.end)}

    def timestamp_text(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        """In SQLite, normalise ISO-8601 text (any offset) so it compares as UTC text."""
        return sa.func.datetime(col) if self.dialect == "sqlite" else col

    def _bound(self, moment: Any) -> Any:
        # Naive wall-clock bounds in the warehouse's zone: the session's time zone is set
        # to that zone (warehouse.py), so timestamp and timestamptz columns both compare right.
        return moment.strftime("%Y-%m-%d %H:%M:%S") if self.dialect == "sqlite" else moment


def raw_sql_condition(sql: str) -> ColumnElement[bool]:
    """Wrap config-owner SQL (where, condition) as a parenthesised boolean expression."""
    # untyped: SQLite would otherwise add "= 1"; the newline ends a trailing `--` comment
    return sa.literal_column(f"({sql}\n)" if "--" in sql else f"({sql})")
