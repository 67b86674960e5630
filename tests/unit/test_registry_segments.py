"""The results registry with segments (SPEC 8): bounded, replaced per run, beside partitions."""

from __future__ import annotations

import dataclasses

from dqmon.config import CheckSpec, parse_config
from dqmon.results import CheckResult
from dqmon.telemetry.registry import PARTITIONS_KEPT, ResultsRegistry

CONFIG = """\
version: 1
warehouses:
  main: {url: "sqlite:///unused.db"}
tables:
  - name: orders
    segment_by: {column: country, max_segments: 2}
    partition: {column: at}
    checks:
      - completeness: {columns: [email]}
"""


def check() -> CheckSpec:
    return parse_config(CONFIG, env={}).tables[0].checks[0]


def run(spec: CheckSpec, partition: str, segments: list[str], value: float = 1.0
        ) -> list[CheckResult]:
    """One run's results: the whole scope, then each segment."""
    whole = CheckResult(spec, "main", partition, value, "pass", 0.1, 1.0)
    return [whole, *(dataclasses.replace(whole, segment=s) for s in segments)]


def reported(registry: ResultsRegistry) -> set[tuple[str | None, str | None]]:
    return {(s.attributes.get("dq.partition"), s.attributes.get("dq.segment"))
            for s in registry.snapshot()}


def test_a_run_replaces_the_segments_of_its_partition() -> None:
    """A segment that left the top (now inside __other__) stops being reported."""
    registry, spec = ResultsRegistry(), check()
    registry.record(run(spec, "d1", ["DE", "FR", "__other__"]))
    registry.record(run(spec, "d1", ["DE", "IT", "__other__"]))
    assert reported(registry) == {("d1", None), ("d1", "DE"), ("d1", "IT"), ("d1", "__other__")}


def test_segments_of_other_partitions_stay_until_their_partition_ages_out() -> None:
    """Segments live per partition, and the partition bound drops whole partitions."""
    registry, spec = ResultsRegistry(), check()
    days = [f"d{n}" for n in range(PARTITIONS_KEPT + 1)]
    for day in days:
        registry.record(run(spec, day, ["DE", "__other__"]))
    kept = days[-PARTITIONS_KEPT:]
    assert reported(registry) == {(d, s) for d in kept for s in (None, "DE", "__other__")}


def test_a_run_without_segment_results_keeps_the_last_segments() -> None:
    """An errored run reports the whole scope only: its segments keep their last state."""
    registry, spec = ResultsRegistry(), check()
    registry.record(run(spec, "d1", ["DE"]))
    errored = CheckResult(spec, "main", "d1", None, "error", 0.1, 2.0, "boom")
    registry.record([errored])
    assert reported(registry) == {("d1", None), ("d1", "DE")}
    whole = next(s for s in registry.snapshot() if "dq.segment" not in s.attributes)
    assert not whole.up and whole.value == 1.0
