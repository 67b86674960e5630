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


class Anomaly(Model):
    """A learned baseline for a check's value (SPEC 10, issue 12): alert on a value more than
    `sensitivity` standard deviations from the mean of its last `window` (docs/alerting.md)."""

    window: PositiveDuration = 14 * 86400.0
    sensitivity: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 3.0
    seasonality: Literal["none", "daily", "weekly"] = "none"
    min_history: PositiveDuration = 3 * 86400.0
    direction: Literal["both", "up", "down"] = "both"

    @model_validator(mode="after")
    def _history_within_window(self) -> Anomaly:
        if self.min_history > self.window:
            raise ValueError("min_history must not be longer than window")
        period = SEASON_S.get(self.seasonality)
        if period is not None and self.window < period:
            noun = "day" if self.seasonality == "daily" else "week"
            raise ValueError(f"window must cover at least one {noun} for seasonality: "
                             f"{self.seasonality}")
        return self


SEASON_S = {"daily": 86400.0, "weekly": 7 * 86400.0}


class Watched(CheckBase):
    """A check that publishes a value, which `anomaly:` may watch (SPEC 10). schema and
    schema_change count mismatches that are 0 when healthy: no baseline to learn there."""

    anomaly: Anomaly | None = None


Condition = Annotated[str, Field(min_length=1)]


class Filtered(Watched):
    """An aggregate check: its own `where` on top of the table's scope (SPEC 8), computed
    by conditional aggregation inside the table's one scan."""

    where: Condition | None = None


class Ratios(Watched):
    """A ratio check's bounds: `min_ratio` <= value <= `max_ratio` (SPEC 8)."""

    min_ratio: Ratio = 1.0
    max_ratio: Ratio | None = None  # None: 1.0, a ratio's ceiling, so not a configured bound

    @model_validator(mode="after")
    def _ratios_ordered(self) -> Ratios:
        if self.max_ratio is not None and self.min_ratio > self.max_ratio:
            raise ValueError("min_ratio must not be greater than max_ratio")
        return self


class Freshness(Filtered):
    column: Identifier | None = None
    max_age: PositiveDuration
    # scan: max(column) in the table's one scan; metadata: the catalog's last change (SPEC 9)
    source: Literal["scan", "metadata"] = "scan"

    @model_validator(mode="after")
    def _column_for_scan(self) -> Freshness:
        if self.source == "scan" and self.column is None:
            raise ValueError("give 'column' (or source: metadata)")
        given = [k for k in ("column", "where") if getattr(self, k) is not None]
        if self.source == "metadata" and given:
            raise ValueError(f"source: metadata reads the catalog: drop '{given[0]}'")
        return self


class Volume(Watched):
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


class RowCount(Filtered):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RowCount:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


class Completeness(Filtered, Ratios):
    columns: list[Identifier] = Field(min_length=1)


RULES = ("condition", "in", "not_in", "regex", "not_regex", "between")


class Validity(Filtered, Ratios):
    name: Identifier
    column: Identifier | None = None
    condition: str | None = Field(default=None, min_length=1)
    in_: InValues | None = Field(default=None, alias="in", min_length=1)
    not_in: InValues | None = Field(default=None, min_length=1)
    regex: str | None = Field(default=None, min_length=1)
    not_regex: str | None = Field(default=None, min_length=1)
    between: Between | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> Validity:
        given = [k for k in RULES if getattr(self, "in_" if k == "in" else k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of {', '.join(RULES)} (found: {found})")
        if given[0] != "condition" and self.column is None:
            raise ValueError(f"'{given[0]}' needs 'column'")
        if given[0] == "condition" and self.column is not None:
            raise ValueError("'condition' checks whole rows: drop 'column'")
        return self


class Uniqueness(Ratios):
    columns: list[Identifier] = Field(min_length=1)


class Schema(CheckBase):
    columns: dict[str, TypeFamily] = Field(min_length=1)
    allow_extra: bool = True  # false: columns the file does not list count too (SPEC 8)


# In the table's one scan (SPEC 8); the others need their own query.
SCAN_STATS = ("min", "max", "avg", "sum", "stddev", "min_length", "max_length", "avg_length")
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
Stat = Literal["min", "max", "avg", "sum", "stddev", "min_length", "max_length", "avg_length",
               "distinct_count", "p50", "p90", "p95", "p99"]


class Statistic(Filtered):
    """A statistic of a column's non-null values, within bounds (SPEC 8)."""

    column: Identifier
    stat: Stat
    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Statistic:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self

    @property
    def scanned(self) -> bool:
        """Tell whether the table's one aggregate scan computes this statistic."""
        return self.stat in SCAN_STATS


def _dotted_column(value: str) -> str:
    parts = value.split(".")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise ValueError("must be table.column or schema.table.column")
    return value


class Reference(Ratios):
    """Referential integrity: the column's values found in another table's column (SPEC 8)."""

    column: Identifier
    to: Annotated[str, AfterValidator(_dotted_column)]

    @property
    def target(self) -> tuple[str | None, str, str]:
        """Return the referenced (schema, table, column)."""
        *schema, table, column = self.to.split(".")
        return (schema[0] if schema else None), table, column


class Custom(Watched):
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
               | Volume | SchemaChange | Statistic | Reference)


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
    statistic: Statistic | None = None
    reference: Reference | None = None

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
        if isinstance(params, Statistic):
            return [f"{params.stat}_{params.column}"]
        if isinstance(params, Reference):
            return [f"reference_{params.column}"]
        return [self.kind]

    def params_for(self, kind: str) -> CheckParams | None:
        """Return the parameters for `kind`, or None."""
        value: CheckParams | None = getattr(self, "schema_" if kind == "schema" else kind)
        return value


KINDS = ("freshness", "row_count", "completeness", "validity", "uniqueness", "schema", "custom",
         "volume", "schema_change", "statistic", "reference")


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
