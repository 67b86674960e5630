"""Structured logs: one event per line on stderr, as JSON or text, with fields and the trace id.

`get_logger(__name__).warning("scan failed", table="orders", error=msg)` writes
`{"time": ..., "level": "warning", "logger": ..., "event": "scan failed", "table": "orders", ...}`.
Records from other libraries (APScheduler, OpenTelemetry) go through the same formatter.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any, Literal

from dqmon import redact

TraceIdSource = Callable[[], str | None]
LogFormat = Literal["json", "text"]

_FIELDS = "dq_fields"  # the LogRecord attribute that carries an event's fields
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class EventLogger:
    """A logger whose calls are an event name plus keyword fields."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def debug(self, event: str, **fields: object) -> None:
        """Log a debug event."""
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: object) -> None:
        """Log an info event."""
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: object) -> None:
        """Log a warning event."""
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: object) -> None:
        """Log an error event."""
        self._log(logging.ERROR, event, fields)

    def _log(self, level: int, event: str, fields: dict[str, object]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={_FIELDS: fields}, stacklevel=3)


def get_logger(name: str) -> EventLogger:
    """Return the event logger called `name` (use the module's `__name__`)."""
    return EventLogger(name)


class _TraceIds:
    """Where formatters read the active trace id (set once telemetry exists)."""

    source: TraceIdSource | None = None

    @classmethod
    def current(cls) -> str | None:
        if cls.source is None:
            return None
        try:
            return cls.source()
        except Exception:  # noqa: BLE001 - a log line must never fail because of tracing
            return None


def set_trace_id_source(source: TraceIdSource | None) -> None:
    """Add the active span's trace id to every event (e.g. `Telemetry.current_trace_id`)."""
    _TraceIds.source = source


def event_data(record: logging.LogRecord) -> dict[str, Any]:
    """Return a record as ordered fields: time, level, logger, event, its fields, trace id."""
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    data: dict[str, Any] = {"time": stamp.replace("+00:00", "Z"),
                            "level": record.levelname.lower(), "logger": record.name,
                            "event": record.getMessage()}
    for key, value in getattr(record, _FIELDS, {}).items():
        # server error text can quote a row's value or a file's contents (SPEC 6)
        data.setdefault(key, redact.scrub_literals(value) if key == "error" and
                        isinstance(value, str) else value)
    trace_id = _TraceIds.current()
    if trace_id:
        data["trace_id"] = trace_id
    if record.exc_info:
        data["exception"] = logging.Formatter().formatException(record.exc_info)
    return data


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact.scrub(json.dumps(event_data(record), default=str, allow_nan=True))


class TextFormatter(logging.Formatter):
    """Format each record as `time level event key=value ...` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        data = event_data(record)
        head = f"{data.pop('time')} {data.pop('level'):<7} {data.pop('event')}"
        data.pop("logger")
        exception = data.pop("exception", None)
        tail = " ".join(f"{key}={_text_value(value)}" for key, value in data.items())
        line = f"{head}  {tail}" if tail else head
        return redact.scrub(f"{line}\n{exception}" if exception else line)


def _text_value(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=\n') else text


def configure(fmt: str | None = None, *, level: str = "info",
              stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record to `stream` (stderr): `fmt` json or text, else json off a terminal."""
    stream = sys.stderr if stream is None else stream
    chosen = fmt or ("text" if _is_terminal(stream) else "json")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    handler.set_name("dqmon")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "dqmon"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    # APScheduler logs two INFO lines per run and a WARNING per missed or skipped run, which
    # the daemon already logs as events of its own (dqmon.daemon.schedule.on_job_event).
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if level == "debug" else logging.ERROR)
    return handler


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
