"""`dqmon run`: one APScheduler job per table, health endpoints, signals, reload, shards.

SPEC sections 4 and 6, issue 4. The daemon never falls over: a dead warehouse gives
`dq.check.up=0` and a back-off, a bad reloaded file keeps the old jobs, SIGTERM drains.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Protocol

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from dqmon.catalog import register_tables
from dqmon.config import (
    CheckSpec,
    Config,
    ConfigError,
    Schedule,
    TableSpec,
    load_config,
    parse_duration,
)
from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.config.types import cron_trigger
from dqmon.discovery import with_discovered
from dqmon.errors import UsageError, WarehouseError
from dqmon.http import HealthServer, MetricsSource, ReadySource, parse_listen
from dqmon.logs import get_logger, set_trace_id_source
from dqmon.results import CheckResult
from dqmon.scan import ScanObserver, partition_label, scan_table
from dqmon.warehouse import Warehouse

log = get_logger(__name__)

MIN_MISFIRE_GRACE_S = 5  # APScheduler's default of 1 s skips jobs when many are due together
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0
CANCEL_WAIT_S = 3.0  # at most this part of the grace period goes to cancelled queries returning
CANCEL_POLL_S = 0.2
FLUSH_S = 3.0  # at most this part goes to the last telemetry flush
POLL_S = 0.2  # how often the main thread looks at pending signals
DISCOVERY_JOB = "dqmon-discovery"


class Reporter(Protocol):
    """What the daemon needs from `dqmon.telemetry.Telemetry`."""

    @property
    def observer(self) -> ScanObserver: ...

    def run_span(self) -> contextlib.AbstractContextManager[None]: ...

    def record(self, results: Sequence[CheckResult]) -> None: ...

    def retain(self, specs: Iterable[CheckSpec]) -> None: ...

    def shutdown(self, timeout_s: float = 3.0) -> None: ...


# --- shards ------------------------------------------------------------------------------------

def stable_hash(name: str) -> int:
    """Hash a table name the same way in every process (Python's `hash` is salted per run)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


@dataclass(frozen=True)
class Shard:
    """Replica `index` of `count`: it runs the tables whose stable hash % `count` is `index`."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """Parse `I/N` (0 <= I < N); None or an empty string means every table."""
        if not text or not text.strip():
            return cls()
        index, sep, count = text.strip().partition("/")
        if not sep or not index.isdigit() or not count.isdigit():
            raise ValueError(f"{text!r} is not I/N (e.g. 0/3)")
        if not 0 <= int(index) < int(count):
            raise ValueError(f"{text!r}: I must be between 0 and N-1")
        return cls(int(index), int(count))

    def owns(self, table: str) -> bool:
        """Tell whether this replica runs `table`."""
        return stable_hash(table) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


# --- schedules and back-off --------------------------------------------------------------------

def trigger_for(schedule: Schedule) -> BaseTrigger:
    """Return the APScheduler trigger of an `every <duration>` or cron schedule (cron in UTC)."""
    if schedule.interval_s is not None:
        return IntervalTrigger(seconds=schedule.interval_s, timezone=UTC)
    return cron_trigger(schedule.cron or "", "UTC")  # crontab(5) weekdays, day-of-month OR


def misfire_grace_s(schedule: Schedule) -> int:
    """Let a late run start up to one period late; past that the next run supersedes it."""
    return max(MIN_MISFIRE_GRACE_S, int(schedule.period_s()))


def backoff_s(failures: int, base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_MAX_S) -> float:
    """Return the wait before probing a warehouse again after `failures` failed attempts."""
    if failures <= 0:
        return 0.0
    return float(min(cap_s, base_s * 2 ** min(failures - 1, 32)))


class WarehouseGate:
    """A warehouse's outage state: while it is down, one probe per back-off interval goes out."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 jitter: Callable[[], float] = lambda: random.uniform(0.9, 1.1)) -> None:
        self._clock = clock
        self._jitter = jitter  # replicas that saw one outage should not probe in lockstep
        self._lock = threading.Lock()
        self._probing = False
        self.failures = 0
        self.next_attempt_s = 0.0
        self.last_error: str | None = None

    @property
    def down(self) -> bool:
        """Tell whether the last attempt found the warehouse unreachable."""
        return self.failures > 0

    def admit(self) -> bool:
        """Tell whether a run may contact the warehouse now (claims the probe when down)."""
        with self._lock:
            if self.failures == 0:
                return True
            if self._probing or self._clock() < self.next_attempt_s:
                return False
            self._probing = True
            return True

    def succeeded(self) -> bool:
        """Mark the warehouse reachable; return True when this ends an outage."""
        with self._lock:
            was_down = self.failures > 0
            self.failures, self._probing, self.last_error = 0, False, None
            return was_down

    def failed(self, error: str) -> float:
        """Record an unreachable warehouse; return the back-off until the next probe."""
        with self._lock:
            self.last_error = error
            if self.failures == 0 or self._probing:  # concurrent failures count as one
                self.failures += 1
                self.next_attempt_s = self._clock() + backoff_s(self.failures) * self._jitter()
            self._probing = False
            return max(0.0, self.next_attempt_s - self._clock())


class Runs:
    """Counts the table runs in progress so shutdown can wait for them."""

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._running = 0

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


# --- jobs --------------------------------------------------------------------------------------

@dataclass(eq=False)
class WarehouseSlot:
    """A warehouse, its outage gate and the thread pool (max_connections wide) its scans run in."""

    warehouse: Warehouse
    executor: str
    gate: WarehouseGate = field(default_factory=WarehouseGate)
    role_said: bool = False  # the writable-role warning is logged once per warehouse

    def say_role(self) -> None:
        """Warn once when the connected role can write to tables (SPEC 6, layer 1)."""
        role = self.warehouse.role
        if role is not None and role.can_write and not self.role_said:
            self.role_said = True
            log.warning("the warehouse role can write to tables; a read-only role is safer",
                        warehouse=self.warehouse.name, role=role.role)


@dataclass(frozen=True, eq=False)
class TableJob:
    """What one scheduled job runs: a table on its warehouse (identity marks the generation)."""

    table: TableSpec
    slot: WarehouseSlot


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


def log_results(job: TableJob, results: Sequence[CheckResult], duration_s: float,
                scanned: bool = True) -> None:
    """Log one event per table run, with each distinct error once (debug while it backs off)."""
    errors = sorted({r.error for r in results if r.error})
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error")}
    fields: dict[str, object] = {"table": job.table.name, "warehouse": job.slot.warehouse.name,
                                 "checks": len(results), "passed": counts["pass"],
                                 "failed": counts["fail"], "errors": counts["error"],
                                 "duration_s": round(duration_s, 3)}
    if counts["fail"]:
        fields["failing"] = [r.check for r in results if r.status == "fail"]
    changes = {r.check: dict(r.details) for r in results if r.details}
    if changes:
        fields["changes"] = changes  # SPEC 9: schema_change names the columns in the log event
    if not scanned:  # the outage was logged once already; don't repeat it for every table
        log.debug("table skipped: warehouse down", **fields, error="; ".join(errors))
    elif errors:
        log.warning("table checked", **fields, error="; ".join(errors))
    else:
        log.info("table checked", **fields)


# --- the daemon --------------------------------------------------------------------------------

class Daemon:
    """Keeps one job per table of its shard scheduled, and swaps them on reload."""

    def __init__(self, config_path: str, telemetry: Reporter, *, shard: Shard = Shard()) -> None:
        self.config_path = config_path
        self.shard = shard
        self._telemetry = telemetry
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._scheduler.add_listener(_on_job_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES |
                                     EVENT_JOB_ERROR)
        self._slots: dict[str, WarehouseSlot] = {}
        self._jobs: dict[str, TableJob] = {}
        self._table_locks: dict[str, threading.Lock] = {}
        self._publish = threading.Lock()  # a reload and a finishing run never interleave
        self._runs = Runs()
        self._loaded = False
        self._stopping = False
        self._applying = threading.Lock()
        self._source: Config | None = None  # as loaded, before discovery
        self._listed: set[str] = set()
        self._tables: tuple[TableSpec, ...] = ()  # listed and discovered, as last applied
        self._refresh_s: float | None = None
        self._generation = 0

    # -- lifecycle

    def start(self, config: Config) -> None:
        """Schedule the config's tables (first runs right away) and start the scheduler."""
        self.apply(config)
        self._scheduler.start()

    def ready(self) -> bool:
        """Tell whether the config is loaded and the scheduler is running (for /readyz)."""
        return self._loaded and self._scheduler.running and not self._stopping

    def stop(self, wait_s: float, cancel_wait_s: float = CANCEL_WAIT_S) -> bool:
        """Stop new runs, wait out running ones (then cancel them); True when all finished."""
        self._stopping = True
        self._scheduler.shutdown(wait=False)
        finished = self._runs.wait_idle(wait_s)
        if not finished:
            log.warning("cancelling running queries", waited_s=round(wait_s, 1),
                        queries=self._cancel_queries())
            finished = self._cancel_until_idle(cancel_wait_s)
        if finished:
            for slot in self._slots.values():
                slot.warehouse.dispose()
        return finished

    def _cancel_until_idle(self, timeout_s: float) -> bool:
        """Keep cancelling: a scan's next query, or one not yet started when asked, ends too."""
        deadline = time.monotonic() + timeout_s
        while not self._runs.wait_idle(min(CANCEL_POLL_S, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return False
            self._cancel_queries()
        return True

    def _cancel_queries(self) -> int:
        """Cancel every running query of every warehouse; return how many were asked."""
        return sum(slot.warehouse.cancel_running() for slot in list(self._slots.values()))

    def reload(self) -> bool:
        """Re-read the config file; any bad file is logged once and the running jobs stay."""
        config = self._read_config()
        if config is None:
            return False
        try:
            self.apply(config)
        except Exception as exc:  # noqa: BLE001 - a reload must never take the daemon down
            log.error("reload failed: the old config keeps running", file=self.config_path,
                      error=repr(exc))
            return False
        return True

    def _read_config(self) -> Config | None:
        """Load the config file, or log why it is rejected and return None (never raises)."""
        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            problems = [str(p) for p in exc.problems]
        except Exception as exc:  # noqa: BLE001 - e.g. RecursionError, MemoryError: a bad file too
            problems = [f"{self.config_path}:1: cannot load the file ({type(exc).__name__})"]
        log.error("reload rejected: the old config keeps running", file=self.config_path,
                  problems=problems)
        return None

    # -- jobs

    def apply(self, config: Config) -> None:
        """Make the jobs match `config` (this shard's tables); a build failure changes nothing."""
        with self._applying:  # a SIGHUP reload and a discovery refresh never interleave
            self._apply(config)
        self._schedule_discovery(config)

    def refresh_discovery(self) -> None:
        """Read the discovered tables again: new ones start, dropped ones stop (SPEC 9)."""
        if self._source is None or self._stopping:
            return
        try:
            self.apply(self._source)
        except Exception as exc:  # noqa: BLE001 - the tables found before keep running
            log.error("discovery refresh failed", error=repr(exc))

    def _schedule_discovery(self, config: Config) -> None:
        if not config.discover:
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(DISCOVERY_JOB)
            self._refresh_s = None
            return
        refresh_s = min(block.refresh for block in config.discover)
        trigger = IntervalTrigger(seconds=refresh_s, timezone=UTC)
        if self._refresh_s != refresh_s:
            self._scheduler.add_job(self.refresh_discovery, trigger, id=DISCOVERY_JOB,
                                    name="discovery", replace_existing=True, max_instances=1,
                                    coalesce=True, misfire_grace_time=int(refresh_s))
            self._refresh_s = refresh_s

    def _apply(self, source: Config) -> None:
        slots = self._slots_for(source)
        config = with_discovered(source, {n: s.warehouse for n, s in slots.items()},
                                 [t for t in self._tables if t.name not in self._listed])
        self._source, self._listed = source, {t.name for t in source.tables}
        self._tables = config.tables
        tables = [t for t in config.tables if self.shard.owns(t.name)]
        register_tables(tables, {n: s.warehouse for n, s in slots.items()})
        try:
            jobs = {t.name: self._job_for(t, slots[t.warehouse]) for t in tables}
            triggers = {name: _trigger_of(job) for name, job in jobs.items()
                        if job is not self._jobs.get(name)}
        except Exception:
            self._retire(self._fresh(slots))
            raise
        with self._publish:
            removed = [name for name in self._jobs if name not in jobs]
            for name in removed:
                with contextlib.suppress(JobLookupError):
                    self._scheduler.remove_job(name)
            changed = list(triggers)
            for name, trigger in triggers.items():
                self._schedule(jobs[name], trigger)
            self._jobs = jobs
            self._telemetry.retain(spec for t in tables for spec in t.checks)
            self._retire({k: v for k, v in self._slots.items() if slots.get(k) is not v})
            self._slots, self._loaded = slots, True
        log.info("config loaded", file=config.file, shard=str(self.shard), tables=len(jobs),
                 of_tables=len(config.tables), scheduled=len(changed), removed=len(removed))
        if not jobs:
            log.warning("no table to check in this shard", shard=str(self.shard),
                        of_tables=len(config.tables))

    def _slots_for(self, config: Config) -> dict[str, WarehouseSlot]:
        """Keep each warehouse whose settings did not change (its pool and its outage state)."""
        slots: dict[str, WarehouseSlot] = {}
        try:
            for name, settings in config.warehouses.items():
                old = self._slots.get(name)
                if old is not None and old.warehouse.settings == settings:
                    slots[name] = old
                else:
                    slots[name] = self._new_slot(name, settings)
        except Exception:
            self._retire(self._fresh(slots))  # a warehouse that fails to build leaks no pool
            raise
        return slots

    def _fresh(self, slots: dict[str, WarehouseSlot]) -> dict[str, WarehouseSlot]:
        """Return the slots built for a new config, not kept from the running one."""
        return {k: v for k, v in slots.items() if self._slots.get(k) is not v}

    def _new_slot(self, name: str, settings: WarehouseSettings) -> WarehouseSlot:
        warehouse = Warehouse(name, settings)
        self._generation += 1
        alias = f"{name}#{self._generation}"
        # One pool per warehouse, max_connections wide: a slow warehouse never starves another.
        self._scheduler.add_executor(ThreadPoolExecutor(settings.max_connections), alias)
        return WarehouseSlot(warehouse, alias)

    def _job_for(self, table: TableSpec, slot: WarehouseSlot) -> TableJob:
        old = self._jobs.get(table.name)
        if old is not None and old.table == table and old.slot is slot:
            return old
        return TableJob(table, slot)

    def _schedule(self, job: TableJob, trigger: tuple[BaseTrigger, int, datetime]) -> None:
        self._scheduler.add_job(
            self._run, trigger[0], args=(job,), id=job.table.name,
            name=f"table {job.table.name}", executor=job.slot.executor,
            replace_existing=True, next_run_time=trigger[2],
            max_instances=1, coalesce=True, misfire_grace_time=trigger[1])

    def _retire(self, slots: dict[str, WarehouseSlot]) -> None:
        """Shut unused pools down once their running jobs end, off the main thread."""
        for slot in slots.values():
            threading.Thread(target=self._retire_slot, args=(slot,), daemon=True,
                             name=f"dqmon-retire-{slot.executor}").start()

    def _retire_slot(self, slot: WarehouseSlot) -> None:
        with contextlib.suppress(KeyError):
            self._scheduler.remove_executor(slot.executor, shutdown=True)
        slot.warehouse.dispose()

    # -- one run

    def _run(self, job: TableJob) -> None:
        """Run one table's checks and publish them (never raises)."""
        lock = self._table_locks.setdefault(job.table.name, threading.Lock())
        if self._stopping:
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
        results, scanned = check_table_or_error(job, self._telemetry.observer)
        job.slot.say_role()
        with self._publish:
            if self._jobs.get(job.table.name) is not job:
                return  # reloaded away while running: its checks are no longer reported
            self._telemetry.record(results)
        log_results(job, results, time.perf_counter() - started, scanned)


def _trigger_of(job: TableJob) -> tuple[BaseTrigger, int, datetime]:
    """Build a job's trigger, misfire grace and first run (a reload can fail before a swap).

    SPEC 11: runs are spread over the period by a stable hash of the table's name, so 10,000
    tables never fall due in the same second, and every later run keeps its offset.
    """
    schedule, now = job.table.schedule, datetime.now(UTC)
    if schedule.interval_s is None:
        return trigger_for(schedule), misfire_grace_s(schedule), now
    first = now + timedelta(seconds=spread_s(job.table.name, schedule.interval_s))
    trigger = IntervalTrigger(seconds=schedule.interval_s, start_date=first, timezone=UTC)
    return trigger, misfire_grace_s(schedule), first


def spread_s(name: str, period_s: float) -> float:
    """Return a table's stable offset within its period (the same in every process)."""
    return period_s * (stable_hash(name) % 4096) / 4096


def _on_job_event(event: JobEvent) -> None:
    """Say out loud what APScheduler would otherwise skip silently."""
    if event.code == EVENT_JOB_MISSED:
        log.warning("run missed: too late to start", table=event.job_id,
                    scheduled=str(getattr(event, "scheduled_run_time", "")))
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        log.warning("run skipped: the previous run is still going", table=event.job_id)
    else:
        log.error("job failed", table=event.job_id, error=repr(getattr(event, "exception", "")))


# --- the process -------------------------------------------------------------------------------

class Signals:
    """Turns SIGTERM/SIGINT into a stop request and SIGHUP into a reload request."""

    def __init__(self) -> None:
        self.pending: list[int] = []  # list.append is safe inside a signal handler

    def install(self) -> None:
        """Install the handlers (main thread only)."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.pending.append(signum)

    def take(self) -> list[int]:
        """Return and forget the signals received since the last call."""
        taken, self.pending[:] = list(self.pending), []
        return taken


def wait_for_stop(daemon: Daemon, signals: Signals) -> str:
    """Serve until SIGTERM or SIGINT, reloading on each SIGHUP; return the stopping signal."""
    while True:
        for signum in signals.take():
            if signum == signal.SIGHUP:
                log.info("reload requested", signal="SIGHUP", file=daemon.config_path)
                daemon.reload()
            else:
                return signal.Signals(signum).name
        time.sleep(POLL_S)


def exit_now_if_stuck(finished: bool) -> None:
    """Leave without joining worker threads whose queries would not end (the exit stays 0)."""
    if finished:
        return
    log.warning("exiting with queries still running")
    sys.stderr.flush()
    os._exit(0)


@dataclass(frozen=True)
class Options:
    """What `dqmon run` was asked for."""

    config_path: str
    listen: tuple[str, int] = ("0.0.0.0", 9464)
    shard: Shard = Shard()
    grace_s: float = 20.0
    export: bool = True


def parse_options(config_path: str, listen: str, shard: str | None, grace_period: str, *,
                  export: bool = True) -> Options:
    """Check the command line's values; a bad one is a UsageError (exit 2)."""
    try:
        address = parse_listen(listen)
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None
    try:
        chosen = Shard.parse(shard)
    except ValueError as exc:
        raise UsageError(f"--shard / DQMON_SHARD: {exc}") from None
    try:
        grace_s = parse_duration(grace_period)
    except ValueError as exc:
        raise UsageError(f"--grace-period: {exc}") from None
    return Options(config_path, address, chosen, grace_s, export)


def grace_budget(grace_s: float) -> tuple[float, float, float]:
    """Split the grace period into (wait for runs, wait for cancelled queries, flush telemetry)."""
    flush_s = min(FLUSH_S, grace_s / 4)
    cancel_s = min(CANCEL_WAIT_S, grace_s / 4)
    return grace_s - flush_s - cancel_s, cancel_s, flush_s


def serve(options: Options) -> int:
    """Run the daemon until SIGTERM/SIGINT; return the exit code (0)."""
    from dqmon.telemetry import Telemetry

    config = load_config(options.config_path)  # a bad file at start is exit 2, not a daemon
    telemetry = Telemetry(daemon=True, export=options.export)
    set_trace_id_source(telemetry.current_trace_id)
    daemon = Daemon(options.config_path, telemetry, shard=options.shard)
    signals = Signals()
    signals.install()
    server = _listen(options.listen, telemetry.metrics_text, daemon.ready)
    server.start()
    daemon.start(config)
    log.info("daemon started", listen=f"{options.listen[0]}:{server.port}", pid=os.getpid(),
             shard=str(options.shard), grace_period_s=options.grace_s)
    stopped_by = wait_for_stop(daemon, signals)
    wait_s, cancel_s, flush_s = grace_budget(options.grace_s)
    log.info("stopping", signal=stopped_by, grace_period_s=options.grace_s)
    finished = daemon.stop(wait_s, cancel_s)
    telemetry.shutdown(timeout_s=flush_s)
    server.stop()
    log.info("stopped", signal=stopped_by, clean=finished)
    exit_now_if_stuck(finished)
    return 0


def _listen(address: tuple[str, int], metrics: MetricsSource, ready: ReadySource) -> HealthServer:
    try:
        return HealthServer(address, metrics, ready)
    except OSError as exc:
        raise UsageError(f"--listen {address[0]}:{address[1]}: {exc.strerror or exc}") from None
