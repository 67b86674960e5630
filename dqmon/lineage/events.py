"""Results → OpenLineage RunEvents: pure, besides importing the client's classes (SPEC 13).

Nothing in an event comes from a row or from SQL: no samples, no segment values, no error
messages, no `content` (docs/lineage.md lists every field sent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dqmon import __version__

if TYPE_CHECKING:
    from openlineage.client.event_v2 import RunEvent

    from dqmon.config import TableSpec
    from dqmon.results import CheckResult

PRODUCER = f"urn:dqmon:{__version__}"  # BaseEvent.producer: a URI naming what wrote the event
DEFAULT_JOB_NAMESPACE = "dqmon"

@dataclass(frozen=True)
class TableRun:
    """What one table's run gives the mapping: its dataset, its results, its rows in scope."""

    table: TableSpec
    namespace: str
    name: str
    results: Sequence[CheckResult]
    rows: int | None  # the aggregate scan's rows in scope; None: no scan ran


def run_events(run: TableRun, job_namespace: str = DEFAULT_JOB_NAMESPACE) -> list[RunEvent]:
    """Return the table run's START and COMPLETE (FAIL if a check errored) RunEvents."""
    from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState
    from openlineage.client.uuid import generate_static_uuid

    start_s = min(r.started_at_s for r in run.results)
    end_s = max(r.started_at_s + r.duration_s for r in run.results)
    run_id = generate_static_uuid(_time(start_s), f"{job_namespace}/{run.table.name}".encode())
    job = Job(namespace=job_namespace, name=run.table.name, facets=_job_facets())
    ended = RunState.FAIL if any(r.status == "error" for r in run.results) else RunState.COMPLETE
    facets = {"processing_engine": _engine_facet()}
    return [RunEvent(eventType=state, eventTime=_iso(when), producer=PRODUCER,
                     run=Run(runId=str(run_id), facets=facets), job=job,
                     inputs=[InputDataset(namespace=run.namespace, name=run.name,
                                          inputFacets=dataset_facets(run) if done else {})])
            for state, when, done in ((RunState.START, start_s, False), (ended, end_s, True))]


def dataset_facets(run: TableRun) -> dict[str, Any]:
    """Return the input facets: `dataQualityAssertions` and, if measured, `dataQualityMetrics`."""
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa

    checks: dict[str, list[CheckResult]] = {}
    for result in run.results:
        checks.setdefault(result.check, []).append(result)
    facets: dict[str, Any] = {"dataQualityAssertions": dqa.DataQualityAssertionsDatasetFacet(
        assertions=[assertion(rs) for rs in checks.values()], producer=PRODUCER)}
    metrics = quality_metrics(run)
    if metrics is not None:
        facets["dataQualityMetrics"] = metrics
    return facets


def assertion(results: Sequence[CheckResult]) -> Any:
    """Return one check's assertion: success only if its whole scope and every segment pass.

    `actual` is the whole scope's value; segment values (row values) are never sent.
    """
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa

    whole = next((r for r in results if r.segment is None), results[0])
    spec = whole.spec
    params = {"status": _status(results), "metric": spec.metric}
    if whole.partition is not None:
        params["partition"] = whole.partition
    return dqa.Assertion(assertion=spec.kind, name=spec.name,
                         success=params["status"] == "pass", column=spec.column_attribute,
                         severity=spec.severity,
                         expected=expected(spec.threshold.min, spec.threshold.max),
                         actual=number_text(whole.value), params=params)


def _status(results: Sequence[CheckResult]) -> str:
    statuses = {r.status for r in results}
    return "error" if "error" in statuses else "fail" if "fail" in statuses else "pass"


def quality_metrics(run: TableRun) -> Any | None:
    """Return `dataQualityMetrics`: rowCount, and nullCount of each completeness column."""
    from openlineage.client.facet_v2 import data_quality_metrics_input_dataset as dqm

    if run.rows is None:
        return None
    columns = {column: dqm.ColumnMetrics(nullCount=nulls, quantiles=None)
               for column, nulls in null_counts(run.results, run.rows).items()}
    return dqm.DataQualityMetricsInputDatasetFacet(rowCount=run.rows, columnMetrics=columns,
                                                   producer=PRODUCER)


def null_counts(results: Iterable[CheckResult], rows: int) -> dict[str, int]:
    """Return each completeness column's nulls among `rows`: (1 - ratio) x rows.

    Only checks over the whole scope count (no `where` of their own, no segment), since
    `rows` is the scope's row count.
    """
    counts: dict[str, int] = {}
    for r in results:
        if r.spec.kind == "completeness" and r.segment is None and r.spec.where is None:
            if rows == 0:
                counts[r.spec.columns[0]] = 0
            elif r.value is not None:
                counts[r.spec.columns[0]] = round((1.0 - r.value) * rows)
    return counts


def expected(low: float | None, high: float | None) -> str | None:
    """Write a threshold as text: `>= 0.998`, `<= 7200`, `1000..5000000`."""
    if low is not None and high is not None:
        return f"{number_text(low)}..{number_text(high)}"
    if low is not None:
        return f">= {number_text(low)}"
    return None if high is None else f"<= {number_text(high)}"


def number_text(value: float | None) -> str | None:
    """Write a value as text: integers without `.0`, infinities as `+Inf`, NaN as nothing."""
    if value is None or value != value:
        return None
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)


def _job_facets() -> dict[str, Any]:
    from openlineage.client.facet_v2 import job_type_job

    return {"jobType": job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="DQMON", jobType="DATA_QUALITY_CHECK",
        producer=PRODUCER)}


def _engine_facet() -> Any:
    from openlineage.client.facet_v2 import processing_engine_run

    return processing_engine_run.ProcessingEngineRunFacet(version=__version__, name="dqmon",
                                                          producer=PRODUCER)


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _iso(seconds: float) -> str:
    return _time(seconds).isoformat()
