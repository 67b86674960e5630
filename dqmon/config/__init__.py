"""Load checks.yaml into a frozen `Config`, or raise `ConfigError` listing every problem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from dqmon.config.kinds import KINDS, CheckEntry, Completeness
from dqmon.config.loader import load_document
from dqmon.config.messages import located
from dqmon.config.models import ConfigFile, Discover, Table
from dqmon.config.references import check_references
from dqmon.config.resolved import (
    AGGREGATE_KINDS,
    CHECK_METRICS,
    METRICS,
    CheckSpec,
    Config,
    TableSpec,
    Threshold,
)
from dqmon.config.secrets import collect, leaks
from dqmon.config.types import Schedule, Severity, parse_duration, parse_schedule
from dqmon.errors import ConfigError, Problem

__all__ = [
    "AGGREGATE_KINDS", "CHECK_METRICS", "METRICS", "CheckSpec", "Config", "ConfigError",
    "Discover", "discovered_table",
    "Schedule", "TableSpec", "Threshold", "default_config_path", "load_config", "parse_config",
    "parse_duration", "parse_schedule",
]


TOP_LEVEL = "the top level must be a mapping with version, warehouses and tables"


def default_config_path(env: Mapping[str, str] | None = None) -> str:
    """Return $DQMON_CONFIG, else ./checks.yaml."""
    env = os.environ if env is None else env
    return env.get("DQMON_CONFIG") or "checks.yaml"


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path`."""
    name = str(path)
    try:
        raw = FsPath(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([Problem(name, 1, "", f"cannot read the file: {reason}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        message = f"the file is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x})"
        raise ConfigError([Problem(name, line, "", message)]) from None
    return parse_config(text, name, env)


def parse_config(text: str, file: str = "checks.yaml",
                 env: Mapping[str, str] | None = None) -> Config:
    """Validate YAML text; every problem found is reported in one `ConfigError`."""
    doc = load_document(text, file, os.environ if env is None else env)
    if doc.problems and doc.data is None:
        raise ConfigError(doc.problems)
    if not isinstance(doc.data, dict):
        raise ConfigError([*doc.problems, doc.problem((), TOP_LEVEL)])
    secrets = collect(doc)
    problems = [*doc.problems, *leaks(doc, secrets)]
    parsed: ConfigFile | None = None
    try:
        parsed = ConfigFile.model_validate(doc.data)
    except ValidationError as exc:
        problems += located(exc, doc)
    problems += check_references(doc)
    if problems or parsed is None:
        raise ConfigError(problems)
    return _resolve(parsed, file, frozenset(secrets))


# --- resolution --------------------------------------------------------------------------------

def _resolve(cfg: ConfigFile, file: str, secrets: frozenset[str]) -> Config:
    tables = tuple(_table_spec(table, cfg) for table in cfg.tables)
    discover = tuple(_discover_defaults(d, cfg) for d in cfg.discover)
    return Config(file=file, warehouses=dict(cfg.warehouses), tables=tables, secrets=secrets,
                  discover=discover, naming=cfg.naming)


def _discover_defaults(discover: Discover, cfg: ConfigFile) -> Discover:
    """Fill in the warehouse, schedule and severity a discover block leaves to the defaults."""
    return discover.model_copy(update={
        "warehouse": discover.warehouse or next(iter(cfg.warehouses)),
        "schedule": discover.schedule or cfg.defaults.schedule,
        "severity": discover.severity or cfg.defaults.severity})


def discovered_table(discover: Discover, schema: str, table: str) -> TableSpec:
    """Return the monitored table a discover block makes of `schema.table` (SPEC 9)."""
    name = f"{schema}.{table}"
    assert discover.warehouse is not None and discover.schedule is not None
    severity = discover.severity or "critical"
    return TableSpec(name=name, warehouse=discover.warehouse, schema=schema, table=table,
                     where=None, partition=None, schedule=discover.schedule,
                     checks=tuple(s for entry in discover.checks
                                  for s in _specs(name, entry, severity)))


def _table_spec(table: Table, cfg: ConfigFile) -> TableSpec:
    """Fill in a table's defaults: warehouse, [schema.]table, schedule and severities."""
    schema, _, name = (table.table or table.name).rpartition(".")
    severity = table.severity or cfg.defaults.severity
    return TableSpec(
        name=table.name,
        warehouse=table.warehouse or next(iter(cfg.warehouses)),
        schema=schema or None,
        table=name,
        where=table.where,
        partition=table.partition,
        schedule=table.schedule or cfg.defaults.schedule,
        checks=tuple(s for entry in table.checks for s in _specs(table.name, entry, severity)),
        segment_by=table.segment_by,
        key=tuple(table.key),
        samples=table.samples,
    )


def _specs(table: str, entry: CheckEntry, default_severity: Severity) -> list[CheckSpec]:
    params = entry.params
    severity = params.severity or default_severity
    kind = entry.kind
    names = entry.names
    if isinstance(params, Completeness):
        threshold = Threshold(min=params.min_ratio, max=params.max_ratio)
        return [CheckSpec(table, name, kind, severity, threshold, params, (column,))
                for name, column in zip(names, params.columns, strict=True)]
    return [CheckSpec(table, names[0], kind, severity, _threshold(entry), params,
                      _columns(entry))]


def _threshold(entry: CheckEntry) -> Threshold:
    p: Any = entry.params
    if entry.kind == "freshness":
        return Threshold(max=p.max_age)
    if entry.kind in ("row_count", "custom", "volume", "statistic"):
        return Threshold(min=p.min, max=p.max)
    if entry.kind in ("schema", "schema_change"):
        return Threshold(max=0)
    return Threshold(min=p.min_ratio, max=p.max_ratio)


def _columns(entry: CheckEntry) -> tuple[str, ...]:
    p: Any = entry.params
    if entry.kind in ("freshness", "validity", "statistic", "reference") and p.column:
        return (p.column,)
    if entry.kind == "uniqueness":
        return tuple(p.columns)
    return ()


assert set(KINDS) == set(METRICS)
