"""`dqmon run-once`: load, scan the selected tables once, sample failures, print, exit.

Imported only when the command runs (issue 11): `dqmon --version` and `dqmon rules` need
none of the scan's modules, and `--no-export` never imports OpenTelemetry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dqmon import lineage
from dqmon.catalog import register_tables
from dqmon.checks.samples import SAMPLED_KINDS, Sample, sample_query, samples_from_rows
from dqmon.checks.timeutil import Slice, parse_slice
from dqmon.config import CheckSpec, Config, TableSpec
from dqmon.errors import UsageError
from dqmon.output import Samples, render_json, render_text
from dqmon.plan import Plan, scan_plan
from dqmon.results import CheckResult, exit_code
from dqmon.scan import NullObserver, ScanObserver, make_scope
from dqmon.warehouse import Warehouse, open_warehouses

if TYPE_CHECKING:
    from dqmon.telemetry import Telemetry


@dataclass(frozen=True)
class Request:
    """What the command line asked of one run."""

    tables: Sequence[str]
    checks: Sequence[str]
    partition: str | None
    json: bool
    export: bool
    sample_rows: int | None


def run_once(config: Config, request: Request) -> tuple[str, int]:
    """Run the request; return what to print and the exit code."""
    warehouses = open_warehouses(config.warehouses)
    try:
        if config.discover:
            from dqmon.discovery import with_discovered

            config = with_discovered(config, warehouses)
        plan = select(config, request.tables, request.checks, request.partition)
        register_tables([table for table, _, _ in plan], warehouses)
        results, samples = _scan(plan, warehouses, request)
    finally:
        for warehouse in warehouses.values():
            warehouse.dispose()
    segments = {t.name: t.segment_by.column for t, _, _ in plan if t.segment_by is not None}
    text = render_json(results, samples) if request.json \
        else render_text(results, samples, segments)
    return text, int(exit_code(results))


def _scan(plan: Plan, warehouses: dict[str, Warehouse],
          request: Request) -> tuple[list[CheckResult], Samples]:
    """Scan inside the run's telemetry and lineage; then take samples, outside every span
    (SPEC 12). Lineage closes last, so its bounded wait overlaps telemetry's flush."""
    with lineage.session(request.export) as sink, _telemetry(request.export) as observer:
        results = scan_plan(plan, warehouses, observer=sink.observe(observer.scan_observer))
        observer.record(results)
        sink.publish([table for table, _, _ in plan], warehouses, results)
    samples = take_samples(plan, warehouses, results, request.sample_rows) \
        if request.sample_rows else {}
    return results, samples


class _Publisher:
    """The telemetry of one run, or none at all with --no-export."""

    def __init__(self, telemetry: Telemetry | None) -> None:
        self._telemetry = telemetry

    @property
    def scan_observer(self) -> ScanObserver:
        """Return the spans' observer, or one that records nothing."""
        return NullObserver() if self._telemetry is None else self._telemetry.observer

    def record(self, results: list[CheckResult]) -> None:
        """Hand the results to the gauges (nothing with --no-export)."""
        if self._telemetry is not None:
            self._telemetry.record(results)


@contextlib.contextmanager
def _telemetry(export: bool) -> Iterator[_Publisher]:
    """Yield the run's publisher; with --no-export, OpenTelemetry is never imported."""
    if not export:
        yield _Publisher(None)
        return
    from dqmon.telemetry import Telemetry

    telemetry = Telemetry()
    try:
        with telemetry.run_span():
            yield _Publisher(telemetry)
    finally:
        telemetry.shutdown()  # one bounded flush; an export failure never changes the exit code


def take_samples(plan: Plan, warehouses: dict[str, Warehouse], results: Sequence[CheckResult],
                 limit: int) -> Samples:
    """Take up to `limit` offending rows of each failing sampled check (SPEC 12).

    Tables with `samples: false` are skipped. A check that failed in any segment is sampled
    over its whole scope; the slice is the one its scan covered.
    """
    failing = {(r.table, r.check): r.partition for r in results
               if r.status == "fail" and r.spec.kind in SAMPLED_KINDS}
    samples: Samples = {}
    for table, specs, slice_ in plan:
        for spec in specs if table.samples else ():
            if (table.name, spec.name) in failing:
                label = failing[(table.name, spec.name)]
                samples[(table.name, spec.name)] = _sample(
                    table, spec, warehouses[table.warehouse], slice_, label, limit)
    return samples


def _covered(table: TableSpec, label: str | None) -> Slice | None:
    """Return the slice a scan reported by its label (None: unpartitioned)."""
    if label is None or table.partition is None:
        return None
    return parse_slice(label, table.partition.granularity)


def _sample(table: TableSpec, spec: CheckSpec, warehouse: Warehouse, slice_: Slice | None,
            label: str | None, limit: int) -> list[Sample] | str:
    """Run one check's sample query over the slice its scan covered (`slice_`, else the one
    `label` names); say why not when it fails (it never changes the run)."""
    try:
        scope = make_scope(table, warehouse, slice_ or _covered(table, label))
        query = sample_query(scope, spec, limit)
        return samples_from_rows(spec, table.key, warehouse.fetch_mappings(query))
    except Exception as exc:  # noqa: BLE001 - diagnosis is best effort, on stdout only
        return str(exc) or type(exc).__name__


def select(config: Config, tables: Sequence[str], checks: Sequence[str],
           partition: str | None) -> Plan:
    """Pick the tables, checks and slices a run-once asked for; UsageError if they don't exist."""
    chosen = [_table(config, name) for name in tables] if tables else list(config.tables)
    unknown = set(checks) - {c.name for t in chosen for c in t.checks}
    if unknown:
        raise UsageError(f"--check: no check named {', '.join(sorted(unknown))} "
                         "in the selected tables")
    plan: list[tuple[TableSpec, list[CheckSpec], Slice | None]] = []
    for table in chosen:
        specs = [c for c in table.checks if not checks or c.name in checks]
        if specs:
            plan.append((table, specs, _slice(table, partition)))
    return plan


def _table(config: Config, name: str) -> TableSpec:
    table = config.table(name)
    if table is None:
        known = ", ".join(t.name for t in config.tables)
        raise UsageError(f"--table: no table named {name!r} in {config.file} (known: {known})")
    return table


def _slice(table: TableSpec, partition: str | None) -> Slice | None:
    if partition is None:
        return None
    if table.partition is None:
        raise UsageError(f"--partition: table {table.name!r} has no partition")
    try:
        return parse_slice(partition, table.partition.granularity)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
