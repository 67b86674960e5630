"""OpenLineage: one START and one COMPLETE (or FAIL) RunEvent per table run (SPEC 13).

The only package that talks OpenLineage: `naming` (dataset ids per dialect) and `events`
(results → RunEvents) are pure; this module owns the `openlineage-python` client and sends
on a thread of its own, so a dead endpoint costs a run at most `timeout_s` and one warning
per outage, never a result or an exit code (SPEC 3, "a dead endpoint behaves like a dead
collector"). `openlineage` is imported only when lineage is configured: `import dqmon.cli`
never loads it (issue 11).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dqmon.lineage.events import (
    DEFAULT_JOB_NAMESPACE,
    PRODUCER,
    TableRun,
    expected,
    number_text,
    run_events,
)
from dqmon.lineage.naming import dataset_id
from dqmon.outages import Outages

if TYPE_CHECKING:
    from openlineage.client.event_v2 import RunEvent

    from dqmon.config import TableSpec
    from dqmon.results import CheckResult
    from dqmon.scan import ScanObserver, ScanRecorder
    from dqmon.warehouse import Warehouse

log = logging.getLogger("dqmon.lineage")  # stdlib, as telemetry: run-once prints the message

SEND_THREAD = "dqmon-lineage"
QUEUE_EVENTS = 1_000  # a daemon whose endpoint is down drops events beyond these
# The client's own retry and failure records; `_Health` reports instead (once per outage).
_CLIENT_LOGGERS = ("urllib3.connectionpool", "openlineage.client.client",
                   "openlineage.client.transport.http", "openlineage.client.transport.composite")


# --- when lineage is on ------------------------------------------------------------------------

def configured(env: Mapping[str, str] = os.environ, home: Path | None = None,
               cwd: Path | None = None) -> bool:
    """Tell whether OpenLineage is configured: OPENLINEAGE_URL, its variables or config file."""
    if env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OPENLINEAGE_URL") or env.get("OPENLINEAGE_CONFIG"):
        return True
    if any(key.startswith("OPENLINEAGE__TRANSPORT__") for key in env):
        return True
    files = ((cwd or Path.cwd()) / "openlineage.yml",
             (home or Path.home()) / ".openlineage" / "openlineage.yml")
    return any(path.is_file() for path in files)


__all__ = ["DEFAULT_JOB_NAMESPACE", "PRODUCER", "Lineage", "NoLineage", "RowsSeen", "TableRun",
           "configured", "dataset_id", "expected", "from_environment", "number_text",
           "run_events", "session", "table_runs"]


# --- rows in scope ------------------------------------------------------------------------------

class RowsSeen:
    """A scan observer that notes each table's rows in scope in `rows`, then hands on."""

    def __init__(self, inner: ScanObserver, rows: dict[str, int]) -> None:
        self._inner = inner
        self._rows = rows  # by table name: a table's runs never overlap (SPEC 6)

    @contextlib.contextmanager
    def scan(self, table: TableSpec, warehouse: Warehouse,
             partition: str | None) -> Iterator[ScanRecorder]:
        """Open the inner recorder and note the rows it is told about."""
        self._rows.pop(table.name, None)  # a scan that fails this time counted nothing
        with self._inner.scan(table, warehouse, partition) as recorder:
            yield _Counting(recorder, self._rows, table.name)


class _Counting:
    def __init__(self, inner: ScanRecorder, rows: dict[str, int], table: str) -> None:
        self._inner, self._rows, self._table = inner, rows, table

    def query(self, sql: str) -> None:
        self._inner.query(sql)

    def rows(self, count: int) -> None:
        self._rows[self._table] = count
        self._inner.rows(count)

    def error(self, message: str) -> None:
        self._inner.error(message)


# --- sending ----------------------------------------------------------------------------------

class Client(Protocol):
    """What the sender needs of `openlineage.client.OpenLineageClient`."""

    def emit(self, event: RunEvent) -> None: ...


class _Health:
    """Remembers whether the endpoint is failing, to warn once per outage (as telemetry does)."""

    def __init__(self) -> None:
        self.target = "openlineage"  # set once the client says where it sends
        self._outages = Outages()

    def report(self, ok: bool, error: str = "") -> None:
        """Record one send's outcome; log only when the state changes."""
        changed = self._outages.changed("openlineage", ok)
        if changed and not ok:
            log.warning("lineage: export to %s failed (%s); OpenLineage events are dropped "
                        "until it answers (the checks' results and exit code are unaffected)",
                        self.target, error)
        elif changed:
            log.info("lineage: export to %s works again", self.target)


class Lineage:
    """Sends each table run's events on a thread of its own; `close` waits at most `timeout_s`.

    The thread also builds the client (`connect`), so its imports (~0.7 s) overlap the scan.
    """

    def __init__(self, connect: Callable[[], Client], *,
                 job_namespace: str = DEFAULT_JOB_NAMESPACE) -> None:
        self._connect, self._job_namespace = connect, job_namespace
        self._health = _Health()
        self._queue: queue.Queue[RunEvent | None] = queue.Queue(QUEUE_EVENTS)
        self._sent_by = time.monotonic()
        self._rows: dict[str, int] = {}
        self._thread = threading.Thread(target=self._send_all, name=SEND_THREAD, daemon=True)
        self._thread.start()

    def observe(self, observer: ScanObserver) -> RowsSeen:
        """Wrap a run's scan observer to learn each table's rows in scope."""
        return RowsSeen(observer, self._rows)

    def publish(self, tables: Iterable[TableSpec], warehouses: Mapping[str, Warehouse],
                results: Sequence[CheckResult]) -> None:
        """Queue the events of each table that has results (never raises, never blocks)."""
        try:
            rows = {t.name: self._rows.pop(t.name) for t in tables if t.name in self._rows}
            for run in table_runs(tables, warehouses, results, rows):
                for event in run_events(run, self._job_namespace):
                    self._queue.put_nowait(event)
        except queue.Full:
            self._health.report(False, "queue full")
        except Exception as exc:  # noqa: BLE001 - lineage never changes a run (SPEC 13)
            log.error("lineage: events not built: %r", exc)
        self._sent_by = time.monotonic()

    def close(self, timeout_s: float = 3.0) -> None:
        """Send what is queued, waiting at most `timeout_s` after the last publish."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(max(0.0, self._sent_by + timeout_s - time.monotonic()))
        if self._thread.is_alive():  # still retrying: the endpoint did not answer in time
            self._health.report(False, f"no answer within {timeout_s:g}s")

    def _send_all(self) -> None:
        client = self._client()
        while (event := self._queue.get()) is not None:
            if client is not None:
                self._send(client, event)

    def _client(self) -> Client | None:
        try:
            client = self._connect()
        except Exception as exc:  # noqa: BLE001 - a bad lineage setting costs lineage only
            log.warning("lineage: cannot set up the OpenLineage client (%s); sending nothing",
                        str(exc) or type(exc).__name__)
            return None
        self._health.target = target_of(client)
        return client

    def _send(self, client: Client, event: RunEvent) -> None:
        try:
            client.emit(event)
        except Exception as exc:  # noqa: BLE001 - any failure is the endpoint's outage
            self._health.report(False, str(exc) or type(exc).__name__)
        else:
            self._health.report(True)


class NoLineage:
    """Lineage switched off: observes nothing, sends nothing."""

    def observe(self, observer: ScanObserver) -> ScanObserver:
        """Return the observer unchanged."""
        return observer

    def publish(self, tables: Iterable[TableSpec], warehouses: Mapping[str, Warehouse],
                results: Sequence[CheckResult]) -> None:
        """Do nothing."""

    def close(self, timeout_s: float = 3.0) -> None:
        """Do nothing."""


def table_runs(tables: Iterable[TableSpec], warehouses: Mapping[str, Warehouse],
               results: Sequence[CheckResult], rows: Mapping[str, int]) -> list[TableRun]:
    """Group a run's results by table, with each table's dataset and rows in scope."""
    runs = []
    for table in tables:
        mine = [r for r in results if r.table == table.name]
        if mine:
            namespace, name = dataset_id(warehouses[table.warehouse].url, table.schema,
                                         table.table)
            runs.append(TableRun(table, namespace, name, mine, rows.get(table.name)))
    return runs


def from_environment(env: Mapping[str, str] = os.environ) -> Lineage | NoLineage:
    """Return the run's sender when the client's own configuration is set, else `NoLineage`."""
    if not configured(env):
        return NoLineage()
    namespace = env.get("OPENLINEAGE_NAMESPACE") or DEFAULT_JOB_NAMESPACE
    return Lineage(connect_client, job_namespace=namespace)


def connect_client() -> Client:
    """Build the client from its own configuration (URL, variables, file); bound its retries."""
    try:
        from openlineage.client import OpenLineageClient
    except ImportError:
        raise RuntimeError("openlineage-python is not installed: "
                           "pip install 'dqmon[lineage]'") from None
    quiet_client_logs()
    client = OpenLineageClient()
    _bound_retries(client)
    _no_source_code_location(client)
    return client


def _no_source_code_location(client: Any) -> None:
    """Never send the working directory's git remote: its URL may carry a token (SPEC 6)."""
    facets = getattr(getattr(client, "config", None), "facets", None)
    location = getattr(facets, "source_code_location", None)
    if location is not None:
        location.disabled = True


# The HTTP transport's default retries (5 connection retries, backoff up to 4.8 s) outlast
# run-once's wait; when the user set none, one quick retry keeps a refused send fast.
_RETRY = {"total": 1, "connect": 1, "read": 0, "backoff_factor": 0.2,
          "status_forcelist": [500, 502, 503, 504], "allowed_methods": ["HEAD", "POST"]}


def _bound_retries(client: Any) -> None:
    from openlineage.client.transport.http_common import DEFAULT_RETRY_CONFIG

    config = getattr(client.transport, "config", None)
    if getattr(config, "retry", None) is DEFAULT_RETRY_CONFIG:  # the default, not the user's
        config.retry = dict(_RETRY)  # type: ignore[union-attr]


def target_of(client: Any) -> str:
    """Name where events go without credentials: `host:port` for HTTP, else the transport."""
    from urllib.parse import urlsplit

    transport = getattr(client, "transport", None)
    url = getattr(transport, "url", None)
    if isinstance(url, str) and urlsplit(url).hostname:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    return str(getattr(transport, "kind", "openlineage"))


@contextlib.contextmanager
def session(enabled: bool, timeout_s: float = 3.0) -> Iterator[Lineage | NoLineage]:
    """Yield a run's lineage (off with --no-export or no config); close it at most `timeout_s`."""
    lineage = from_environment() if enabled else NoLineage()
    try:
        yield lineage
    finally:
        lineage.close(timeout_s)


def quiet_client_logs() -> None:
    """Keep the client's INFO lines, and its send thread's warnings, off stderr."""
    logging.getLogger("openlineage").setLevel(logging.WARNING)
    for name in _CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NotFromSender) for f in logger.filters):
            logger.addFilter(_NotFromSender())


class _NotFromSender(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != SEND_THREAD
