"""Run one table's checks: one aggregate scan per scope, then uniqueness, schema, custom.

Never raises: a failing scope, query or evaluation becomes `status="error"` results for the
checks it answers (SPEC section 6, issue 8); the other checks of the table still run.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Select

from dqmon import checks
from dqmon.catalog import TableLook, catalog_of, default_schema
from dqmon.checks import metadata, reference
from dqmon.checks.timeutil import Slice, current_slice
from dqmon.config.resolved import CheckSpec, TableSpec
from dqmon.errors import WarehouseError
from dqmon.results import CheckResult, Status, verdict
from dqmon.warehouse import Statement, Warehouse

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
    scope: checks.Scope | Exception  # an Exception says why the scope could not be built
    recorder: ScanRecorder
    clock: Clock
    results: list[CheckResult] = field(default_factory=list)
    unreachable: WarehouseError | None = None  # once the connection fails, stop trying
    details: dict[int, Mapping[str, Any]] = field(default_factory=dict)  # by id(spec)

    @property
    def partition(self) -> str | None:
        return _label_of(self.scope)

    def result(self, spec: CheckSpec, value: float | None, started: float, duration_s: float,
               error: str | None = None, segment: str | None = None) -> CheckResult:
        status = _status(spec, value, error)
        return CheckResult(spec, self.warehouse.name, self.partition, value, status, duration_s,
                           started, error, self.details.get(id(spec)), segment)


def _status(spec: CheckSpec, value: float | None, error: str | None) -> Status:
    """Judge a value; a statistic of no values has none and fails (SPEC 8)."""
    if error is not None:
        return "error"
    if value is None:
        return "fail" if spec.kind == "statistic" else "error"
    return verdict(spec, value)


def scan_table(table: TableSpec, warehouse: Warehouse, *,
               only: Sequence[CheckSpec] | None = None, slice_: Slice | None = None,
               clock: Clock = time.time, observer: ScanObserver | None = None,
               statements: int = 1) -> list[CheckResult]:
    """Run `table`'s checks (or `only` those) and return one result per check; never raises.

    The table's statements (its one aggregate scan, the catalog look, each own-query check)
    run `statements` at a time, each on its own connection (run-once gives a lone table the
    warehouse's spare connections: issue 11).
    """
    specs = list(table.checks if only is None else only)
    scope = _try_scope(table, warehouse, slice_, clock)
    with (observer or NullObserver()).scan(table, warehouse, _label_of(scope)) as recorder:
        run = _Run(table, warehouse, scope, recorder, clock)
        if isinstance(scope, Exception):
            recorder.error(_error_message(scope))  # once, though every scoped check reports it
        _run_all(_statements(run, specs), statements)
    order = {id(s): i for i, s in enumerate(specs)}
    return sorted(run.results, key=lambda r: order[id(r.spec)])


def _statements(run: _Run, specs: list[CheckSpec]) -> list[Callable[[], None]]:
    """Return one task per statement of the scan, the aggregate scan first."""
    aggregates = [s for s in specs if s.scanned]
    metadata = [s for s in specs if s.metadata]
    tasks: list[Callable[[], None]] = []
    if aggregates:
        tasks.append(lambda: _run_aggregates(run, aggregates))
    if metadata:
        tasks.append(lambda: _run_metadata(run, metadata))
    tasks += [functools.partial(_run_checks, run, [spec], _single_value)
              for spec in specs if not spec.scanned and not spec.metadata]
    return tasks


def _run_all(tasks: list[Callable[[], None]], parallel: int) -> None:
    """Run the tasks (which never raise), `parallel` at a time, inside this span's context."""
    if parallel <= 1 or len(tasks) <= 1:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(max_workers=min(parallel, len(tasks)),
                            thread_name_prefix="dqmon-statement") as pool:
        for future in [pool.submit(contextvars.copy_context().run, task) for task in tasks]:
            future.result()


def make_scope(table: TableSpec, warehouse: Warehouse, slice_: Slice | None,
               clock: Clock = time.time) -> checks.Scope:
    """Return the scope a scan covers: the given slice, else the current one by `clock`."""
    if table.partition is not None and slice_ is None:
        part = table.partition
        slice_ = current_slice(clock(), part.granularity, part.lag, warehouse.tz)
    return checks.Scope(table, warehouse.dialect, warehouse.tz,
                        slice_ if table.partition is not None else None)


def _try_scope(table: TableSpec, warehouse: Warehouse, slice_: Slice | None,
               clock: Clock) -> checks.Scope | Exception:
    """Build the scope, or return why not: its failure belongs to the checks (issue 8)."""
    try:
        return make_scope(table, warehouse, slice_, clock)
    except Exception as exc:  # noqa: BLE001 - SPEC 6: a failing check is a result, not a crash
        return exc


def partition_label(table: TableSpec, warehouse: Warehouse,
                    clock: Clock = time.time) -> str | None:
    """Return the slice label a scan would cover now; None when unpartitioned or unbuildable."""
    return _label_of(_try_scope(table, warehouse, None, clock))


def _label_of(scope: checks.Scope | Exception) -> str | None:
    return scope.slice.label if isinstance(scope, checks.Scope) and scope.slice else None


Values = Callable[[_Run, list[CheckSpec]], Sequence[float | None]]


def _run_checks(run: _Run, specs: list[CheckSpec], values: Values) -> None:
    """Run `specs` inside one error boundary: any exception becomes their `error` results."""
    started, t0 = run.clock(), time.perf_counter()
    try:
        _raise_if_unreachable(run)
        found = values(run, specs)
        elapsed = time.perf_counter() - t0
        results = [run.result(spec, value, started, elapsed)
                   for spec, value in zip(specs, found, strict=True)]
    except Exception as exc:  # noqa: BLE001 - SPEC 6: the other checks and tables still run
        _fail_all(run, specs, started, time.perf_counter() - t0, exc)
        return
    run.results += results


def _run_metadata(run: _Run, specs: list[CheckSpec]) -> None:
    """Answer the metadata checks from the schema's catalog snapshot (SPEC 9)."""
    started, t0 = run.clock(), time.perf_counter()
    try:
        _raise_if_unreachable(run)
        look = _catalog_look(run)
        elapsed = time.perf_counter() - t0
        results = [_metadata_result(run, spec, look, started, elapsed) for spec in specs]
    except Exception as exc:  # noqa: BLE001 - SPEC 6: the other checks and tables still run
        _fail_all(run, specs, started, time.perf_counter() - t0, exc)
        return
    run.results += results


def _catalog_look(run: _Run) -> TableLook:
    """Return this table in its schema's snapshot, at most ~one schedule period old."""
    schema = run.table.schema or default_schema(run.warehouse)
    look = catalog_of(run.warehouse).look(schema, run.table.table,
                                          0.9 * run.table.schedule.period_s(), run.clock())
    if look is None:
        raise ValueError(f"the catalog does not list {schema}.{run.table.table}")
    return look


def _metadata_result(run: _Run, spec: CheckSpec, look: TableLook, started: float,
                     elapsed: float) -> CheckResult:
    value = metadata.evaluate(spec, look.metadata, look.columns_before, look.seen, run.clock())
    result = run.result(spec, value, started, elapsed)
    if spec.kind == "schema_change" and value:
        return dataclasses.replace(result, details=look.changes())
    return result


def _run_aggregates(run: _Run, specs: list[CheckSpec]) -> None:
    """Run the scope's one scan: each check's result, then one per published segment.

    A failing scan errors every check it answers (and publishes no segment); a value that
    cannot be made errors only its own check.
    """
    started, t0 = run.clock(), time.perf_counter()
    try:
        _raise_if_unreachable(run)
        answer = _scan(run, specs)
    except Exception as exc:  # noqa: BLE001 - SPEC 6: the other checks and tables still run
        _fail_all(run, specs, started, time.perf_counter() - t0, exc)
        return
    elapsed = time.perf_counter() - t0
    for i, spec in enumerate(specs):
        run.results.append(_finalized(run, spec, answer.whole[i], None, started, elapsed))
        run.results += [_finalized(run, spec, parts[i], label, started, elapsed)
                        for label, parts in answer.segments]


def _scan(run: _Run, specs: list[CheckSpec]) -> checks.ScanAnswer:
    """Run the scope's one aggregate select (grouped by the segment column, if any)."""
    scope = _scope_of(run)
    statement = _statement(run, "aggregate", specs, lambda: checks.aggregate_query(scope, specs))
    run.recorder.query(statement.text(run.warehouse.compile))
    if run.table.segment_by is None:
        rows = [run.warehouse.fetch_one(statement, scope.params())]
    else:  # one row per segment value
        rows = run.warehouse.fetch_mappings(statement, scope.params())
    answer = checks.read_scan(scope, specs, rows)
    run.recorder.rows(answer.rows)
    return answer


def _finalized(run: _Run, spec: CheckSpec, partials: checks.Partials, segment: str | None,
               started: float, elapsed: float) -> CheckResult:
    """Turn one check's partials into its result; a failure is that check's error alone."""
    try:
        value = checks.finalize(spec, partials, run.warehouse.tz)
    except Exception as exc:  # noqa: BLE001 - SPEC 6: a failing check is a result
        message = _error_message(exc)
        if segment is None:
            run.recorder.error(message)
        return run.result(spec, None, started, elapsed, message, segment)
    return run.result(spec, value, started, elapsed, segment=segment)


def _single_value(run: _Run, specs: list[CheckSpec]) -> list[float | None]:
    [spec] = specs
    if spec.kind == "uniqueness":
        scope = _scope_of(run)
        statement = _statement(run, "uniqueness", specs,
                               lambda: checks.uniqueness_query(scope, spec))
        return [checks.evaluate_uniqueness(_fetch(run, statement, scope))]
    if spec.kind == "reference":  # SPEC 8: one anti-join per check
        scope = _scope_of(run)
        statement = _statement(run, "reference", specs,
                               lambda: reference.reference_query(scope, spec))
        return [reference.evaluate_reference(_fetch(run, statement, scope))]
    if spec.kind == "statistic":  # distinct_count and percentiles: their own query (SPEC 8)
        return [_own_statistic(run, spec)]
    if spec.kind == "custom":
        text = checks.custom_query(spec)
        run.recorder.query(text.text)
        return [checks.evaluate_custom(run.warehouse.fetch_all(text))]
    if spec.kind == "schema":
        actual = run.warehouse.column_families(run.table.schema, run.table.table)
        value, details = checks.evaluate_schema(spec, actual or {})
        if value:  # SPEC 8: the columns by name, in text and JSON
            run.details[id(spec)] = details
        return [value]
    raise ValueError(f"unknown check kind {spec.kind}")


def _own_statistic(run: _Run, spec: CheckSpec) -> float | None:
    """Run a statistic's own query (BigQuery's percentile may return no row at all)."""
    scope = _scope_of(run)
    statement = _statement(run, "statistic", [spec], lambda: checks.statistic_query(scope, spec))
    run.recorder.query(statement.text(run.warehouse.compile))
    return checks.evaluate_statistic(spec, run.warehouse.fetch_mappings(statement,
                                                                        scope.params()))


def _statement(run: _Run, kind: str, specs: list[CheckSpec],
               build: Callable[[], Select[Any]]) -> Statement:
    """Return the table's statement for `specs`, compiled once per table (issue 9)."""
    positions = _positions(run.table, specs)
    if positions is None:  # checks that are not this table's own: nothing stable to key on
        return Statement(build())
    return run.warehouse.statements.get(run.table, (kind, *positions), build)


def _positions(table: TableSpec, specs: list[CheckSpec]) -> tuple[int, ...] | None:
    """Return where each of `specs` is in `table.checks` (by identity), or None."""
    index = {id(spec): i for i, spec in enumerate(table.checks)}
    found = tuple(index.get(id(spec), -1) for spec in specs)
    return None if -1 in found else found


def _fetch(run: _Run, statement: Statement, scope: checks.Scope) -> dict[str, Any]:
    """Run a table's statement, compiled once per table (issue 9), with this run's bounds."""
    run.recorder.query(statement.text(run.warehouse.compile))
    return run.warehouse.fetch_one(statement, scope.params())


def _scope_of(run: _Run) -> checks.Scope:
    """Return the scan's scope, or raise why it could not be built."""
    if isinstance(run.scope, Exception):
        raise run.scope
    return run.scope


def _raise_if_unreachable(run: _Run) -> None:
    if run.unreachable is not None:
        raise run.unreachable


def _fail_all(run: _Run, specs: list[CheckSpec], started: float, elapsed: float,
              exc: Exception) -> None:
    message = _error_message(exc)
    # an unreachable warehouse and a broken scope are recorded on the span once
    if run.unreachable is None and exc is not run.scope:
        run.recorder.error(message)
        if isinstance(exc, WarehouseError) and exc.unreachable:
            run.unreachable = exc
    run.results += [run.result(spec, None, started, elapsed, error=message) for spec in specs]


def _error_message(exc: Exception) -> str:
    """Say why a check errored; an exception nobody expected also names its type."""
    text = str(exc)
    if isinstance(exc, WarehouseError | ValueError | ArithmeticError):
        return text or type(exc).__name__
    return f"unexpected {type(exc).__name__}: {text}" if text else type(exc).__name__
