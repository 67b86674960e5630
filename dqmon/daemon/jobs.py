"""What the scheduler runs: a table job on its warehouse slot, and the jobs being reported."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from dqmon.config import TableSpec
from dqmon.daemon.backoff import WarehouseGate
from dqmon.logs import get_logger
from dqmon.warehouse import Warehouse

log = get_logger("dqmon.daemon")  # one logger name for all the daemon's events (docs/daemon.md)


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


@dataclass(eq=False)
class Published:
    """The jobs whose results are reported, by table name, and the lock that swaps them."""

    jobs: dict[str, TableJob] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # reload vs a finishing run
