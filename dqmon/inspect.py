"""`validate --show-sql` and `validate --connect`: the SQL a config runs, and whether it can."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from dqmon import checks
from dqmon.config import AGGREGATE_KINDS, Config, TableSpec
from dqmon.errors import WarehouseError
from dqmon.scan import make_scope
from dqmon.warehouse import Warehouse


def table_queries(table: TableSpec,
                  warehouse: Warehouse) -> list[tuple[str, sa.ClauseElement]]:
    """Return (what it answers, query) for each statement a scan of `table` runs."""
    scope = make_scope(table, warehouse, None)
    aggregates = [c for c in table.checks if c.kind in AGGREGATE_KINDS]
    out: list[tuple[str, sa.ClauseElement]] = []
    if aggregates:
        names = ", ".join(c.name for c in aggregates)
        out.append((f"scan: {names}", checks.aggregate_query(scope, aggregates)))
    for spec in table.checks:
        if spec.kind == "uniqueness":
            out.append((spec.name, checks.uniqueness_query(scope, spec)))
        elif spec.kind == "custom":
            out.append((spec.name, checks.custom_query(spec)))
    return out


def show_sql_text(config: Config, warehouses: Mapping[str, Warehouse]) -> str:
    """Render every table's SQL in its warehouse's dialect, with literal values."""
    blocks = []
    for table in config.tables:
        warehouse = warehouses[table.warehouse]
        blocks.append(f"-- table {table.name} (warehouse {table.warehouse}, "
                      f"dialect {warehouse.dialect})")
        for label, query in table_queries(table, warehouse):
            blocks.append(f"-- {label}\n{warehouse.compile(query, literal=True).strip()};")
        if any(c.kind == "schema" for c in table.checks):
            blocks.append("-- schema: column types read through the dialect's inspector")
    return "\n".join(blocks)


def connect_problems(config: Config, warehouses: Mapping[str, Warehouse]) -> list[str]:
    """Connect to each warehouse; report missing tables and columns, or why it failed."""
    problems: list[str] = []
    for table in config.tables:
        warehouse = warehouses[table.warehouse]
        try:
            columns = warehouse.column_families(table.schema, table.table)
        except WarehouseError as exc:
            problems.append(f"{table.name}: warehouse {warehouse.name} "
                            f"({warehouse.masked_url}): {exc}")
            continue
        if columns is None:
            problems.append(f"{table.name}: table {_qualified(table)} not found")
            continue
        problems += [f"{table.name}: column {col!r} not found in {_qualified(table)}"
                     for col in sorted(_referenced_columns(table)) if col not in columns]
    return problems


def _qualified(table: TableSpec) -> str:
    return f"{table.schema}.{table.table}" if table.schema else table.table


def _referenced_columns(table: TableSpec) -> set[str]:
    cols = {c for spec in table.checks if spec.kind != "schema" for c in spec.columns}
    if table.partition is not None:
        cols.add(table.partition.column)
    return cols
