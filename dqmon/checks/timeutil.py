"""Timestamps as warehouses return them, turned into exact UTC instants; partition slices."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal

Granularity = Literal["hour", "day"]
_JULIAN_UNIX_EPOCH = 2440587.5  # julianday('1970-01-01 00:00:00') in SQLite
_LAST_START = {"day": datetime(9999, 12, 30), "hour": datetime(9999, 12, 31, 22)}  # ends <= max


def to_unix(value: object, tz: tzinfo) -> float | None:
    """Turn a warehouse's timestamp value into unix seconds; naive values are in `tz`.

    Accepts aware and naive datetimes, dates (midnight in `tz`), ISO-8601 text,
    and SQLite julian day numbers (floats). Returns None for NULL.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=tz)
        return moment.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz).timestamp()
    if isinstance(value, int | float):
        return (float(value) - _JULIAN_UNIX_EPOCH) * 86400.0
    if isinstance(value, str):
        return to_unix(datetime.fromisoformat(value.strip().replace("Z", "+00:00")), tz)
    raise ValueError(f"cannot read {type(value).__name__} {value!r} as a timestamp")


def age_seconds(latest: object, now: object, tz: tzinfo) -> float:
    """Return seconds from `latest` to the warehouse's `now`; +Inf when there is no row.

    A naive `now` is UTC: dqmon asks every dialect for UTC (SQLite `julianday('now')`,
    MySQL sessions at +00:00).
    """
    latest_s = to_unix(latest, tz)
    if latest_s is None:
        return math.inf
    now_s = to_unix(now, UTC)
    if now_s is None:
        raise ValueError("the warehouse returned no current time")
    return now_s - latest_s


@dataclass(frozen=True)
class Slice:
    """A half-open partition window [start, end) as naive wall-clock times in the warehouse zone."""

    start: datetime
    end: datetime
    label: str


def current_slice(now_s: float, granularity: Granularity, lag: int, tz: tzinfo) -> Slice:
    """Return the slice `lag` steps before the one containing `now_s`.

    Raises ValueError, never OverflowError, for a slice outside years 1 to 9999 (issue 8).
    """
    local = datetime.fromtimestamp(now_s, tz).replace(tzinfo=None)
    start = local.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        start = start.replace(hour=0)
    try:
        start -= lag * _step(granularity)
    except OverflowError:
        raise ValueError(f"the {granularity} slice {lag} back from now is before year 1") from None
    return make_slice(start, granularity)


def parse_slice(text: str, granularity: Granularity) -> Slice:
    """Parse --partition: 2026-11-20 for day slices, 2026-11-20T13 for hour slices."""
    try:
        if granularity == "day":
            start = datetime.strptime(text, "%Y-%m-%d")
        else:
            start = datetime.strptime(text, "%Y-%m-%dT%H")
    except ValueError:
        example = "2026-11-20" if granularity == "day" else "2026-11-20T13"
        raise ValueError(f"--partition {text!r}: this table has {granularity} slices, "
                         f"written like {example}") from None
    try:
        return make_slice(start, granularity)
    except ValueError as exc:
        raise ValueError(f"--partition {text!r}: {exc}") from None


def make_slice(start: datetime, granularity: Granularity) -> Slice:
    """Build the slice starting at `start` with its label; ValueError if it ends after 9999."""
    try:
        end = start + _step(granularity)
    except OverflowError:
        last = _label(_LAST_START[granularity], granularity)
        raise ValueError(f"the {granularity} slice {_label(start, granularity)} ends after "
                         f"year 9999 (the last one is {last})") from None
    return Slice(start, end, _label(start, granularity))


def _label(start: datetime, granularity: Granularity) -> str:
    """Write 2026-11-20 or 2026-11-20T13, years zero-padded (glibc's %Y is not)."""
    return start.date().isoformat() if granularity == "day" else start.isoformat(timespec="hours")


def _step(granularity: Granularity) -> timedelta:
    return timedelta(days=1) if granularity == "day" else timedelta(hours=1)
