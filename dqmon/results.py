"""What a check produced: the value, the verdict, and the attributes it is published under."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dqmon.config.resolved import CheckSpec
from dqmon.errors import ExitCode

Status = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class CheckResult:
    """One attempt of one check."""

    spec: CheckSpec
    warehouse: str
    partition: str | None
    value: float | None
    status: Status
    duration_s: float
    started_at_s: float
    error: str | None = None
    details: Mapping[str, Any] | None = None  # e.g. schema_change's columns; stdout and logs
    segment: str | None = None  # the segment_by value (SPEC 8); None: the whole scope

    @property
    def table(self) -> str:
        return self.spec.table

    @property
    def check(self) -> str:
        return self.spec.name

    @property
    def metric(self) -> str:
        return self.spec.metric

    @property
    def severity(self) -> str:
        return self.spec.severity

    def attributes(self) -> dict[str, str]:
        """Return the value gauge's attributes (SPEC section 3)."""
        attrs = {"dq.warehouse": self.warehouse, "dq.table": self.table, "dq.check": self.check}
        if self.spec.column_attribute is not None:
            attrs["dq.column"] = self.spec.column_attribute
        if self.spec.rule is not None:
            attrs["dq.rule"] = self.spec.rule
        if self.partition is not None:
            attrs["dq.partition"] = self.partition
        if self.spec.stat is not None:
            attrs["dq.stat"] = self.spec.stat
        if self.segment is not None:
            attrs["dq.segment"] = self.segment
        if self.spec.metadata and self.spec.kind != "schema_change":
            attrs["dq.source"] = "metadata"  # SPEC 9: volume and freshness read the catalog
        return attrs

    def to_json(self) -> dict[str, Any]:
        """Return the result as strict-JSON-ready data (infinity as "+Inf")."""
        return {
            "table": self.table,
            "check": self.check,
            "metric": self.metric,
            "value": json_number(self.value),
            "threshold": self.spec.threshold.as_dict(),
            "status": self.status,
            "severity": self.severity,
            "attributes": self.attributes(),
            "duration_seconds": round(self.duration_s, 6),
            "error": self.error,
            **({"details": dict(self.details)} if self.details else {}),
            **({"segment": self.segment} if self.segment is not None else {}),
        }


def json_number(value: float | None) -> float | str | None:
    """Write non-finite numbers as strings so the output stays strict JSON."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def verdict(spec: CheckSpec, value: float) -> Status:
    """Compare a value with its check's threshold."""
    return "pass" if spec.threshold.passes(value) else "fail"


def exit_code(results: Iterable[CheckResult]) -> ExitCode:
    """Return the run's exit code: an error beats a critical failure beats success."""
    code = ExitCode.OK
    for result in results:
        if result.status == "error":
            return ExitCode.ERROR
        if result.status == "fail" and result.severity == "critical":
            code = ExitCode.FAILED
    return code
