"""The check kinds of checks.yaml as frozen pydantic models (SPEC sections 1, 8, 9, 10): one
model of parameters per kind, and `CheckEntry`, one item of a table's `checks:` list."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from dqmon.config.base import Model
from dqmon.config.types import (
    Between,
    Identifier,
    InValues,
    Number,
    PositiveDuration,
    Ratio,
    Severity,
    TypeFamily,
)


def _ordered(low: float | None, high: float | None) -> None:
    """Refuse bounds given the wrong way round."""
    if low is not None and high is not None and low > high:
        raise ValueError("min must not be greater than max")


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
        _ordered(self.min, self.max)
        return self


class SchemaChange(CheckBase):
    """Columns added, removed or retyped since the previous look (SPEC 9); passes at 0."""


class RowCount(Filtered):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RowCount:
        _ordered(self.min, self.max)
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
        _ordered(self.min, self.max)
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
        _ordered(self.min, self.max)
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
