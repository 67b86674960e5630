"""`validate --show-sql` and `validate --connect`: the SQL a config runs, and whether it can."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from dqmon import checks
from dqmon.catalog import default_schema
from dqmon.checks.metadata import catalog_query
from dqmon.checks.reference import reference_query
from dqmon.checks.statistics import statistic_query
from dqmon.config import CheckSpec, Config, TableSpec
from dqmon.errors import WarehouseError
from dqmon.scan import make_scope
from dqmon.warehouse import Warehouse


def table_queries(table: TableSpec,
                  warehouse: Warehouse) -> list[tuple[str, sa.ClauseElement]]:
    """Return (what it answers, query) for each statement a scan of `table` runs."""
    scope = make_scope(table, warehouse, None)
    aggregates = [c for c in table.checks if c.scanned]
    out: list[tuple[str, sa.ClauseElement]] = []
    if aggregates:
        names = ", ".join(c.name for c in aggregates)
        out.append((f"scan: {names}", checks.aggregate_query(scope, aggregates)))
    out += [(spec.name, query) for spec in table.checks
            if (query := _own_query(scope, spec)) is not None]
    metadata = [c.name for c in table.checks if c.metadata]
    if metadata:
        schema = table.schema or default_schema(warehouse)
        query = catalog_query(warehouse.dialect, schema, [table.table])
        out.append((f"catalog, once per schema: {', '.join(metadata)}", query))
    return out


def _own_query(scope: checks.Scope, spec: CheckSpec) -> sa.ClauseElement | None:
    """Return the statement a check runs on its own, or None (scanned, schema, metadata)."""
    if spec.kind == "uniqueness":
        return checks.uniqueness_query(scope, spec)
    if spec.kind == "custom":
        return checks.custom_query(spec)
    if spec.kind == "reference":
        return reference_query(scope, spec)
    if spec.kind == "statistic" and not spec.scanned:
        return statistic_query(scope, spec)
    return None


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
    """Connect to each warehouse; report why it failed, or missing tables and columns."""
    used = {t.warehouse for t in config.tables}
    failed = {name: problem for name in sorted(used)
              if (problem := _connect(warehouses[name])) is not None}
    problems = list(failed.values())
    for table in config.tables:
        if table.warehouse not in failed:
            problems += _table_problems(table, warehouses[table.warehouse])
    return problems


def role_warnings(warehouses: Mapping[str, Warehouse]) -> list[str]:
    """Say which connected roles can write to tables (dqmon works, but need not)."""
    return [f"warning: warehouse {w.name}: role {w.role.role!r} can write to tables; "
            "a read-only role is safer (docs/security.md)"
            for w in warehouses.values() if w.role is not None and w.role.can_write]


def _connect(warehouse: Warehouse) -> str | None:
    """Connect once (the role check runs then); return the problem, if any."""
    try:
        warehouse.ping()
    except WarehouseError as exc:
        return f"warehouse {warehouse.name} ({warehouse.masked_url}): {exc}"
    return None


def _table_problems(table: TableSpec, warehouse: Warehouse) -> list[str]:
    try:
        columns = warehouse.column_families(table.schema, table.table)
    except WarehouseError as exc:
        return [f"{table.name}: warehouse {warehouse.name} ({warehouse.masked_url}): {exc}"]
    if columns is None:
        return [f"{table.name}: table {_qualified(table)} not found"]
    return [f"{table.name}: column {col!r} not found in {_qualified(table)}"
            for col in sorted(_referenced_columns(table)) if col not in columns]


def _qualified(table: TableSpec) -> str:
    return f"{table.schema}.{table.table}" if table.schema else table.table


def _referenced_columns(table: TableSpec) -> set[str]:
    cols = {c for spec in table.checks if spec.kind != "schema" for c in spec.columns}
    cols.update(table.key)
    if table.partition is not None:
        cols.add(table.partition.column)
    if table.segment_by is not None:
        cols.add(table.segment_by.column)
    return cols
