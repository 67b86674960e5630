"""The catalog's answers per warehouse and schema, shared by every table of the schema.

SPEC section 9: one catalog query per warehouse and schema answers the metadata checks of all
its tables. Each table's run asks for the schema's snapshot; the first ask in a schedule
period runs the query, the others read its answer. Between snapshots the catalog remembers
what it saw (change tokens, columns), which metadata freshness and schema_change compare with.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dqmon.checks.metadata import (
    Observed,
    TableMetadata,
    catalog_query,
    observe,
    parse_rows,
    schema_changes,
)
from dqmon.config.resolved import TableSpec
from dqmon.warehouse import Warehouse


@dataclass(frozen=True)
class TableLook:
    """One table in one snapshot: the catalog's answer, what dqmon observed, and the columns
    this table's previous run saw (None at its first run)."""

    metadata: TableMetadata
    seen: Observed
    columns_before: Mapping[str, str] | None

    def changes(self) -> dict[str, list[str]]:
        """Return the columns added, removed and retyped since this table's previous run."""
        if self.columns_before is None:
            return {}
        return schema_changes(self.columns_before, self.metadata.columns)


@dataclass(frozen=True)
class Snapshot:
    """Every table of a schema as the catalog answered at `taken_s`, and what was observed."""

    taken_s: float
    tables: dict[str, tuple[TableMetadata, Observed]]


@dataclass
class _Schema:
    lock: threading.Lock = field(default_factory=threading.Lock)
    snapshot: Snapshot | None = None
    observed: dict[str, Observed] = field(default_factory=dict)
    tables: set[str] = field(default_factory=set)  # SQLite counts these (no catalog counts)
    read: dict[str, Mapping[str, str]] = field(default_factory=dict)  # columns each table saw
    queries: int = 0


class Catalog:
    """A warehouse's catalog snapshots, one per schema, refreshed at most once per max age."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._schemas: dict[str, _Schema] = {}
        self._lock = threading.Lock()

    def register(self, schema: str, tables: Iterable[str]) -> None:
        """Say which tables of `schema` are monitored (SQLite's query counts exactly these)."""
        self._schema(schema).tables.update(tables)

    def look(self, schema: str, table: str, max_age_s: float, now_s: float) -> TableLook | None:
        """Return `table` in its schema's snapshot (None when the catalog does not list it).

        The snapshot is queried again when older than max_age_s; a table it did not ask about
        forces a new one on SQLite, whose query counts the registered tables only.
        """
        state = self._schema(schema)
        with state.lock:  # the tables of a schema wait for one query, not one each
            unknown = table not in state.tables and self.warehouse.dialect == "sqlite"
            state.tables.add(table)
            if state.snapshot is None or unknown or now_s - state.snapshot.taken_s >= max_age_s:
                state.snapshot = self._take(schema, state, now_s)
            found = state.snapshot.tables.get(table)
            if found is None:
                return None
            metadata, seen = found
            before = state.read.get(table)
            state.read[table] = metadata.columns
            return TableLook(metadata, seen, before)

    def queries(self, schema: str) -> int:
        """Return how many catalog queries `schema` has cost so far."""
        return self._schema(schema).queries

    def list_tables(self, schema: str) -> list[str]:
        """Return the tables the catalog lists in `schema` (discovery: one query per schema)."""
        query = catalog_query(self.warehouse.dialect, schema, counts=False)
        return sorted(parse_rows(self.warehouse.fetch_mappings(query), self.warehouse.tz))

    def _schema(self, schema: str) -> _Schema:
        with self._lock:
            return self._schemas.setdefault(schema, _Schema())

    def _take(self, schema: str, state: _Schema, now_s: float) -> Snapshot:
        query = catalog_query(self.warehouse.dialect, schema, sorted(state.tables))
        rows = self.warehouse.fetch_mappings(query)
        state.queries += 1
        tables: dict[str, tuple[TableMetadata, Observed]] = {}
        for name, metadata in parse_rows(rows, self.warehouse.tz).items():
            seen = observe(state.observed.get(name), metadata, now_s)
            state.observed[name] = seen
            tables[name] = (metadata, seen)
        return Snapshot(now_s, tables)


_CATALOGS: weakref.WeakKeyDictionary[Warehouse, Catalog] = weakref.WeakKeyDictionary()
_CATALOGS_LOCK = threading.Lock()


def catalog_of(warehouse: Warehouse) -> Catalog:
    """Return the warehouse's catalog (one per Warehouse object, kept while it lives)."""
    with _CATALOGS_LOCK:
        found = _CATALOGS.get(warehouse)
        if found is None:
            found = _CATALOGS[warehouse] = Catalog(warehouse)
        return found


def register_tables(tables: Iterable[TableSpec], warehouses: Mapping[str, Warehouse]) -> None:
    """Tell each warehouse's catalog which tables have metadata checks, before any snapshot."""
    for table in tables:
        if any(spec.metadata for spec in table.checks):
            warehouse = warehouses[table.warehouse]
            catalog_of(warehouse).register(table.schema or default_schema(warehouse),
                                           [table.table])


def default_schema(warehouse: Warehouse) -> str:
    """Return the schema a table without one lives in, per dialect."""
    return {"postgresql": "public", "sqlite": "main", "duckdb": "main"}.get(
        warehouse.dialect, warehouse.url.database or "")
