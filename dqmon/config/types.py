"""Small validated types of checks.yaml: durations, ratios, schedules, severities."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(value: object) -> float:
    """Turn 90s, 15m, 2h, 1d or a bare number of seconds into seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 90s, 15m, 2h, 1d or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(
                f"{value!r} is not a duration (use 90s, 15m, 2h, 1d or a number of seconds)")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


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


Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Ratio = Annotated[float, AfterValidator(_ratio)]
Severity = Literal["critical", "warning"]
TypeFamily = Literal["integer", "numeric", "text", "boolean", "date", "timestamp", "json", "other"]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
Identifier = Annotated[str, Field(min_length=1)]


@dataclass(frozen=True)
class Schedule:
    """When a table's checks run: every N seconds, or on a 5-field cron string."""

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
    text = str(value).strip()
    if text.startswith("every "):
        seconds = parse_duration(text[len("every "):])
        if seconds <= 0:
            raise ValueError("the interval must be positive")
        return Schedule(text=text, interval_s=seconds)
    if len(text.split()) != 5:
        raise ValueError(f"{text!r} is neither 'every <duration>' nor a 5-field cron string")
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"invalid cron string {text!r}: {exc}") from None
    return Schedule(text=text, cron=text)


def cron_longest_gap_s(cron: str, *, horizon: timedelta = timedelta(days=366),
                      max_fires: int = 5000) -> float:
    """Return the longest gap between consecutive fire times (a year, or `max_fires` fires)."""
    from datetime import UTC, datetime

    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone="UTC")
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a fixed Monday: the answer must not drift
    previous = trigger.get_next_fire_time(None, start)
    longest = 0.0
    for _ in range(max_fires):
        if previous is None or previous - start > horizon:
            break
        following = trigger.get_next_fire_time(previous, previous + timedelta(seconds=1))
        if following is None:
            break
        longest = max(longest, (following - previous).total_seconds())
        previous = following
    return longest


ScheduleField = Annotated[Schedule, BeforeValidator(parse_schedule)]
