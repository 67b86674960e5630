"""Make the scheduled jobs match a config: at start, on SIGHUP and on each discovery refresh.

A bad file, or a warehouse that fails to build, changes nothing: the old jobs keep running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from apscheduler.schedulers.background import BackgroundScheduler

from dqmon.catalog import register_tables
from dqmon.config import Config, ConfigError, TableSpec, load_config
from dqmon.daemon.jobs import Published, TableJob, WarehouseSlot
from dqmon.daemon.pools import Pools
from dqmon.daemon.runner import Reporter
from dqmon.daemon.schedule import (
    DISCOVERY_JOB,
    Timing,
    add_discovery_job,
    add_table_job,
    remove_job,
    table_timing,
)
from dqmon.daemon.shards import Shard
from dqmon.discovery import with_discovered
from dqmon.logs import get_logger
from dqmon.warehouse import Warehouse

log = get_logger("dqmon.daemon")  # one logger name for all the daemon's events (docs/daemon.md)


def read_config(path: str) -> Config | None:
    """Load the config file, or log why it is rejected and return None (never raises)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        problems = [str(p) for p in exc.problems]
    except Exception as exc:  # noqa: BLE001 - e.g. RecursionError, MemoryError: a bad file too
        problems = [f"{path}:1: cannot load the file ({type(exc).__name__})"]
    log.error("reload rejected: the old config keeps running", file=path, problems=problems)
    return None


class Roster:
    """Keeps one job per table of its shard scheduled, and swaps them all at once."""

    def __init__(self, scheduler: BackgroundScheduler, published: Published,
                 telemetry: Reporter, run: Callable[[TableJob], None], shard: Shard) -> None:
        self._scheduler = scheduler
        self._published = published
        self._telemetry = telemetry
        self._run = run
        self._shard = shard
        self.pools = Pools(scheduler)
        self.loaded = False
        self.source: Config | None = None  # as loaded, before discovery
        self._listed: set[str] = set()
        self._tables: tuple[TableSpec, ...] = ()  # listed and discovered, as last applied
        self._refresh_s: float | None = None

    def apply(self, source: Config) -> None:
        """Build the jobs of `source` and its discovered tables, then swap them all in.

        Whatever fails before the swap (discovery, the catalog, a job) retires the pools built
        for `source` and leaves the running jobs, pools and roster as they were.
        """
        slots = self.pools.build(source)
        try:
            config = with_discovered(source, _warehouses(slots),
                                     [t for t in self._tables if t.name not in self._listed])
            tables = [t for t in config.tables if self._shard.owns(t.name)]
            register_tables(tables, _warehouses(slots))
            jobs = {t.name: self._job_for(t, slots[t.warehouse]) for t in tables}
            timings = {name: table_timing(job.table) for name, job in jobs.items()
                       if job is not self._published.jobs.get(name)}
        except Exception:
            self.pools.retire(self.pools.fresh(slots))
            raise
        self.source, self._listed = source, {t.name for t in source.tables}
        self._tables = config.tables
        removed = self._swap(slots, jobs, timings, tables)
        log.info("config loaded", file=config.file, shard=str(self._shard), tables=len(jobs),
                 of_tables=len(config.tables), scheduled=len(timings), removed=len(removed))
        if not jobs:
            log.warning("no table to check in this shard", shard=str(self._shard),
                        of_tables=len(config.tables))

    def schedule_discovery(self, config: Config, refresh: Callable[[], None]) -> None:
        """Run `refresh` at the shortest refresh of the config's discover blocks (or never)."""
        if not config.discover:
            remove_job(self._scheduler, DISCOVERY_JOB)
            self._refresh_s = None
            return
        refresh_s = min(block.refresh for block in config.discover)
        if self._refresh_s != refresh_s:
            add_discovery_job(self._scheduler, refresh, refresh_s)
            self._refresh_s = refresh_s

    def _swap(self, slots: dict[str, WarehouseSlot], jobs: dict[str, TableJob],
              timings: dict[str, Timing], tables: Sequence[TableSpec]) -> list[str]:
        """Replace the running jobs and pools while no run publishes; return the removed."""
        with self._published.lock:
            removed = [name for name in self._published.jobs if name not in jobs]
            for name in removed:
                remove_job(self._scheduler, name)
            for name, timing in timings.items():
                add_table_job(self._scheduler, self._run, jobs[name], timing)
            self._published.jobs = jobs
            self._telemetry.retain(spec for t in tables for spec in t.checks)
            self.pools.swap(slots)
            self.loaded = True
        return removed

    def _job_for(self, table: TableSpec, slot: WarehouseSlot) -> TableJob:
        old = self._published.jobs.get(table.name)
        if old is not None and old.table == table and old.slot is slot:
            return old
        return TableJob(table, slot)


def _warehouses(slots: Mapping[str, WarehouseSlot]) -> dict[str, Warehouse]:
    return {name: slot.warehouse for name, slot in slots.items()}
