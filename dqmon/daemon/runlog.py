"""The log event of one table run: counts, failing checks, schema changes, distinct errors."""

from __future__ import annotations

from collections.abc import Sequence

from dqmon.daemon.jobs import TableJob
from dqmon.logs import get_logger
from dqmon.results import CheckResult

log = get_logger("dqmon.daemon")  # one logger name for all the daemon's events (docs/daemon.md)


def log_results(job: TableJob, results: Sequence[CheckResult], duration_s: float,
                scanned: bool = True) -> None:
    """Log one event per table run, with each distinct error once (debug while it backs off)."""
    errors = sorted({r.error for r in results if r.error})
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error")}
    fields: dict[str, object] = {"table": job.table.name, "warehouse": job.slot.warehouse.name,
                                 "checks": len(results), "passed": counts["pass"],
                                 "failed": counts["fail"], "errors": counts["error"],
                                 "duration_s": round(duration_s, 3)}
    if counts["fail"]:
        fields["failing"] = [r.check for r in results if r.status == "fail"]
    changes = {r.check: dict(r.details) for r in results if r.details}
    if changes:
        fields["changes"] = changes  # SPEC 9: schema_change names the columns in the log event
    if not scanned:  # the outage was logged once already; don't repeat it for every table
        log.debug("table skipped: warehouse down", **fields, error="; ".join(errors))
    elif errors:
        log.warning("table checked", **fields, error="; ".join(errors))
    else:
        log.info("table checked", **fields)
