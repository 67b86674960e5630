"""Checks across fields: warehouse references, unique names, and config SQL per dialect.

They read the raw data, not the validated model, so that a file with a typo in one check
still gets its duplicate names and unknown warehouses reported in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dqmon.config.kinds import PERCENTILES, CheckEntry, Completeness, Custom, Statistic, Validity
from dqmon.config.loader import Document, Path
from dqmon.config.urls import parse_url
from dqmon.errors import Problem


@dataclass(frozen=True)
class _TableView:
    """What a raw table item says, as far as it says it validly."""

    at: Path
    name: str | None
    warehouse: str | None
    where: str | None
    checks: list[tuple[int, CheckEntry]]
    backend: str = ""  # the warehouse's dialect when its URL parses, else generic SQL


def check_references(doc: Document) -> list[Problem]:
    """Return the problems that span fields: references, duplicates, SQL statements."""
    data: dict[str, Any] = doc.data
    raw = data.get("warehouses")
    warehouses = sorted(raw) if isinstance(raw, dict) else []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for table in _tables(data, _backends(raw)):
        problems += _check_warehouse(table, warehouses, doc)
        if table.name is not None:
            problems += _check_unique(table.name, (*table.at, "name"), first_line, doc,
                                      f"duplicate table name '{table.name}'")
        if table.where is not None:
            problems += check_sql(table.where, (*table.at, "where"), doc, table.backend)
        problems += _check_checks(table, doc)
    return problems + _check_discover(data, warehouses, doc)


def _check_discover(data: dict[str, Any], warehouses: list[str], doc: Document) -> list[Problem]:
    """Discover blocks: their warehouse exists, their check templates are sound (SPEC 9)."""
    raw = data.get("discover")
    backends = _backends(data.get("warehouses"))
    problems: list[Problem] = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(item, dict):
            view = _view(("discover", i), {**item, "name": f"discover[{i}]"}, backends)
            problems += _check_warehouse(view, warehouses, doc) + _check_checks(view, doc)
    return problems


def check_sql(sql: str, path: Path, doc: Document, backend: str, *,
              query: bool = False) -> list[Problem]:
    """Parse config SQL in its warehouse's dialect: one expression, or one SELECT (SPEC 6)."""
    # Imported here: a file without SQL text never loads sqlglot (issue 11, 50 ms).
    from dqmon.config.sql_guard import UnsafeSql, check_condition, check_query

    try:
        (check_query if query else check_condition)(sql, backend)
    except UnsafeSql as exc:
        return [doc.problem(path, str(exc))]
    return []


def _backends(raw: object) -> dict[str, str]:
    """Return each warehouse's dialect name, for those whose URL parses."""
    out: dict[str, str] = {}
    for name, settings in (raw.items() if isinstance(raw, dict) else []):
        url = settings.get("url") if isinstance(settings, dict) else None
        try:
            out[str(name)] = parse_url(url).get_backend_name() if isinstance(url, str) else ""
        except ValueError:
            out[str(name)] = ""
    return out


def _tables(data: dict[str, Any], backends: dict[str, str]) -> list[_TableView]:
    raw = data.get("tables")
    if not isinstance(raw, list):
        return []
    return [_view(("tables", i), item, backends) for i, item in enumerate(raw)
            if isinstance(item, dict)]


def _view(at: Path, raw: dict[str, Any], backends: dict[str, str]) -> _TableView:
    checks = raw.get("checks")
    entries = [(j, entry) for j, item in enumerate(checks) if (entry := _entry(item)) is not None] \
        if isinstance(checks, list) else []
    warehouse = _text(raw.get("warehouse"))
    sole = next(iter(backends.values())) if len(backends) == 1 else ""
    backend = backends.get(warehouse, "") if warehouse else sole
    return _TableView(at, _text(raw.get("name")), warehouse, _text(raw.get("where")), entries,
                      backend)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _entry(raw: object) -> CheckEntry | None:
    try:
        return CheckEntry.model_validate(raw)
    except ValidationError:
        return None  # its own problems come from the validation of the whole file


def _check_warehouse(table: _TableView, warehouses: list[str], doc: Document) -> list[Problem]:
    if not warehouses:
        return []  # no warehouse at all is reported at `warehouses`
    if table.warehouse is None and len(warehouses) > 1:
        return [doc.problem(table.at,
                            f"name a warehouse: there are several ({', '.join(warehouses)})")]
    if table.warehouse is not None and table.warehouse not in warehouses:
        return [doc.problem((*table.at, "warehouse"), f"unknown warehouse '{table.warehouse}' "
                                                      f"(defined: {', '.join(warehouses)})")]
    return []


def _check_unique(name: str, path: Path, first_line: dict[str, int], doc: Document,
                  message: str) -> list[Problem]:
    """Remember where `name` first appeared; a second appearance is a problem."""
    if name in first_line:
        return [doc.problem(path, f"{message} (first at line {first_line[name]})")]
    first_line[name] = doc.line_of(path)
    return []


def _check_checks(table: _TableView, doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for j, entry in table.checks:
        at: Path = (*table.at, "checks", j, entry.kind)
        problems += _check_params(entry, at, doc, table.backend)
        for name in entry.names:
            where = (*at, "name") if entry.params.name else at
            problems += _check_unique(name, where, first_line, doc,
                                      f"duplicate check name '{name}' in table '{table.name}'")
    return problems


def _check_params(entry: CheckEntry, at: Path, doc: Document, backend: str) -> list[Problem]:
    where: str | None = getattr(entry.params, "where", None)
    problems = check_sql(where, (*at, "where"), doc, backend) if where else []
    return problems + _check_kind(entry, at, doc, backend)


def _check_kind(entry: CheckEntry, at: Path, doc: Document, backend: str) -> list[Problem]:
    params = entry.params
    if isinstance(params, Statistic) and params.stat in PERCENTILES \
            and backend in _NO_PERCENTILE:
        return [doc.problem((*at, "stat"), f"{_NO_PERCENTILE[backend]} has no percentile "
                                           "function: use min, max, avg or a custom check")]
    if isinstance(params, Completeness) and params.name and len(params.columns) > 1:
        return [doc.problem((*at, "name"), "a named completeness check must list exactly one "
                                           f"column (this one lists {len(params.columns)})")]
    if isinstance(params, Validity) and params.condition is not None:
        return check_sql(params.condition, (*at, "condition"), doc, backend)
    if isinstance(params, Custom):
        return check_sql(params.sql, (*at, "sql"), doc, backend, query=True)
    return _check_catalog(entry, at, doc, backend)


# Dialects without a continuous percentile function (SPEC 8): `validate` refuses p50..p99.
_NO_PERCENTILE = {"sqlite": "SQLite", "mysql": "MySQL/MariaDB"}

# What a warehouse's catalog cannot tell (SPEC 9): SQLite records no change time, Trino's
# information_schema holds no row counts or change times.
_NO_CATALOG = {("sqlite", "freshness"): "SQLite records no change time: give freshness a column",
               ("trino", "freshness"): "Trino's catalog records no change time",
               ("trino", "volume"): "Trino's catalog holds no row counts: use row_count"}


def _check_catalog(entry: CheckEntry, at: Path, doc: Document, backend: str) -> list[Problem]:
    source = getattr(entry.params, "source", "metadata")
    reason = _NO_CATALOG.get((backend, entry.kind)) if source == "metadata" else None
    return [doc.problem(at, reason)] if reason else []
