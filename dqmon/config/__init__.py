"""Load checks.yaml into a frozen `Config`, or raise `ConfigError` listing every problem."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from dqmon.config.loader import Document, Path, load_document
from dqmon.config.models import KINDS, CheckEntry, Completeness, ConfigFile, Table, Validity
from dqmon.config.resolved import (
    AGGREGATE_KINDS,
    METRICS,
    CheckSpec,
    Config,
    TableSpec,
    Threshold,
)
from dqmon.config.types import Schedule, parse_duration, parse_schedule
from dqmon.errors import ConfigError, Problem

__all__ = [
    "AGGREGATE_KINDS", "METRICS", "CheckSpec", "Config", "ConfigError", "Schedule", "TableSpec",
    "Threshold", "default_config_path", "load_config", "parse_config", "parse_duration",
    "parse_schedule",
]


def default_config_path(env: Mapping[str, str] | None = None) -> str:
    """Return $DQMON_CONFIG, else ./checks.yaml."""
    env = os.environ if env is None else env
    return env.get("DQMON_CONFIG") or "checks.yaml"


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path`."""
    name = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(name, 1, "", f"cannot read the file: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(name, 1, "", "the file is not UTF-8 text")]) from None
    return parse_config(text, name, env)


def parse_config(text: str, file: str = "checks.yaml",
                 env: Mapping[str, str] | None = None) -> Config:
    """Validate YAML text; every problem found is reported in one `ConfigError`."""
    doc = load_document(text, file, os.environ if env is None else env)
    if doc.problems and doc.data is None:
        raise ConfigError(doc.problems)
    if not isinstance(doc.data, dict):
        raise ConfigError([*doc.problems, doc.problem((), "the top level must be a mapping")])
    problems = list(doc.problems)
    parsed: ConfigFile | None = None
    try:
        parsed = ConfigFile.model_validate(doc.data)
    except ValidationError as exc:
        problems += _located(exc, doc)
    problems += _check_references(*_parts(parsed, doc.data), doc)
    if problems or parsed is None:
        raise ConfigError(problems)
    return _resolve(parsed, file)


def _parts(parsed: ConfigFile | None, data: dict[str, Any]) -> tuple[list[Table | None], set[str]]:
    """Return the tables and warehouse names to cross-check, even from a partly broken file."""
    if parsed is not None:
        return list(parsed.tables), set(parsed.warehouses)
    warehouses = data.get("warehouses")
    raw_tables = data.get("tables")
    tables = [_try_table(raw) for raw in raw_tables] if isinstance(raw_tables, list) else []
    return tables, set(map(str, warehouses)) if isinstance(warehouses, dict) else set()


def _try_table(raw: object) -> Table | None:
    try:
        return Table.model_validate(raw)
    except ValidationError:
        return None


# --- pydantic errors with places -------------------------------------------------------------

_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required",
    "literal_error": None,  # pydantic's "Input should be 'a' or 'b'" reads well enough
}


def _located(exc: ValidationError, doc: Document) -> list[Problem]:
    problems: dict[str, Problem] = {}
    for error in exc.errors():
        path = _data_path(error["loc"], doc.data)
        message = _MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden" and path and isinstance(path[-1], str):
            message = f"unknown key '{path[-1]}'"
            if len(path) >= 3 and path[-3] == "checks":
                message = f"unknown check kind '{path[-1]}' (expected one of {', '.join(KINDS)})"
        problem = doc.problem(path, message)
        problems.setdefault(problem.path, problem)  # a union reports one place several times
    return list(problems.values())


def _data_path(loc: tuple[int | str, ...], data: Any) -> Path:
    """Keep the parts of a pydantic location that exist in the data (drop union tags)."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and (part in node or last):
            path.append(part)
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(part)
            node = node[part]
    return tuple(path)


# --- cross-references ------------------------------------------------------------------------

def _check_references(tables: list[Table | None], warehouses: set[str],
                      doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    seen_tables: set[str] = set()
    for i, table in enumerate(tables):
        if table is None:
            continue
        here: Path = ("tables", i)
        problems += _check_warehouse(warehouses, table, here, doc)
        if table.name in seen_tables:
            problems.append(doc.problem((*here, "name"), f"duplicate table name '{table.name}'"))
        seen_tables.add(table.name)
        if table.where is not None:
            problems += _check_sql(table.where, (*here, "where"), doc)
        problems += _check_checks(table, here, doc)
    return problems


def _check_warehouse(warehouses: set[str], table: Table, here: Path,
                     doc: Document) -> list[Problem]:
    if table.warehouse is None and len(warehouses) > 1:
        names = ", ".join(sorted(warehouses))
        return [doc.problem(here, f"name a warehouse: there are several ({names})")]
    if table.warehouse is not None and warehouses and table.warehouse not in warehouses:
        return [doc.problem((*here, "warehouse"), f"unknown warehouse '{table.warehouse}'")]
    return []


def _check_checks(table: Table, here: Path, doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    names: set[str] = set()
    for j, entry in enumerate(table.checks):
        at: Path = (*here, "checks", j, entry.kind)
        params = entry.params
        if isinstance(params, Completeness) and params.name and len(params.columns) > 1:
            problems.append(doc.problem((*at, "name"),
                                        "a named completeness check lists exactly one column"))
        if isinstance(params, Validity) and params.condition is not None:
            problems += _check_sql(params.condition, (*at, "condition"), doc)
        if entry.kind == "custom":
            problems += _check_sql(getattr(params, "sql", ""), (*at, "sql"), doc)
        for name in _names(entry):
            if name in names:
                problems.append(doc.problem((*at, "name") if params.name else at,
                                            f"duplicate check name '{name}' in table "
                                            f"'{table.name}'"))
            names.add(name)
    return problems


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$|--[^\n]*|/\*.*?\*/",
                     re.DOTALL)


def _check_sql(sql: str, path: Path, doc: Document) -> list[Problem]:
    """Reject a second statement: config SQL is one expression or one query (SPEC section 6)."""
    bare = _QUOTED.sub(" ", sql).strip().rstrip(";")
    if ";" in bare:
        return [doc.problem(path, "must be a single SQL statement (found ';')")]
    return []


# --- resolution --------------------------------------------------------------------------------

def _names(entry: CheckEntry) -> list[str]:
    """Return the check names an entry produces (completeness: one per column)."""
    params = entry.params
    if params.name:
        return [params.name]
    if isinstance(params, Completeness):
        return [f"completeness_{c}" for c in params.columns]
    if entry.kind == "uniqueness":
        return ["uniqueness_" + "_".join(getattr(params, "columns", []))]
    return [entry.kind]


def _resolve(cfg: ConfigFile, file: str) -> Config:
    only_warehouse = next(iter(cfg.warehouses))
    tables = []
    for table in cfg.tables:
        schema, _, name = (table.table or table.name).rpartition(".")
        severity = table.severity or cfg.defaults.severity
        checks = tuple(spec for entry in table.checks for spec in _specs(table.name, entry, severity))
        tables.append(TableSpec(
            name=table.name,
            warehouse=table.warehouse or only_warehouse,
            schema=schema or None,
            table=name,
            where=table.where,
            partition=table.partition,
            schedule=table.schedule or cfg.defaults.schedule,
            checks=checks,
        ))
    return Config(file=file, warehouses=dict(cfg.warehouses), tables=tuple(tables),
                  default_schedule=cfg.defaults.schedule)


def _specs(table: str, entry: CheckEntry, default_severity: Any) -> list[CheckSpec]:
    params = entry.params
    severity = params.severity or default_severity
    kind = entry.kind
    names = _names(entry)
    if isinstance(params, Completeness):
        return [CheckSpec(table, name, kind, severity, Threshold(min=params.min_ratio), params,
                          (column,)) for name, column in zip(names, params.columns, strict=True)]
    return [CheckSpec(table, names[0], kind, severity, _threshold(entry), params,
                      _columns(entry))]


def _threshold(entry: CheckEntry) -> Threshold:
    p: Any = entry.params
    if entry.kind == "freshness":
        return Threshold(max=p.max_age)
    if entry.kind in ("row_count", "custom"):
        return Threshold(min=p.min, max=p.max)
    if entry.kind == "schema":
        return Threshold(max=0)
    return Threshold(min=p.min_ratio)


def _columns(entry: CheckEntry) -> tuple[str, ...]:
    p: Any = entry.params
    if entry.kind == "freshness" or (entry.kind == "validity" and p.column):
        return (p.column,)
    if entry.kind == "uniqueness":
        return tuple(p.columns)
    return ()


assert set(KINDS) == set(METRICS)
