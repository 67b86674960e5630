"""The `Daemon`: wires scheduler, runs and reloads together; starts, reloads and drains them."""

from __future__ import annotations

import threading
import time

from dqmon.config import Config
from dqmon.daemon.jobs import Published
from dqmon.daemon.reload import Roster, read_config
from dqmon.daemon.runner import Reporter, Runs, TableRunner
from dqmon.daemon.schedule import new_scheduler
from dqmon.daemon.shards import EVERY_TABLE, Shard
from dqmon.lineage import NoLineage, from_environment
from dqmon.logs import get_logger

log = get_logger("dqmon.daemon")  # one logger name for all the daemon's events (docs/daemon.md)

CANCEL_WAIT_S = 3.0  # at most this part of the grace period goes to cancelled queries returning
CANCEL_POLL_S = 0.2


class Daemon:
    """Keeps one job per table of its shard scheduled, and swaps them on reload."""

    def __init__(self, config_path: str, telemetry: Reporter, *,
                 shard: Shard = EVERY_TABLE, export: bool = True) -> None:
        self.config_path = config_path
        self.shard = shard
        self._scheduler = new_scheduler()
        self._runs = Runs()
        published = Published()
        # --no-export sends nothing: no OTLP and no OpenLineage events (SPEC 3, 13)
        self.lineage = from_environment() if export else NoLineage()
        runner = TableRunner(telemetry, published, self._runs, self.lineage)
        self._roster = Roster(self._scheduler, published, telemetry, runner.run, shard)
        self._applying = threading.Lock()  # a SIGHUP reload and a discovery refresh: one at a time

    def start(self, config: Config) -> None:
        """Schedule the config's tables (first runs right away) and start the scheduler."""
        self.apply(config)
        self._scheduler.start()

    def ready(self) -> bool:
        """Tell whether the config is loaded and the scheduler is running (for /readyz)."""
        return self._roster.loaded and self._scheduler.running and not self._runs.stopping

    def stop(self, wait_s: float, cancel_wait_s: float = CANCEL_WAIT_S) -> bool:
        """Stop new runs, wait out running ones (then cancel them); True when all finished."""
        self._runs.stopping = True
        self._scheduler.shutdown(wait=False)
        finished = self._runs.wait_idle(wait_s)
        if not finished:
            log.warning("cancelling running queries", waited_s=round(wait_s, 1),
                        queries=self._roster.pools.cancel_queries())
            finished = self._cancel_until_idle(cancel_wait_s)
        if finished:
            self._roster.pools.dispose()
        return finished

    def _cancel_until_idle(self, timeout_s: float) -> bool:
        """Keep cancelling: a scan's next query, or one not yet started when asked, ends too."""
        deadline = time.monotonic() + timeout_s
        while not self._runs.wait_idle(min(CANCEL_POLL_S, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return False
            self._roster.pools.cancel_queries()
        return True

    def reload(self) -> bool:
        """Re-read the config file; any bad file is logged once and the running jobs stay."""
        config = read_config(self.config_path)
        if config is None:
            return False
        try:
            self.apply(config)
        except Exception as exc:  # noqa: BLE001 - a reload must never take the daemon down
            log.error("reload failed: the old config keeps running", file=self.config_path,
                      error=repr(exc))
            return False
        return True

    def apply(self, config: Config) -> None:
        """Make the jobs match `config` (this shard's tables); a build failure changes nothing."""
        with self._applying:
            self._roster.apply(config)
        self._roster.schedule_discovery(config, self.refresh_discovery)

    def refresh_discovery(self) -> None:
        """Read the discovered tables again: new ones start, dropped ones stop (SPEC 9)."""
        source = self._roster.source
        if source is None or self._runs.stopping:
            return
        try:
            self.apply(source)
        except Exception as exc:  # noqa: BLE001 - the tables found before keep running
            log.error("discovery refresh failed", error=repr(exc))
