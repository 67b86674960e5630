"""The shape of checks.yaml as frozen pydantic models (SPEC section 1): the file, its
warehouses, tables and discover blocks; the check kinds are in `dqmon.config.kinds`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from dqmon.config.base import Model
from dqmon.config.kinds import CheckEntry
from dqmon.config.types import (
    Identifier,
    PositiveDuration,
    ScheduleField,
    Severity,
    TimeZoneName,
    Version,
    parse_schedule,
)
from dqmon.config.urls import checked_url


def _database_url(url: str) -> str:
    """Reject a URL dqmon will not open (bad, unknown driver, a parameter off the allow-list)."""
    checked_url(url)
    return url


class Warehouse(Model):
    url: Annotated[str, Field(min_length=1), AfterValidator(_database_url)]
    statement_timeout: PositiveDuration = 60.0
    max_connections: int = Field(default=4, ge=1, le=256)
    timezone: TimeZoneName | None = None
    # SPEC 6 layer 1: connect as a superuser or a role that can run programs, write server
    # files or replicate only when the owner says so (docs/security.md: what that gives up).
    allow_privileged_role: bool = False


class Defaults(Model):
    schedule: ScheduleField = parse_schedule("every 5m")
    severity: Severity = "critical"


MAX_LAG = {"day": 3660, "hour": 87840}  # slices back: 10 years, whatever the granularity


class Partition(Model):
    column: Identifier
    granularity: Literal["hour", "day"] = "day"
    lag: int = Field(default=0, ge=0)

    @field_validator("lag")
    @classmethod
    def _at_most_ten_years(cls, lag: int, info: ValidationInfo) -> int:
        granularity = info.data.get("granularity")
        limit = MAX_LAG.get(granularity or "")
        if limit is not None and lag > limit:  # issue 8: a slice that far back overflows dates
            raise ValueError(f"must be at most {limit} for {granularity} slices (10 years back)")
        return lag


class SegmentBy(Model):
    """Every scanned check of the table per value of `column`, in the same scan (SPEC 8)."""

    column: Identifier
    max_segments: int = Field(default=20, ge=1, le=1000)


class Table(Model):
    name: Identifier
    warehouse: Identifier | None = None
    table: Identifier | None = None
    where: str | None = Field(default=None, min_length=1)
    partition: Partition | None = None
    schedule: ScheduleField | None = None
    severity: Severity | None = None
    segment_by: SegmentBy | None = None
    key: list[Identifier] = Field(default_factory=list)  # shown with samples (SPEC 12)
    samples: bool = True  # false: run-once --samples never shows this table's rows
    checks: list[CheckEntry] = Field(min_length=1)


Glob = Annotated[str, Field(min_length=1)]


class Discover(Model):
    """Monitor every table of some schemas with the same checks (SPEC 9)."""

    warehouse: Identifier | None = None
    schemas: list[Identifier] = Field(min_length=1)
    include: list[Glob] = Field(default_factory=lambda: ["*"], min_length=1)
    exclude: list[Glob] = Field(default_factory=list)
    refresh: PositiveDuration = 3600.0
    schedule: ScheduleField | None = None
    severity: Severity | None = None
    checks: list[CheckEntry] = Field(min_length=1)


class ConfigFile(Model):
    version: Version
    warehouses: dict[str, Warehouse] = Field(min_length=1)
    defaults: Defaults = Defaults()
    tables: list[Table] = Field(default_factory=list)
    discover: list[Discover] = Field(default_factory=list)
    # Series names in generated rules and dashboards: `utf8` for backends that keep OTel
    # names (issue 13; docs/telemetry.md, "Naming modes"). `dqmon rules --naming` overrides.
    naming: Literal["underscore", "utf8"] = "underscore"

    @model_validator(mode="after")
    def _something_to_watch(self) -> ConfigFile:
        if not self.tables and not self.discover:
            raise ValueError("list tables, or discover them (tables: or discover:)")
        return self
