"""Checks across fields: warehouse references, unique names, single-statement SQL.

They read the raw data, not the validated model, so that a file with a typo in one check
still gets its duplicate names and unknown warehouses reported in the same run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dqmon.config.loader import Document, Path
from dqmon.config.models import CheckEntry, Completeness, Custom, Validity
from dqmon.errors import Problem

_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$|--[^\n]*|/\*.*?\*/",
                     re.DOTALL)


@dataclass(frozen=True)
class _TableView:
    """What a raw table item says, as far as it says it validly."""

    at: Path
    name: str | None
    warehouse: str | None
    where: str | None
    checks: list[tuple[int, CheckEntry]]


def check_references(doc: Document) -> list[Problem]:
    """Return the problems that span fields: references, duplicates, SQL statements."""
    data: dict[str, Any] = doc.data
    raw = data.get("warehouses")
    warehouses = sorted(raw) if isinstance(raw, dict) else []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for table in _tables(data):
        problems += _check_warehouse(table, warehouses, doc)
        if table.name is not None:
            problems += _check_unique(table.name, (*table.at, "name"), first_line, doc,
                                      f"duplicate table name '{table.name}'")
        if table.where is not None:
            problems += check_sql(table.where, (*table.at, "where"), doc)
        problems += _check_checks(table, doc)
    return problems


def check_sql(sql: str, path: Path, doc: Document) -> list[Problem]:
    """Reject a second statement: config SQL is one expression or one query (SPEC section 6)."""
    bare = _QUOTED.sub(" ", sql).strip().rstrip(";")
    if ";" in bare:
        return [doc.problem(path, "must be a single SQL statement (found ';')")]
    return []


def _tables(data: dict[str, Any]) -> list[_TableView]:
    raw = data.get("tables")
    if not isinstance(raw, list):
        return []
    return [_view(("tables", i), item) for i, item in enumerate(raw) if isinstance(item, dict)]


def _view(at: Path, raw: dict[str, Any]) -> _TableView:
    checks = raw.get("checks")
    entries = [(j, entry) for j, item in enumerate(checks) if (entry := _entry(item)) is not None] \
        if isinstance(checks, list) else []
    return _TableView(at, _text(raw.get("name")), _text(raw.get("warehouse")),
                      _text(raw.get("where")), entries)


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
        problems += _check_params(entry, at, doc)
        for name in entry.names:
            where = (*at, "name") if entry.params.name else at
            problems += _check_unique(name, where, first_line, doc,
                                      f"duplicate check name '{name}' in table '{table.name}'")
    return problems


def _check_params(entry: CheckEntry, at: Path, doc: Document) -> list[Problem]:
    params = entry.params
    if isinstance(params, Completeness) and params.name and len(params.columns) > 1:
        return [doc.problem((*at, "name"), "a named completeness check must list exactly one "
                                           f"column (this one lists {len(params.columns)})")]
    if isinstance(params, Validity) and params.condition is not None:
        return check_sql(params.condition, (*at, "condition"), doc)
    if isinstance(params, Custom):
        return check_sql(params.sql, (*at, "sql"), doc)
    return []
