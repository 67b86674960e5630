"""Validity rules as SQL conditions: condition, in, not_in, regex, not_regex, between (SPEC 8)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from dqmon.checks.scope import raw_sql_condition
from dqmon.config.kinds import Validity


def valid_condition(rule: Validity, dialect: str, tz: tzinfo = UTC) -> ColumnElement[bool]:
    """Return the condition a valid row meets (NULL, like false, is not valid).

    A column rule is NULL on a NULL value: the scan counts it neither valid nor considered.
    """
    if rule.condition is not None:
        return raw_sql_condition(rule.condition)
    col: ColumnElement[Any] = sa.column(rule.column or "")
    if rule.in_ is not None:
        return col.in_(rule.in_)
    if rule.not_in is not None:
        return col.not_in(rule.not_in)
    if rule.regex is not None:
        return regex_search(sa.cast(col, sa.String()), rule.regex, dialect)
    if rule.not_regex is not None:
        return sa.not_(regex_search(sa.cast(col, sa.String()), rule.not_regex, dialect))
    assert rule.between is not None
    low, high = rule.between
    if isinstance(low, str) and isinstance(high, str):
        return _between_times(col, low, high, dialect, tz)
    assert not isinstance(low, str) and not isinstance(high, str)
    return col.between(number(float(low)), number(float(high)))


def number(value: float) -> ColumnElement[Any]:
    """A finite number from the config as an untyped SQL literal.

    A bound float travels as float8 and makes PostgreSQL cast every numeric row to float
    (2.3x slower on `amount BETWEEN`); a literal takes the column's type. Validated config
    numbers only, never text: nothing can be injected.
    """
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return sa.literal_column(str(int(value)) if value.is_integer() else repr(value))


def regex_search(text: ColumnElement[Any], pattern: str, dialect: str) -> ColumnElement[bool]:
    """True when `pattern` matches anywhere in `text` (a search, as PostgreSQL's `~`)."""
    if dialect == "trino":  # SQLAlchemy's trino dialect has no regexp_match
        return sa.func.regexp_like(text, pattern)
    if dialect == "snowflake":  # Snowflake's REGEXP/RLIKE match the whole string
        return sa.func.regexp_instr(text, pattern) > 0
    return text.regexp_match(pattern)


def _between_times(col: ColumnElement[Any], low: str, high: str, dialect: str,
                   tz: tzinfo) -> ColumnElement[bool]:
    """`col` between two ISO-8601 dates or times (inclusive), compared as instants.

    A bound without an offset is wall-clock time in the warehouse's zone, as the session
    reads timestamps (SPEC 2); one with an offset is converted to that zone. Typed literals
    (DATE '...', TIMESTAMP '...') let the engine compare date, timestamp and timestamptz
    columns without casting each row; SQLite compares normalised ISO text.
    """
    start, end = _moment(low, tz), _moment(high, tz)
    if isinstance(start, datetime) != isinstance(end, datetime):  # a date is its midnight
        start, end = _midnight(start), _midnight(end)
    if dialect == "sqlite":
        text = sa.func.strftime("%Y-%m-%d %H:%M:%f", col)
        return text.between(sa.literal(_sqlite_text(start)), sa.literal(_sqlite_text(end)))
    return col.between(_typed_literal(start, dialect, tz), _typed_literal(end, dialect, tz))


def _moment(text: str, tz: tzinfo) -> date | datetime:
    """Read an ISO-8601 bound: a date, or a naive date-time in the warehouse's zone."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(tz).replace(tzinfo=None)
    return moment


def _midnight(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return datetime(moment.year, moment.month, moment.day)


def _sqlite_text(moment: date | datetime) -> str:
    """Format a bound as SQLite's strftime('%Y-%m-%d %H:%M:%f') writes a value."""
    return _midnight(moment).strftime("%Y-%m-%d %H:%M:%S.%f")[:23]


def _typed_literal(moment: date | datetime, dialect: str, tz: tzinfo) -> ColumnElement[Any]:
    """DATE 'YYYY-MM-DD' or TIMESTAMP 'YYYY-MM-DD HH:MM:SS[.ffffff]'.

    BigQuery gets a plain string in UTC instead: it coerces a string literal to the column's
    DATE, DATETIME or TIMESTAMP, but compares no DATE with a TIMESTAMP. The text is written
    from a parsed date or time, never copied from the config.
    """
    if dialect == "bigquery" and isinstance(moment, datetime):
        moment = moment.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
    text = moment.isoformat(sep=" ") if isinstance(moment, datetime) else moment.isoformat()
    if dialect == "bigquery":
        return sa.literal_column(f"'{text}'")
    return sa.literal_column(f"{'TIMESTAMP' if isinstance(moment, datetime) else 'DATE'} '{text}'")
