"""`dqmon run`: one APScheduler job per table, health endpoints, signals, reload, shards.

SPEC sections 4 and 6, issue 4. The daemon never falls over: a dead warehouse gives
`dq.check.up=0` and a back-off, a bad reloaded file keeps the old jobs, SIGTERM drains.

The modules follow a run's path, and each imports only those above it:

- `shards`: which tables this replica runs (stable name hash).
- `backoff`: a warehouse's outage gate and its exponential back-off.
- `jobs`: a table job on its warehouse slot; the jobs whose results are reported.
- `runlog`: the log event of one table run.
- `runner`: one table's run: scan or skip, probe, publish (never raises).
- `schedule`: triggers, spread offsets, misfire grace, the APScheduler jobs.
- `pools`: warehouses and their thread pools, kept across reloads.
- `reload`: read the file; make the scheduled jobs match a config.
- `service`: the `Daemon`: start, ready, reload, drain on stop.
- `process`: options, signals, the HTTP server, `serve`.
"""

from dqmon.daemon.backoff import BACKOFF_BASE_S, BACKOFF_MAX_S, WarehouseGate, backoff_s
from dqmon.daemon.jobs import TableJob, WarehouseSlot
from dqmon.daemon.process import (
    FLUSH_S,
    POLL_S,
    Options,
    Signals,
    exit_now_if_stuck,
    grace_budget,
    parse_options,
    serve,
    wait_for_stop,
)
from dqmon.daemon.runlog import log_results
from dqmon.daemon.runner import (
    Reporter,
    Runs,
    check_table,
    check_table_or_error,
    error_results,
    unavailable_results,
)
from dqmon.daemon.schedule import (
    DISCOVERY_JOB,
    spread_s,
    trigger_for,
)
from dqmon.daemon.service import CANCEL_POLL_S, CANCEL_WAIT_S, Daemon
from dqmon.daemon.shards import Shard, stable_hash

__all__ = [
    "BACKOFF_BASE_S", "BACKOFF_MAX_S", "CANCEL_POLL_S", "CANCEL_WAIT_S", "DISCOVERY_JOB",
    "FLUSH_S", "POLL_S", "Daemon", "Options", "Reporter", "Runs",
    "Shard", "Signals", "TableJob", "WarehouseGate", "WarehouseSlot", "backoff_s",
    "check_table", "check_table_or_error", "error_results", "exit_now_if_stuck",
    "grace_budget", "log_results", "parse_options", "serve", "spread_s",
    "stable_hash", "trigger_for", "unavailable_results", "wait_for_stop",
]
