"""Small validated types of checks.yaml: durations, ratios, schedules, severities."""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_DURATION_HINT = "use 90s, 15m, 2h, 1d or a number of seconds"


def parse_duration(value: object) -> float:
    """Turn 90s, 15m, 2h, 1d or a bare number of seconds into seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = _as_float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    elif isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration ({_DURATION_HINT})")
    else:
        raise ValueError(f"must be a duration ({_DURATION_HINT})")
    if not math.isfinite(seconds):
        raise ValueError("must be a finite duration")
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def _as_float(value: float) -> float:
    """Return `value` as a float; an integer past the float range is infinite (issue 8)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _ratio(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _pair(value: object) -> object:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError("must be [low, high]: two numbers, or two ISO-8601 dates or times")
    return tuple(_bound(v) for v in value)


def _bound(value: object) -> object:
    """Keep a number; read text, or a date YAML already read, as an ISO-8601 date or time."""
    if isinstance(value, date):  # YAML reads 2020-01-01 unquoted as a date
        return value.isoformat()
    if isinstance(value, str) and _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is neither a number nor an ISO-8601 date or time "
                             "(e.g. 2020-01-01 or 2020-01-01T00:00:00)") from None
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _ordered(value: tuple[BetweenBound, BetweenBound]) -> tuple[BetweenBound, BetweenBound]:
    low, high = value
    if isinstance(low, str) != isinstance(high, str):
        raise ValueError("give two numbers or two dates/times, not one of each")
    if isinstance(low, str) and isinstance(high, str):
        if _instant(low) > _instant(high):
            raise ValueError("the lower bound must not exceed the upper bound")
    elif isinstance(low, float) and isinstance(high, float) and low > high:
        raise ValueError("the lower bound must not exceed the upper bound")
    return value


def _instant(text: str) -> datetime:
    """Compare ISO bounds as naive UTC instants (a date is its midnight)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _one_kind(values: list[InValue]) -> list[InValue]:
    """Refuse an `in:` list that mixes text, numbers and booleans (issue 8: SQL cannot compare)."""
    kinds = sorted({_kind_of(v) for v in values})
    if len(kinds) > 1:
        raise ValueError(f"mixes {' and '.join(kinds)}: list only text, only numbers or only "
                         "booleans (quote a number meant as text, e.g. '1')")
    floats = [v for v in values if isinstance(v, float)]
    if not all(math.isfinite(v) for v in floats):
        raise ValueError("must hold finite numbers (not .nan or .inf)")
    # [1, 2.5] as floats: SQL types a literal list by its first item (2.5 would render as 2)
    return [_float(v) for v in values] if floats else values


def _float(value: InValue) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{value} is too large beside a decimal number") from None


def _kind_of(value: InValue) -> str:
    if isinstance(value, bool):
        return "booleans"
    return "text" if isinstance(value, str) else "numbers"


def _version(value: int) -> int:
    if value != 1:
        raise ValueError(f"unsupported version {value} (this dqmon reads version 1)")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Ratio = Annotated[float, AfterValidator(_ratio)]
Number = Annotated[float, Field(allow_inf_nan=False)]
# Numbers, or ISO-8601 dates / times kept as text (SPEC 8): the SQL renders them as literals
# of the column's kind.
BetweenBound = Number | str
Between = Annotated[tuple[BetweenBound, BetweenBound], BeforeValidator(_pair),
                    AfterValidator(_ordered)]
Version = Annotated[int, AfterValidator(_version)]
InValue = str | int | float | bool
InValues = Annotated[list[InValue], AfterValidator(_one_kind)]
Severity = Literal["critical", "warning"]
TypeFamily = Literal["integer", "numeric", "text", "boolean", "date", "timestamp", "json", "other"]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
Identifier = Annotated[str, Field(min_length=1)]


@dataclass(frozen=True)
class Schedule:
    """When a table's checks run: every N seconds, or on a 5-field cron string (in UTC)."""

    text: str
    interval_s: float | None = None
    cron: str | None = None

    def period_s(self) -> float:
        """Return the longest gap between two consecutive runs."""
        if self.interval_s is not None:
            return self.interval_s
        return cron_longest_gap_s(self.cron or "")

    def __str__(self) -> str:
        return self.text


def parse_schedule(value: object) -> Schedule:
    """Parse "every <duration>" or a 5-field cron string."""
    if isinstance(value, Schedule):
        return value
    if not isinstance(value, str):
        raise ValueError("must be 'every <duration>' or a 5-field cron string")
    text = value.strip()
    if text.startswith("every "):
        try:
            seconds = parse_duration(text[len("every "):].strip())
        except ValueError:
            raise ValueError(f"{text!r} is not 'every <duration>' ({_DURATION_HINT})") from None
        if seconds <= 0:
            raise ValueError("the interval must be positive")
        return Schedule(text=text, interval_s=seconds)
    if len(text.split()) != 5:
        raise ValueError(f"{text!r} is neither 'every <duration>' nor a 5-field cron string")
    try:
        trigger = cron_trigger(text)
    except ValueError as exc:
        raise ValueError(f"invalid cron string {text!r}: {exc}") from None
    if trigger.get_next_fire_time(None, _EPOCH) is None:
        raise ValueError(f"the cron string {text!r} never fires")
    return Schedule(text=text, cron=text)


# --- cron with crontab(5) semantics -----------------------------------------------------------
# APScheduler 3 counts weekdays from Monday = 0 (crontab: Sunday = 0 or 7) and ANDs the day of
# month with the day of week (crontab: either matches when both are restricted). These helpers
# translate, so "* * * * 1-5" means Monday to Friday as every cron user expects.

_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_LABELS = {"day": "day of month", "day_of_week": "day of week"}
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEEKDAY_ITEM = re.compile(r"(\*|\w+(?:-\w+)?)(?:/(\d+))?")
_EPOCH = datetime(2026, 1, 5, tzinfo=UTC)  # a fixed Monday: periods must not drift with the date


def cron_trigger(cron: str, timezone: str = "UTC") -> Any:
    """Build an APScheduler 3 trigger that fires exactly when crontab(5) would."""
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    if len(cron.split()) != len(_FIELDS):
        raise ValueError("a cron string has 5 fields: minute hour day-of-month month day-of-week")
    fields = dict(zip(_FIELDS, cron.split(), strict=True))
    day, weekday = fields["day"], fields["day_of_week"]
    _check_fields({k: v for k, v in fields.items() if k != "day_of_week"})
    fields["day_of_week"] = _apscheduler_weekdays(weekday)
    if not day.startswith("*") and not weekday.startswith("*"):
        return OrTrigger([CronTrigger(**{**fields, "day_of_week": "*"}, timezone=timezone),
                          CronTrigger(**{**fields, "day": "*"}, timezone=timezone)])
    return CronTrigger(**fields, timezone=timezone)


def _check_fields(fields: dict[str, str]) -> None:
    """Raise ValueError naming the first field APScheduler rejects."""
    from apscheduler.triggers.cron import CronTrigger

    for name, value in fields.items():
        try:
            CronTrigger(**{name: value}, timezone="UTC")
        except ValueError as exc:
            reason = re.sub(r"^Error validating expression '[^']*': ", "", str(exc))
            reason = reason[:1].lower() + reason[1:]
            raise ValueError(f"{_LABELS.get(name, name)} {value!r}: {reason}") from None


def _apscheduler_weekdays(field: str) -> str:
    """Rewrite a crontab day-of-week field (Sunday = 0 or 7) as APScheduler weekday names."""
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.lower().split(","):
        days |= _weekday_item(item)
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def _weekday_item(item: str) -> set[int]:
    match = _WEEKDAY_ITEM.fullmatch(item)
    if not match or match.group(2) == "0":
        raise ValueError(f"day of week {item!r}: use 0-7 or sun-sat, a range a-b, a step /n")
    span, step = match.group(1), int(match.group(2) or 1)
    first, _, last = span.partition("-")
    lo, hi = (0, 7) if span == "*" else (_weekday(first), _weekday(last or first))
    if match.group(2) and not last:
        hi = 7  # "a/n" runs from a to the end of the week, as in Vixie cron
    if lo > hi:
        raise ValueError(f"day of week {item!r}: the range runs backwards")
    return {day % 7 for day in range(lo, hi + 1, step)}


def _weekday(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in _WEEKDAYS:
        return _WEEKDAYS.index(token)
    raise ValueError(f"day of week {token!r}: use 0-7 (0 and 7 are Sunday) or sun-sat")


@functools.lru_cache(maxsize=256)
def cron_longest_gap_s(cron: str, *, horizon: timedelta = timedelta(days=366)) -> float:
    """Return the longest gap between consecutive fire times over a year from a fixed Monday.

    Cron picks days and times of day independently, so every firing day fires at the same
    times: the longest gap is inside one day or from one firing day's last run to the next
    firing day's first. That walks firing days (at most ~366), not fires (up to 527,040).
    """
    trigger = cron_trigger(cron)
    first = trigger.get_next_fire_time(None, _EPOCH)
    if first is None:
        return 0.0
    times = _fires_on_day_of(trigger, first)
    longest = max((b - a for a, b in itertools.pairwise(times)), default=timedelta(0))
    day_span = times[-1] - times[0]
    while True:
        midnight = first.replace(hour=0, minute=0, second=0, microsecond=0)
        following = trigger.get_next_fire_time(None, midnight + timedelta(days=1))
        if following is None:
            break
        longest = max(longest, following - (first + day_span))
        if following - _EPOCH > horizon:
            break
        first = following
    return longest.total_seconds()


def _fires_on_day_of(trigger: Any, first: datetime) -> list[datetime]:
    """Return the fire times on the (UTC) day of `first`, starting with it."""
    fires = [first]
    while True:
        following = trigger.get_next_fire_time(fires[-1], fires[-1] + timedelta(seconds=1))
        if following is None or following.date() != first.date():
            return fires
        fires.append(following)


ScheduleField = Annotated[Schedule, BeforeValidator(parse_schedule)]
