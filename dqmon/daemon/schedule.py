"""When jobs run: triggers, stable spread offsets, misfire grace, and the APScheduler jobs.

SPEC 11: runs are spread over the period by a stable hash of the table's name, so 10,000
tables never fall due in the same second, and every later run keeps its offset.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from dqmon.config import Schedule, TableSpec
from dqmon.config.types import cron_trigger
from dqmon.daemon.jobs import TableJob
from dqmon.daemon.shards import stable_hash
from dqmon.logs import get_logger

log = get_logger("dqmon.daemon")  # one logger name for all the daemon's events (docs/daemon.md)

DISCOVERY_JOB = "dqmon-discovery"

Timing = tuple[BaseTrigger, datetime]  # a job's trigger and first run


def trigger_for(schedule: Schedule) -> BaseTrigger:
    """Return the APScheduler trigger of an `every <duration>` or cron schedule (cron in UTC)."""
    if schedule.interval_s is not None:
        return IntervalTrigger(seconds=schedule.interval_s, timezone=UTC)
    return cron_trigger(schedule.cron or "", "UTC")  # crontab(5) weekdays, day-of-month OR


def spread_s(name: str, period_s: float) -> float:
    """Return a table's stable offset within its period (the same in every process)."""
    return period_s * (stable_hash(name) % 4096) / 4096


def table_timing(table: TableSpec) -> Timing:
    """Build a table's trigger and first run (a reload can fail before a swap)."""
    schedule, now = table.schedule, datetime.now(UTC)
    if schedule.interval_s is None:
        return trigger_for(schedule), now
    first = now + timedelta(seconds=spread_s(table.name, schedule.interval_s))
    trigger = IntervalTrigger(seconds=schedule.interval_s, start_date=first, timezone=UTC)
    return trigger, first


def new_scheduler() -> BackgroundScheduler:
    """Return a UTC scheduler that logs the runs APScheduler would otherwise skip silently."""
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_listener(on_job_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES |
                           EVENT_JOB_ERROR)
    return scheduler


def add_table_job(scheduler: BackgroundScheduler, run: Callable[[TableJob], None],
                  job: TableJob, timing: Timing) -> None:
    """Schedule `run(job)` in the job's warehouse pool, replacing the table's previous job.

    A backlog is served in turn (issue 9): each table holds at most one place in its pool's
    first-in-first-out queue (`max_instances=1`, `coalesce=True`), and a queued run is never
    dropped for being late. APScheduler checks a misfire grace when a worker takes the run
    off the queue, so with any grace a table whose period is shorter than the wait lost every
    turn while the backlog lasted.
    """
    scheduler.add_job(
        run, timing[0], args=(job,), id=job.table.name,
        name=f"table {job.table.name}", executor=job.slot.executor,
        replace_existing=True, next_run_time=timing[1],
        max_instances=1, coalesce=True, misfire_grace_time=None)


def add_discovery_job(scheduler: BackgroundScheduler, refresh: Callable[[], None],
                      refresh_s: float) -> None:
    """Schedule `refresh` every `refresh_s`, replacing the discovery job scheduled before."""
    trigger = IntervalTrigger(seconds=refresh_s, timezone=UTC)
    scheduler.add_job(refresh, trigger, id=DISCOVERY_JOB, name="discovery",
                      replace_existing=True, max_instances=1, coalesce=True,
                      misfire_grace_time=int(refresh_s))


def remove_job(scheduler: BackgroundScheduler, job_id: str) -> None:
    """Unschedule a job; one already gone is fine."""
    with contextlib.suppress(JobLookupError):
        scheduler.remove_job(job_id)


def on_job_event(event: JobEvent) -> None:
    """Say out loud what APScheduler would otherwise skip silently."""
    if event.code == EVENT_JOB_MISSED:
        log.warning("run missed: too late to start", table=event.job_id,
                    scheduled=str(getattr(event, "scheduled_run_time", "")))
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        log.warning("run skipped: the previous run is still going", table=event.job_id)
    else:
        log.error("job failed", table=event.job_id, error=repr(getattr(event, "exception", "")))
