"""The shape of checks.yaml as frozen pydantic models (SPEC section 1)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dqmon.config.types import (
    Between,
    Identifier,
    InValues,
    Number,
    PositiveDuration,
    Ratio,
    ScheduleField,
    Severity,
    TimeZoneName,
    TypeFamily,
    Version,
    parse_schedule,
)
from dqmon.config.urls import checked_url


def _database_url(url: str) -> str:
    """Reject a URL dqmon will not open (bad, unknown driver, a parameter off the allow-list)."""
    checked_url(url)
    return url


class Model(BaseModel):
    """Strict base: unknown keys are errors and nothing changes after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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


class CheckBase(Model):
    name: Identifier | None = None
    severity: Severity | None = None


class Freshness(CheckBase):
    column: Identifier | None = None
    max_age: PositiveDuration
    # scan: max(column) in the table's one scan; metadata: the catalog's last change (SPEC 9)
    source: Literal["scan", "metadata"] = "scan"

    @model_validator(mode="after")
    def _column_for_scan(self) -> Freshness:
        if self.source == "scan" and self.column is None:
            raise ValueError("give 'column' (or source: metadata)")
        if self.source == "metadata" and self.column is not None:
            raise ValueError("source: metadata reads the catalog: drop 'column'")
        return self


class Volume(CheckBase):
    """The catalog's row count of the table (SPEC 9): no scan of its rows."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Volume:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


class SchemaChange(CheckBase):
    """Columns added, removed or retyped since the previous look (SPEC 9); passes at 0."""


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
    in_: InValues | None = Field(default=None, alias="in", min_length=1)
    regex: str | None = Field(default=None, min_length=1)
    between: Between | None = None
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
    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Custom:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


CheckParams = (Freshness | RowCount | Completeness | Validity | Uniqueness | Schema | Custom
               | Volume | SchemaChange)


class CheckEntry(Model):
    """One item of a table's `checks:` list: a mapping with exactly one check kind."""

    freshness: Freshness | None = None
    row_count: RowCount | None = None
    completeness: Completeness | None = None
    validity: Validity | None = None
    uniqueness: Uniqueness | None = None
    schema_: Schema | None = Field(default=None, alias="schema")
    custom: Custom | None = None
    volume: Volume | None = None
    schema_change: SchemaChange | None = None

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

    @property
    def names(self) -> list[str]:
        """Return the check names this entry produces (completeness: one per column)."""
        params = self.params
        if params.name:
            return [params.name]
        if isinstance(params, Completeness):
            return [f"completeness_{column}" for column in params.columns]
        if isinstance(params, Uniqueness):
            return ["uniqueness_" + "_".join(params.columns)]
        return [self.kind]

    def params_for(self, kind: str) -> CheckParams | None:
        """Return the parameters for `kind`, or None."""
        value: CheckParams | None = getattr(self, "schema_" if kind == "schema" else kind)
        return value


KINDS = ("freshness", "row_count", "completeness", "validity", "uniqueness", "schema", "custom",
         "volume", "schema_change")


class Table(Model):
    name: Identifier
    warehouse: Identifier | None = None
    table: Identifier | None = None
    where: str | None = Field(default=None, min_length=1)
    partition: Partition | None = None
    schedule: ScheduleField | None = None
    severity: Severity | None = None
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

    @model_validator(mode="after")
    def _something_to_watch(self) -> ConfigFile:
        if not self.tables and not self.discover:
            raise ValueError("list tables, or discover them (tables: or discover:)")
        return self
