"""The results registry the gauges observe: the latest state of every reported check series.

dqmon owns this state (rather than synchronous gauges) so that a check removed from the
config stops being reported, a non-finite value is never written, and the number of
`dq.partition` series stays bounded (SPEC section 3, issue 3).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dqmon.config.resolved import CheckSpec
from dqmon.results import CheckResult

# Slices kept per check: the current one plus a few just closed, so a daemon that moves to
# the next day (or hour) still shows how the previous slice ended, yet never grows forever.
PARTITIONS_KEPT = 3

SeriesKey = tuple[str, str]  # (dq.table, dq.check)


@dataclass(frozen=True)
class Series:
    """What the gauges report for one check (and one partition slice)."""

    spec: CheckSpec
    attributes: Mapping[str, str]  # the value gauge's attributes
    value: float | None  # the last finite value; None = no value point
    passed: bool
    up: bool
    duration_s: float
    last_run_s: float
    # What /metrics formatted of this series' labels (exposition.py), handed on to the next
    # result of the same check and slice: one formatting per check, not per run.
    text: list[Any] = field(default_factory=list, compare=False, repr=False)

    def check_attributes(self) -> dict[str, str]:
        """Return the attributes of the dq.check.* gauges: the value's plus dq.severity."""
        return {**self.attributes, "dq.severity": self.spec.severity}


def next_series(previous: Series | None, result: CheckResult) -> Series:
    """Fold one result into its series: an error keeps the last value (SPEC section 6)."""
    if result.status == "error":
        kept = previous is not None and previous.spec.metric == result.metric
        value = previous.value if kept and previous is not None else None
    else:
        value = result.value if result.value is not None and math.isfinite(result.value) else None
    attributes = result.attributes()
    same = previous is not None and previous.spec is result.spec \
        and previous.attributes == attributes
    return Series(spec=result.spec, attributes=attributes, value=value,
                  passed=result.status == "pass", up=result.status != "error",
                  duration_s=result.duration_s, last_run_s=result.started_at_s,
                  text=previous.text if same and previous is not None else [])


Slice = tuple[str | None, str | None]  # (dq.partition, dq.segment)


class ResultsRegistry:
    """Thread-safe latest state per (table, check, partition, segment), read by the gauges.

    A check keeps its PARTITIONS_KEPT most recently run partitions. A run that reports
    segments (SPEC 8) replaces the check's segments of that partition: a segment that left
    the top `max_segments` (now inside `__other__`) stops being reported.
    """

    def __init__(self, partitions_kept: int = PARTITIONS_KEPT) -> None:
        self._kept = max(1, partitions_kept)
        self._lock = threading.Lock()
        self._series: dict[SeriesKey, OrderedDict[Slice, Series]] = {}

    def record(self, results: Iterable[CheckResult]) -> None:
        """Fold results in; the least recently run partitions beyond the bound are dropped."""
        batch = list(results)
        segmented = {(r.table, r.check, r.partition) for r in batch if r.segment is not None}
        with self._lock:
            for key, partition in {((t, c), p) for t, c, p in segmented}:
                self._drop_segments(key, partition)
            for result in batch:
                self._record_one(result)

    def _drop_segments(self, key: SeriesKey, partition: str | None) -> None:
        slices = self._series.get(key)
        if slices is None:
            return
        for stale in [s for s in slices if s[0] == partition and s[1] is not None]:
            del slices[stale]

    def _record_one(self, result: CheckResult) -> None:
        slices = self._series.setdefault((result.table, result.check), OrderedDict())
        at = (result.partition, result.segment)
        new_partition = all(partition != at[0] for partition, _ in slices)
        slices[at] = next_series(slices.pop(at, None), result)
        if new_partition and len(slices) > 1:  # only a new partition can exceed the bound
            self._drop_old_partitions(slices)

    def _drop_old_partitions(self, slices: OrderedDict[Slice, Series]) -> None:
        """Drop every slice of the partitions beyond the PARTITIONS_KEPT most recently run."""
        newest_first = list(dict.fromkeys(partition for partition, _ in reversed(slices)))
        for old in newest_first[self._kept:]:
            for stale in [s for s in slices if s[0] == old]:
                del slices[stale]

    def retain(self, specs: Iterable[CheckSpec]) -> None:
        """Keep only the checks in `specs`, with their new severity and threshold."""
        wanted = {(spec.table, spec.name): spec for spec in specs}
        with self._lock:
            for key in list(self._series):
                spec = wanted.get(key)
                slices = self._series[key]
                if spec is None or not _same_series(spec, next(iter(slices.values())).spec):
                    del self._series[key]
                    continue
                for partition, series in slices.items():
                    slices[partition] = dataclasses.replace(series, spec=spec, text=[])

    def snapshot(self) -> list[Series]:
        """Return every current series (immutable, safe to read without the lock)."""
        with self._lock:
            return [series for slices in self._series.values() for series in slices.values()]


def _same_series(new: CheckSpec, old: CheckSpec) -> bool:
    """Tell whether a reloaded check still publishes the same metric and attributes."""
    return new.kind == old.kind and new.columns == old.columns
