"""Warehouses and their thread pools: kept across reloads while their settings stay the same.

One pool per warehouse, max_connections wide: a slow warehouse never starves another.
"""

from __future__ import annotations

import contextlib
import threading

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from dqmon.config import Config
from dqmon.config.models import Warehouse as WarehouseSettings
from dqmon.daemon.jobs import WarehouseSlot
from dqmon.warehouse import Warehouse


class Pools:
    """The running warehouse slots, each with its outage gate and its scheduler executor."""

    def __init__(self, scheduler: BackgroundScheduler) -> None:
        self._scheduler = scheduler
        self.slots: dict[str, WarehouseSlot] = {}
        self._generation = 0

    def build(self, config: Config) -> dict[str, WarehouseSlot]:
        """Keep each warehouse whose settings did not change (its pool and its outage state)."""
        slots: dict[str, WarehouseSlot] = {}
        try:
            for name, settings in config.warehouses.items():
                old = self.slots.get(name)
                if old is not None and old.warehouse.settings == settings:
                    slots[name] = old
                else:
                    slots[name] = self._new_slot(name, settings)
        except Exception:
            self.retire(self.fresh(slots))  # a warehouse that fails to build leaks no pool
            raise
        return slots

    def fresh(self, slots: dict[str, WarehouseSlot]) -> dict[str, WarehouseSlot]:
        """Return the slots built for a new config, not kept from the running one."""
        return {k: v for k, v in slots.items() if self.slots.get(k) is not v}

    def swap(self, slots: dict[str, WarehouseSlot]) -> None:
        """Make `slots` the running ones; retire the running ones it does not keep."""
        self.retire({k: v for k, v in self.slots.items() if slots.get(k) is not v})
        self.slots = slots

    def retire(self, slots: dict[str, WarehouseSlot]) -> None:
        """Shut unused pools down once their running jobs end, off the main thread."""
        for slot in slots.values():
            threading.Thread(target=self._retire_slot, args=(slot,), daemon=True,
                             name=f"dqmon-retire-{slot.executor}").start()

    def cancel_queries(self) -> int:
        """Cancel every running query of every warehouse; return how many were asked."""
        return sum(slot.warehouse.cancel_running() for slot in list(self.slots.values()))

    def dispose(self) -> None:
        """Close every running warehouse's connections."""
        for slot in self.slots.values():
            slot.warehouse.dispose()

    def _new_slot(self, name: str, settings: WarehouseSettings) -> WarehouseSlot:
        warehouse = Warehouse(name, settings)
        self._generation += 1
        alias = f"{name}#{self._generation}"
        self._scheduler.add_executor(ThreadPoolExecutor(settings.max_connections), alias)
        return WarehouseSlot(warehouse, alias)

    def _retire_slot(self, slot: WarehouseSlot) -> None:
        with contextlib.suppress(KeyError):
            self._scheduler.remove_executor(slot.executor, shutdown=True)
        slot.warehouse.dispose()
