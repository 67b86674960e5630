"""One table's run: scan unless its warehouse backs off, learn outages, publish the results.

SPEC 6: a run never raises; an outage or a bug becomes `error` results (`dq.check.up=0`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from dqmon.config import CheckSpec, TableSpec
from dqmon.daemon.jobs import Published, TableJob
from dqmon.daemon.runlog import log_results
from dqmon.errors import WarehouseError
from dqmon.lineage import Lineage, NoLineage
from dqmon.lineage import from_environment as lineage_from_environment
from dqmon.logs import get_logger
from dqmon.results import CheckResult
from dqmon.scan import ScanObserver, partition_label, scan_table
from dqmon.warehouse import Warehouse

log = get_logger("dqmon.daemon")  # one logger name for all the daemon's events (docs/daemon.md)


class Reporter(Protocol):
    """What the daemon needs from `dqmon.telemetry.Telemetry`."""

    @property
    def observer(self) -> ScanObserver: ...

    def run_span(self) -> contextlib.AbstractContextManager[None]: ...

    def record(self, results: Sequence[CheckResult]) -> None: ...

    def retain(self, specs: Iterable[CheckSpec]) -> None: ...

    def shutdown(self, timeout_s: float = 3.0) -> None: ...


class Runs:
    """Counts the table runs in progress so shutdown can wait for them; says when it began."""

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._running = 0
        self.stopping = False  # set once by shutdown: no new run starts

    @contextlib.contextmanager
    def tracking(self) -> Iterator[None]:
        """Count a run for as long as the block lasts."""
        with self._idle:
            self._running += 1
        try:
            yield
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no run is in progress; return False if `timeout_s` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout=timeout_s)


def unavailable_results(table: TableSpec, warehouse: Warehouse, error: str,
                        now_s: float) -> list[CheckResult]:
    """Return one error result per check, without contacting the warehouse."""
    return error_results(table, warehouse, f"warehouse {warehouse.name} unavailable: {error}",
                         now_s)


def error_results(table: TableSpec, warehouse: Warehouse, message: str,
                  now_s: float) -> list[CheckResult]:
    """Return one `error` result per check of `table`, saying `message`."""
    partition = partition_label(table, warehouse, lambda: now_s)
    return [CheckResult(spec, warehouse.name, partition, None, "error", 0.0, now_s, message)
            for spec in table.checks]


def check_table_or_error(job: TableJob, observer: ScanObserver,
                         clock: Callable[[], float] = time.time) -> tuple[list[CheckResult], bool]:
    """Run `check_table`; an exception nobody expected becomes error results (SPEC 6: up=0)."""
    try:
        return check_table(job, observer, clock)
    except Exception as exc:  # noqa: BLE001 - the table's checks say it, the schedule goes on
        message = f"unexpected {type(exc).__name__}: {exc}"
        return error_results(job.table, job.slot.warehouse, message, clock()), True


def check_table(job: TableJob, observer: ScanObserver,
                clock: Callable[[], float] = time.time) -> tuple[list[CheckResult], bool]:
    """Scan a table unless its warehouse is down and backing off; learn outages from the scan.

    Return the results and whether the table was scanned (False: its warehouse is down).
    """
    table, warehouse, gate = job.table, job.slot.warehouse, job.slot.gate
    if not gate.admit() or (gate.down and not _probe(job)):
        return unavailable_results(table, warehouse, gate.last_error or "down", clock()), False
    results = scan_table(table, warehouse, clock=clock, observer=observer)
    if results and all(r.status == "error" for r in results):
        _probe(job)  # every check failed: the table's SQL, or the warehouse itself?
    return results, True


def _probe(job: TableJob) -> bool:
    """Ping the warehouse and update its gate; return whether it answered."""
    warehouse, gate = job.slot.warehouse, job.slot.gate
    try:
        warehouse.ping()
    except Exception as exc:  # noqa: BLE001 - any failed probe must release the gate (issue 8)
        first = not gate.down
        error = str(exc) if isinstance(exc, WarehouseError) else \
            f"unexpected {type(exc).__name__}: {exc}"
        wait_s = gate.failed(error)
        if first:
            log.warning("warehouse unavailable", warehouse=warehouse.name, error=error,
                        url=warehouse.masked_url)
        log.info("warehouse back-off", warehouse=warehouse.name, failures=gate.failures,
                 next_probe_s=round(wait_s, 1))
        return False
    if gate.succeeded():
        log.info("warehouse recovered", warehouse=warehouse.name)
    return True


class TableRunner:
    """Runs a table's job, one run per table at a time, and publishes it unless reloaded away."""

    def __init__(self, telemetry: Reporter, published: Published, runs: Runs,
                 lineage: Lineage | NoLineage | None = None) -> None:
        self._telemetry = telemetry
        self._published = published
        self._runs = runs
        # SPEC 13: OpenLineage events beside the gauges, only when OPENLINEAGE_* configure it
        self._lineage = lineage_from_environment() if lineage is None else lineage
        self._table_locks: dict[str, threading.Lock] = {}

    def run(self, job: TableJob) -> None:
        """Run one table's checks and publish them (never raises)."""
        lock = self._table_locks.setdefault(job.table.name, threading.Lock())
        if self._runs.stopping:
            return
        if not lock.acquire(blocking=False):  # a run from before a reload is still going
            log.warning("run skipped: the previous run is still going", table=job.table.name)
            return
        try:
            with self._runs.tracking(), self._telemetry.run_span():
                self._run_locked(job)
        except Exception as exc:  # noqa: BLE001 - a bug in one run must not stop the schedule
            log.error("table run crashed", table=job.table.name, error=repr(exc))
        finally:
            lock.release()

    def _run_locked(self, job: TableJob) -> None:
        started = time.perf_counter()
        observer = self._lineage.observe(self._telemetry.observer)
        results, scanned = check_table_or_error(job, observer)
        job.slot.say_role()
        with self._published.lock:
            if self._published.jobs.get(job.table.name) is not job:
                return  # reloaded away while running: its checks are no longer reported
            self._telemetry.record(results)
        warehouse = job.slot.warehouse
        self._lineage.publish([job.table], {warehouse.name: warehouse}, results)
        log_results(job, results, time.perf_counter() - started, scanned)
