"""Pure evaluation: timestamps, slices, thresholds, ratios, custom values, exit codes."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dqmon.checks import evaluate_custom, type_family
from dqmon.checks.aggregate import ratio
from dqmon.checks.timeutil import age_seconds, current_slice, parse_slice, to_unix
from dqmon.config import CheckSpec, Threshold
from dqmon.config.kinds import RowCount
from dqmon.results import CheckResult, ExitCode, exit_code

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("latest", "tz", "age"), [
    (datetime(2026, 11, 20, 10, 0, tzinfo=UTC), UTC, 7200),  # timestamptz
    (datetime(2026, 11, 20, 10, 0), UTC, 7200),  # naive timestamp read as UTC
    (datetime(2026, 11, 20, 10, 0), BERLIN, 10800),  # naive, warehouse timezone UTC+1
    ("2026-11-20T10:00:00Z", UTC, 7200),  # ISO text in SQLite
    ("2026-11-20 11:00:00+01:00", UTC, 7200),  # ISO text with an offset
    ("2026-11-20 10:00:00", BERLIN, 10800),
    (date(2026, 11, 20), UTC, 43200),  # a date is its midnight
    (2461364.9166666665, UTC, 7200),  # SQLite julianday() of 10:00 UTC
])
def test_age_of_every_timestamp_kind(latest: object, tz: ZoneInfo, age: float) -> None:
    """Freshness reads each kind of timestamp as the right instant."""
    assert age_seconds(latest, NOW, tz) == pytest.approx(age, abs=0.01)


def test_no_rows_is_infinitely_stale() -> None:
    """max() of an empty scope is NULL: the age is +Inf."""
    assert age_seconds(None, NOW, UTC) == math.inf
    assert to_unix(None, UTC) is None


def test_julian_now_from_sqlite() -> None:
    """A naive or julian `now` is UTC, whatever the warehouse zone."""
    # julian 2461365.0 is 2026-11-20 12:00 UTC; naive 11:00 in Berlin is 10:00 UTC
    assert age_seconds(datetime(2026, 11, 20, 11), 2461365.0, BERLIN) == pytest.approx(7200, abs=0.01)


def test_slices_in_a_time_zone_across_dst() -> None:
    """Day slices start at local midnight; lag steps back whole local days, across DST."""
    # 2026-03-29 is the spring-forward day in Berlin.
    now_s = datetime(2026, 3, 30, 0, 30, tzinfo=BERLIN).timestamp()
    current = current_slice(now_s, "day", 0, BERLIN)
    previous = current_slice(now_s, "day", 1, BERLIN)
    assert (current.label, previous.label) == ("2026-03-30", "2026-03-29")
    assert previous.start == datetime(2026, 3, 29) and previous.end == datetime(2026, 3, 30)
    hour = current_slice(NOW.timestamp(), "hour", 2, UTC)
    assert (hour.label, hour.start, hour.end) == (
        "2026-11-20T10", datetime(2026, 11, 20, 10), datetime(2026, 11, 20, 11))


def test_parse_slice() -> None:
    """--partition takes a date for day slices and date plus hour for hour slices."""
    assert parse_slice("2026-11-20T13", "hour").end == datetime(2026, 11, 20, 14)
    with pytest.raises(ValueError, match="hour slices"):
        parse_slice("2026-11-20", "hour")


@pytest.mark.parametrize(("bounds", "value", "passes"), [
    ((None, 10.0), 10.0, True), ((None, 10.0), 10.5, False), ((1.0, None), 0.0, False),
    ((0.999, None), 0.999, True), ((1.0, 5.0), 3.0, True), ((1.0, None), math.nan, False),
    ((None, 7200.0), math.inf, False),
])
def test_threshold_bounds_are_inclusive(bounds: tuple[float | None, float | None], value: float,
                                        passes: bool) -> None:
    """Thresholds include their bounds; NaN and +Inf beyond a max never pass."""
    assert Threshold(*bounds).passes(value) is passes


def test_ratio_of_empty_is_one() -> None:
    """An empty denominator means nothing is wrong: 1.0 (SPEC §2)."""
    assert ratio(0, 0) == 1.0
    assert ratio(None, None) == 1.0
    assert ratio(3, 4) == 0.75


@pytest.mark.parametrize(("rows", "message"), [
    ([], "one row with one column, got 0 row"),
    ([(1, 2)], "got 1 row(s) of 2 column(s)"),
    ([(None,)], "returned NULL"),
    ([("x",)], "non-number"),
])
def test_custom_value_shape(rows: list[tuple[object, ...]], message: str) -> None:
    """A custom query must give exactly one number."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate_custom(rows)
    assert evaluate_custom([(__import__("decimal").Decimal("2.5"),)]) == 2.5


@pytest.mark.parametrize(("column_type", "family"), [
    (sa.BigInteger(), "integer"), (sa.Numeric(10, 2), "numeric"), (sa.Float(), "numeric"),
    (sa.Text(), "text"), (sa.String(20), "text"), (sa.Boolean(), "boolean"),
    (sa.Date(), "date"), (sa.DateTime(timezone=True), "timestamp"), (sa.JSON(), "json"),
    (sa.LargeBinary(), "other"),
])
def test_type_families(column_type: sa.types.TypeEngine[object], family: str) -> None:
    """Reflected types map to the SPEC's families."""
    assert type_family(column_type) == family


def _result(status: str, severity: str = "critical") -> CheckResult:
    spec = CheckSpec("t", f"c_{status}_{severity}", "row_count", severity,  # type: ignore[arg-type]
                     Threshold(min=1), RowCount(min=1))
    return CheckResult(spec, "main", None, 1.0, status, 0.0, 0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("statuses", "code"), [
    ([("pass", "critical")], ExitCode.OK),
    ([("fail", "warning"), ("pass", "critical")], ExitCode.OK),
    ([("fail", "critical"), ("fail", "warning")], ExitCode.FAILED),
    ([("fail", "critical"), ("error", "warning")], ExitCode.ERROR),
    ([("error", "critical"), ("fail", "critical")], ExitCode.ERROR),
    ([], ExitCode.OK),
])
def test_exit_code_precedence(statuses: list[tuple[str, str]], code: ExitCode) -> None:
    """Errors beat critical failures, which beat success; warnings never fail a run."""
    assert exit_code([_result(s, sev) for s, sev in statuses]) == code
