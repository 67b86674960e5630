"""Several tables at once: `scan_plan` runs a plan of table scans within each warehouse's
connection limit, lending spare connections to a lone table's statements (issue 11)."""

from __future__ import annotations

import contextvars
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from dqmon.checks.timeutil import Slice
from dqmon.config.resolved import CheckSpec, TableSpec
from dqmon.results import CheckResult
from dqmon.scan import Clock, ScanObserver, scan_table
from dqmon.warehouse import Warehouse

Plan = Sequence[tuple[TableSpec, Sequence[CheckSpec], Slice | None]]


def scan_plan(plan: Plan, warehouses: Mapping[str, Warehouse], *,
              observer: ScanObserver | None = None, clock: Clock = time.time,
              max_workers: int = 8) -> list[CheckResult]:
    """Scan several tables at once, at most `max_connections` per warehouse; keep plan order.

    A warehouse with fewer tables in the plan than connections lends the rest to its tables'
    statements, which then run side by side (a lone table's uniqueness query beside its scan).
    """
    limits = {name: threading.BoundedSemaphore(w.settings.max_connections)
              for name, w in warehouses.items()}
    shares = _statement_shares(plan, warehouses)

    def one(item: tuple[TableSpec, Sequence[CheckSpec], Slice | None]) -> list[CheckResult]:
        table, specs, slice_ = item
        with limits[table.warehouse]:
            return scan_table(table, warehouses[table.warehouse], only=specs, slice_=slice_,
                              clock=clock, observer=observer, statements=shares[table.warehouse])

    if len(plan) <= 1:
        return [r for item in plan for r in one(item)]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(plan)),
                            thread_name_prefix="dqmon-scan") as pool:
        # each task runs in a copy of this context, so its span is a child of the run's span
        futures = [pool.submit(contextvars.copy_context().run, one, item) for item in plan]
        return [r for future in futures for r in future.result()]


def _statement_shares(plan: Plan, warehouses: Mapping[str, Warehouse]) -> dict[str, int]:
    """Return each warehouse's connections per table: max_connections // its tables in plan."""
    tables = Counter(table.warehouse for table, _, _ in plan)
    return {name: max(1, w.settings.max_connections // max(1, tables[name]))
            for name, w in warehouses.items()}
