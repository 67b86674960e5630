"""The frozen config the rest of dqmon runs on: tables with fully named checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from dqmon.config.kinds import Anomaly, CheckParams, Statistic
from dqmon.config.models import Discover, Partition, SegmentBy, Warehouse
from dqmon.config.types import Schedule, Severity

METRICS = {
    "freshness": "dq.freshness_seconds",
    "row_count": "dq.row_count",
    "completeness": "dq.completeness_ratio",
    "validity": "dq.validity_ratio",
    "uniqueness": "dq.uniqueness_ratio",
    "schema": "dq.schema_mismatches",
    "custom": "dq.custom_value",
    # metadata monitors (SPEC 9): volume shares dq.row_count, told apart by dq.source
    "volume": "dq.row_count",
    "schema_change": "dq.schema_changes",
    # SPEC 8
    "statistic": "dq.statistic_value",
    "reference": "dq.reference_ratio",
}

# The OTel names of the dq.check.* status gauges (SPEC section 3); units stay in the names.
CHECK_METRICS = {
    "passed": "dq.check.passed",
    "up": "dq.check.up",
    "duration": "dq.check.duration_seconds",
    "last_run": "dq.check.last_run_timestamp_seconds",
    "threshold": "dq.check.threshold",
}

# The OTel names of the gauges about dqmon itself (issue 9): here, beside the others, so that
# rules can alert on them without importing telemetry.
MONITOR_METRICS = {
    "series": "dq.monitor.series",
    "overflow": "dq.monitor.overflow",
}

# Checks computed together by the one scan of a table scope (SPEC sections 2 and 8; a
# statistic only for the SCAN_STATS).
AGGREGATE_KINDS = frozenset({"freshness", "row_count", "completeness", "validity", "statistic"})
# Checks answered by the catalog, one query per warehouse and schema (SPEC section 9).
METADATA_KINDS = frozenset({"volume", "schema_change"})


@dataclass(frozen=True)
class Threshold:
    """The configured bounds of a check, in its value's unit."""

    min: float | None = None
    max: float | None = None

    def passes(self, value: float) -> bool:
        """Tell whether `value` lies within the bounds (inclusive)."""
        if value != value:  # NaN never passes
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def as_dict(self) -> dict[str, float]:
        """Return the bounds that are set, as {"min": x, "max": y}."""
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


@dataclass(frozen=True)
class CheckSpec:
    """One named check of one table, with everything needed to run and report it."""

    table: str
    name: str
    kind: str
    severity: Severity
    threshold: Threshold
    params: CheckParams
    columns: tuple[str, ...] = ()

    @property
    def metric(self) -> str:
        """Return the OTel name of the value gauge."""
        return METRICS[self.kind]

    @property
    def metadata(self) -> bool:
        """Tell whether the catalog answers this check (volume, schema_change, freshness)."""
        return self.kind in METADATA_KINDS or getattr(self.params, "source", "") == "metadata"

    @property
    def scanned(self) -> bool:
        """Tell whether the table's one aggregate scan answers this check."""
        if isinstance(self.params, Statistic):
            return self.params.scanned
        return self.kind in AGGREGATE_KINDS and not self.metadata

    @property
    def anomaly(self) -> Anomaly | None:
        """Return the check's learned-baseline settings (SPEC 10), if it is watched."""
        anomaly: Anomaly | None = getattr(self.params, "anomaly", None)
        return anomaly

    @property
    def where(self) -> str | None:
        """Return the check's own condition on top of the table's scope (SPEC 8), if any."""
        where: str | None = getattr(self.params, "where", None)
        return where

    @property
    def stat(self) -> str | None:
        """Return the dq.stat value (statistic checks only)."""
        return self.params.stat if isinstance(self.params, Statistic) else None

    @property
    def column_attribute(self) -> str | None:
        """Return the dq.column value: the checked column(s), joined by ','."""
        return ",".join(self.columns) if self.columns else None

    @property
    def rule(self) -> str | None:
        """Return the dq.rule value (validity checks only)."""
        return self.name if self.kind == "validity" else None


@dataclass(frozen=True)
class TableSpec:
    """A monitored table: where it lives, its scope, its schedule and its checks."""

    name: str
    warehouse: str
    schema: str | None
    table: str
    where: str | None
    partition: Partition | None
    schedule: Schedule
    checks: tuple[CheckSpec, ...]
    segment_by: SegmentBy | None = None  # SPEC 8
    key: tuple[str, ...] = ()  # the columns that identify a sample row (SPEC 12)
    samples: bool = True  # false: never show this table's rows (SPEC 12)

    def check(self, name: str) -> CheckSpec | None:
        """Return the check called `name`, or None."""
        return next((c for c in self.checks if c.name == name), None)


@dataclass(frozen=True)
class Config:
    """A validated checks.yaml."""

    file: str
    warehouses: Mapping[str, Warehouse]
    tables: tuple[TableSpec, ...]
    discover: tuple[Discover, ...] = ()  # resolved into tables by dqmon.discovery
    secrets: frozenset[str] = field(default=frozenset(), repr=False)  # registered in redact
    # How rules and the dashboard spell metric and label names (issue 13, docs/telemetry.md).
    naming: Literal["underscore", "utf8"] = "underscore"

    def table(self, name: str) -> TableSpec | None:
        """Return the table called `name`, or None."""
        return next((t for t in self.tables if t.name == name), None)
