"""Run one table's checks: one aggregate scan per scope, then uniqueness, schema, custom.

Never raises: a failing query becomes `status="error"` results for the checks it answers.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from dqmon import checks
from dqmon.checks.timeutil import Slice, current_slice
from dqmon.config.resolved import AGGREGATE_KINDS, CheckSpec, TableSpec
from dqmon.errors import WarehouseError
from dqmon.results import CheckResult, verdict
from dqmon.warehouse import Warehouse

Clock = Callable[[], float]


class ScanRecorder(Protocol):
    """Receives what happens inside one scan (the telemetry module makes it a span)."""

    def query(self, sql: str) -> None: ...

    def rows(self, count: int) -> None: ...

    def error(self, message: str) -> None: ...


class ScanObserver(Protocol):
    """Opens a recorder around each table scan."""

    def scan(self, table: TableSpec, warehouse: Warehouse,
             partition: str | None) -> contextlib.AbstractContextManager[ScanRecorder]: ...


class _NullRecorder:
    def query(self, sql: str) -> None:
        pass

    def rows(self, count: int) -> None:
        pass

    def error(self, message: str) -> None:
        pass


class NullObserver:
    """An observer that records nothing."""

    @contextlib.contextmanager
    def scan(self, table: TableSpec, warehouse: Warehouse,
             partition: str | None) -> Iterator[ScanRecorder]:
        yield _NullRecorder()


@dataclass
class _Run:
    table: TableSpec
    warehouse: Warehouse
    scope: checks.Scope
    recorder: ScanRecorder
    clock: Clock
    results: list[CheckResult] = field(default_factory=list)
    unreachable: WarehouseError | None = None  # once the connection fails, stop trying

    @property
    def partition(self) -> str | None:
        return self.scope.slice.label if self.scope.slice else None

    def add(self, spec: CheckSpec, value: float | None, started: float, duration_s: float,
            error: str | None = None) -> None:
        status = "error" if error is not None or value is None else verdict(spec, value)
        self.results.append(CheckResult(spec, self.warehouse.name, self.partition, value,
                                        status, duration_s, started, error))


def scan_table(table: TableSpec, warehouse: Warehouse, *,
               only: Sequence[CheckSpec] | None = None, slice_: Slice | None = None,
               clock: Clock = time.time,
               observer: ScanObserver | None = None) -> list[CheckResult]:
    """Run `table`'s checks (or `only` those) and return one result per check."""
    specs = list(table.checks if only is None else only)
    scope = make_scope(table, warehouse, slice_, clock)
    label = scope.slice.label if scope.slice else None
    with (observer or NullObserver()).scan(table, warehouse, label) as recorder:
        run = _Run(table, warehouse, scope, recorder, clock)
        aggregates = [s for s in specs if s.kind in AGGREGATE_KINDS]
        if aggregates:
            _run_aggregates(run, aggregates)
        for spec in specs:
            if spec.kind not in AGGREGATE_KINDS:
                _run_single(run, spec)
    order = {id(s): i for i, s in enumerate(specs)}
    return sorted(run.results, key=lambda r: order[id(r.spec)])


def make_scope(table: TableSpec, warehouse: Warehouse, slice_: Slice | None,
               clock: Clock = time.time) -> checks.Scope:
    """Return the scope a scan covers: the given slice, else the current one by `clock`."""
    if table.partition is not None and slice_ is None:
        part = table.partition
        slice_ = current_slice(clock(), part.granularity, part.lag, warehouse.tz)
    return checks.Scope(table, warehouse.dialect, warehouse.tz,
                        slice_ if table.partition is not None else None)


def _run_aggregates(run: _Run, specs: list[CheckSpec]) -> None:
    started, t0 = run.clock(), time.perf_counter()
    try:
        _raise_if_unreachable(run)
        query = checks.aggregate_query(run.scope, specs)
        run.recorder.query(run.warehouse.compile(query))
        row = run.warehouse.fetch_one(query)
        run.recorder.rows(int(row.get("dq_rows") or 0))
        values = checks.evaluate_aggregate(run.scope, specs, row)
    except (WarehouseError, ValueError, ArithmeticError) as exc:
        _fail_all(run, specs, started, time.perf_counter() - t0, exc)
        return
    elapsed = time.perf_counter() - t0
    for spec, value in zip(specs, values, strict=True):
        run.add(spec, value, started, elapsed)


def _run_single(run: _Run, spec: CheckSpec) -> None:
    started, t0 = run.clock(), time.perf_counter()
    try:
        _raise_if_unreachable(run)
        value = _single_value(run, spec)
    except (WarehouseError, ValueError, ArithmeticError) as exc:
        _fail_all(run, [spec], started, time.perf_counter() - t0, exc)
        return
    run.add(spec, value, started, time.perf_counter() - t0)


def _single_value(run: _Run, spec: CheckSpec) -> float:
    if spec.kind == "uniqueness":
        query = checks.uniqueness_query(run.scope, spec)
        run.recorder.query(run.warehouse.compile(query))
        return checks.evaluate_uniqueness(run.warehouse.fetch_one(query))
    if spec.kind == "custom":
        text = checks.custom_query(spec)
        run.recorder.query(text.text)
        return checks.evaluate_custom(run.warehouse.fetch_all(text))
    if spec.kind == "schema":
        actual = run.warehouse.column_families(run.table.schema, run.table.table)
        value, _details = checks.evaluate_schema(spec, actual or {})
        return value
    raise ValueError(f"unknown check kind {spec.kind}")


def _raise_if_unreachable(run: _Run) -> None:
    if run.unreachable is not None:
        raise run.unreachable


def _fail_all(run: _Run, specs: list[CheckSpec], started: float, elapsed: float,
              exc: Exception) -> None:
    message = str(exc) or type(exc).__name__
    if run.unreachable is None:  # an unreachable warehouse is recorded on the span once
        run.recorder.error(message)
        if isinstance(exc, WarehouseError) and exc.unreachable:
            run.unreachable = exc
    for spec in specs:
        run.add(spec, None, started, elapsed, error=message)


Plan = Sequence[tuple[TableSpec, Sequence[CheckSpec], Slice | None]]


def scan_plan(plan: Plan, warehouses: Mapping[str, Warehouse], *,
              observer: ScanObserver | None = None, clock: Clock = time.time,
              max_workers: int = 8) -> list[CheckResult]:
    """Scan several tables at once, at most `max_connections` per warehouse; keep plan order."""
    limits = {name: threading.BoundedSemaphore(w.settings.max_connections)
              for name, w in warehouses.items()}

    def one(item: tuple[TableSpec, Sequence[CheckSpec], Slice | None]) -> list[CheckResult]:
        table, specs, slice_ = item
        with limits[table.warehouse]:
            return scan_table(table, warehouses[table.warehouse], only=specs, slice_=slice_,
                              clock=clock, observer=observer)

    if len(plan) <= 1:
        return [r for item in plan for r in one(item)]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(plan)),
                            thread_name_prefix="dqmon-scan") as pool:
        # each task runs in a copy of this context, so its span is a child of the run's span
        futures = [pool.submit(contextvars.copy_context().run, one, item) for item in plan]
        return [r for future in futures for r in future.result()]
