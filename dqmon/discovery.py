"""Which tables a `discover:` block monitors (SPEC section 9).

One catalog query per warehouse and schema lists the tables; `include` and `exclude` globs
pick among them; a table also listed under `tables:` keeps its own entry only. Discovered
tables are ordinary `TableSpec`s named `schema.table`, so scans, telemetry and rules need no
special case.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping, Sequence

from dqmon.catalog import catalog_of, default_schema
from dqmon.config import Config, Discover, TableSpec, discovered_table
from dqmon.errors import WarehouseError
from dqmon.logs import get_logger
from dqmon.warehouse import Warehouse

log = get_logger(__name__)


def matches(name: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Tell whether a table name matches an include glob and no exclude glob."""
    return (any(fnmatch.fnmatchcase(name, g) for g in include)
            and not any(fnmatch.fnmatchcase(name, g) for g in exclude))


def discover(config: Config, warehouses: Mapping[str, Warehouse],
             previous: Sequence[TableSpec] = ()) -> list[TableSpec]:
    """List every discovered table; a schema that cannot be read keeps its `previous` tables."""
    listed = {_identity(t, warehouses[t.warehouse]) for t in config.tables}
    found: dict[str, TableSpec] = {}
    for block in config.discover:
        for table in _block_tables(block, warehouses[block.warehouse or ""], previous):
            if _identity(table, warehouses[table.warehouse]) not in listed:
                found.setdefault(table.name, table)
    return list(found.values())


def with_discovered(config: Config, warehouses: Mapping[str, Warehouse],
                    previous: Sequence[TableSpec] = ()) -> Config:
    """Return the config with its discovered tables added after the listed ones."""
    if not config.discover:
        return config
    found = discover(config, warehouses, previous)
    return dataclasses.replace(config, tables=(*config.tables, *found))


def _block_tables(block: Discover, warehouse: Warehouse,
                  previous: Sequence[TableSpec]) -> list[TableSpec]:
    tables: list[TableSpec] = []
    for schema in block.schemas:
        try:
            names = catalog_of(warehouse).list_tables(schema)
        except WarehouseError as exc:
            log.warning("discovery failed; tables found before in it stay", schema=schema,
                        warehouse=warehouse.name, error=str(exc))
            tables += [t for t in previous if (t.warehouse, t.schema) == (block.warehouse, schema)]
            continue
        tables += [discovered_table(block, schema, name) for name in names
                   if matches(name, block.include, block.exclude)]
    return tables


def _identity(table: TableSpec, warehouse: Warehouse) -> tuple[str, str, str]:
    return (table.warehouse, table.schema or default_schema(warehouse), table.table)
