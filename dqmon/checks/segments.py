"""Which segments a scan publishes (SPEC 8 "Segments"): bounded, whatever the data holds.

The scan groups the scope by the `segment_by` column; here the groups become at most
`max_segments` published segments, the largest by row count, plus `__other__` for the rest.
Pure: no SQL, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

NULL = "__null__"  # the segment of rows whose segment column is NULL
OTHER = "__other__"  # every group outside the largest max_segments
MAX_CHARS = 100  # a segment's value is published as text cut to this length


def label(value: object) -> str:
    """Return a segment value as the text published in `dq.segment`."""
    if value is None:
        return NULL
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value)[:MAX_CHARS]


@dataclass
class Segment:
    """A published segment: its label, its rows, and which of the scan's groups it holds."""

    label: str
    rows: int
    groups: list[int] = field(default_factory=list)


def publish(values: Sequence[object], rows: Sequence[int], max_segments: int) -> list[Segment]:
    """Rank the groups by rows; keep the largest `max_segments`, fold the rest into __other__.

    `values[i]` and `rows[i]` are group i's segment value and row count. Groups whose labels
    are equal (a value cut at MAX_CHARS) count as one segment. Ties rank by label, so the same
    data always publishes the same segments. The result is largest first, __other__ last.
    """
    merged: dict[str, Segment] = {}
    for i, (value, count) in enumerate(zip(values, rows, strict=True)):
        segment = merged.setdefault(label(value), Segment(label(value), 0))
        segment.rows += count
        segment.groups.append(i)
    ranked = sorted(merged.values(), key=lambda s: (-s.rows, s.label))
    kept, rest = ranked[:max_segments], ranked[max_segments:]
    if rest:
        kept.append(_fold(kept, rest))
    return kept


def _fold(kept: list[Segment], rest: list[Segment]) -> Segment:
    """Return __other__ holding `rest` (and a kept segment whose own value is `__other__`)."""
    other = next((s for s in kept if s.label == OTHER), None)
    if other is not None:
        kept.remove(other)
    other = other or Segment(OTHER, 0)
    for segment in rest:
        other.rows += segment.rows
        other.groups += segment.groups
    return other
