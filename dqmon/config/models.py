"""The shape of checks.yaml as frozen pydantic models (SPEC section 1)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dqmon.config.types import (
    Duration,
    Identifier,
    PositiveDuration,
    Ratio,
    ScheduleField,
    Severity,
    TimeZoneName,
    TypeFamily,
    parse_schedule,
)


class Model(BaseModel):
    """Strict base: unknown keys are errors and nothing changes after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Warehouse(Model):
    url: str = Field(min_length=1)
    statement_timeout: PositiveDuration = 60.0
    max_connections: int = Field(default=4, ge=1, le=256)
    timezone: TimeZoneName | None = None


class Defaults(Model):
    schedule: ScheduleField = parse_schedule("every 5m")
    severity: Severity = "critical"


class Partition(Model):
    column: Identifier
    granularity: Literal["hour", "day"] = "day"
    lag: int = Field(default=0, ge=0)


class CheckBase(Model):
    name: Identifier | None = None
    severity: Severity | None = None


class Freshness(CheckBase):
    column: Identifier
    max_age: Duration


class RowCount(CheckBase):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RowCount:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


class Completeness(CheckBase):
    columns: list[Identifier] = Field(min_length=1)
    min_ratio: Ratio = 1.0


class Validity(CheckBase):
    name: Identifier
    column: Identifier | None = None
    condition: str | None = Field(default=None, min_length=1)
    in_: list[str | int | float | bool] | None = Field(default=None, alias="in", min_length=1)
    regex: str | None = Field(default=None, min_length=1)
    between: tuple[float, float] | None = None
    min_ratio: Ratio = 1.0

    @model_validator(mode="after")
    def _one_rule(self) -> Validity:
        given = [k for k in ("condition", "in", "regex", "between")
                 if getattr(self, "in_" if k == "in" else k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(
                f"give exactly one of condition, in, regex, between (found: {found})")
        if given[0] != "condition" and self.column is None:
            raise ValueError(f"'{given[0]}' needs 'column'")
        if given[0] == "condition" and self.column is not None:
            raise ValueError("'condition' checks whole rows: drop 'column'")
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError("between: the lower bound must not exceed the upper bound")
        return self

    @property
    def rule_kind(self) -> str:
        """Return which of condition, in, regex or between this check uses."""
        for kind in ("condition", "regex", "between"):
            if getattr(self, kind) is not None:
                return kind
        return "in"


class Uniqueness(CheckBase):
    columns: list[Identifier] = Field(min_length=1)
    min_ratio: Ratio = 1.0


class Schema(CheckBase):
    columns: dict[str, TypeFamily] = Field(min_length=1)


class Custom(CheckBase):
    name: Identifier
    sql: str = Field(min_length=1)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Custom:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


CheckParams = Freshness | RowCount | Completeness | Validity | Uniqueness | Schema | Custom


class CheckEntry(Model):
    """One item of a table's `checks:` list: a mapping with exactly one check kind."""

    freshness: Freshness | None = None
    row_count: RowCount | None = None
    completeness: Completeness | None = None
    validity: Validity | None = None
    uniqueness: Uniqueness | None = None
    schema_: Schema | None = Field(default=None, alias="schema")
    custom: Custom | None = None

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: object) -> object:
        if not isinstance(data, dict):
            raise ValueError("each check is a mapping such as {row_count: {min: 1}}")
        if len(data) != 1:
            kinds = ", ".join(map(str, data)) or "none"
            raise ValueError(f"each check names exactly one kind (found: {kinds})")
        return {k: ({} if v is None else v) for k, v in data.items()}

    @property
    def kind(self) -> str:
        """Return the check kind this entry holds."""
        return next(k for k in KINDS if self.params_for(k) is not None)

    @property
    def params(self) -> CheckParams:
        """Return the parameters of the one kind this entry holds."""
        params = self.params_for(self.kind)
        assert params is not None
        return params

    def params_for(self, kind: str) -> CheckParams | None:
        """Return the parameters for `kind`, or None."""
        value: CheckParams | None = getattr(self, "schema_" if kind == "schema" else kind)
        return value


KINDS = ("freshness", "row_count", "completeness", "validity", "uniqueness", "schema", "custom")


class Table(Model):
    name: Identifier
    warehouse: Identifier | None = None
    table: Identifier | None = None
    where: str | None = Field(default=None, min_length=1)
    partition: Partition | None = None
    schedule: ScheduleField | None = None
    severity: Severity | None = None
    checks: list[CheckEntry] = Field(min_length=1)


class ConfigFile(Model):
    version: Literal[1]
    warehouses: dict[str, Warehouse] = Field(min_length=1)
    defaults: Defaults = Defaults()
    tables: list[Table] = Field(min_length=1)
