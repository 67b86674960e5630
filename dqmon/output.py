"""What run-once prints: the results as a text table or one strict-JSON object (SPEC 4),
with schema details, segments (SPEC 8) and diagnosis samples (SPEC 12)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from dqmon.checks.samples import Sample
from dqmon.results import CheckResult

# (table, check) -> the check's samples, or why none could be taken (SPEC 12)
Samples = dict[tuple[str, str], list[Sample] | str]


def render_json(results: Sequence[CheckResult], samples: Samples | None = None) -> str:
    """Render results as one strict-JSON object (SPEC section 4), with samples (SPEC 12)."""
    summary = {status: sum(r.status == status for r in results)
               for status in ("pass", "fail", "error")}
    payload = {"results": [_json_result(r, samples or {}) for r in results],
               "summary": {"passed": summary["pass"], "failed": summary["fail"],
                           "errors": summary["error"]}}
    return json.dumps(payload, indent=2, allow_nan=False)


def _json_result(result: CheckResult, samples: Samples) -> dict[str, Any]:
    """A result's JSON; a sampled check's whole-scope result adds "samples" (or why not)."""
    out = result.to_json()
    taken = samples.get((result.table, result.check)) if result.segment is None else None
    if isinstance(taken, str):
        out.update(samples=[], samples_error=taken)
    elif taken is not None:
        out["samples"] = [sample.to_json() for sample in taken]
    return out


def render_text(results: Sequence[CheckResult], samples: Samples | None = None,
                segments: Mapping[str, str] | None = None) -> str:
    """Render results as an aligned table, error details, samples and a one-line summary.

    `segments` names each table's segment_by column, shown beside a segment's check name.
    """
    header = ("TABLE", "CHECK", "VALUE", "THRESHOLD", "STATUS")
    rows = [header] + [(r.table, _check_name(r, segments or {}), format_value(r),
                        format_threshold(r), _status(r)) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines += _error_lines(results)
    lines += [_details_line(r) for r in results if r.details]
    lines += _sample_lines(samples or {})
    lines.append(summary_line(results))
    return "\n".join(lines)


def _check_name(result: CheckResult, segments: Mapping[str, str]) -> str:
    """The check's name; a segment's result adds `[column=value]` (SPEC 8)."""
    if result.segment is None:
        return result.check
    column = segments.get(result.table)
    return f"{result.check} [{column}={result.segment}]" if column else \
        f"{result.check} [{result.segment}]"


def _error_lines(results: Sequence[CheckResult]) -> list[str]:
    """One line per table and distinct error, naming the checks it cost."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.error:
            grouped.setdefault((r.table, r.error), []).append(r.check)
    lines = []
    for (table, error), names in grouped.items():
        which = names[0] if len(names) == 1 else f"{len(names)} checks"
        lines.append(f"error: {table} ({which}): {error}")
    return lines


def _details_line(result: CheckResult) -> str:
    """Name what a schema or schema_change result counted: `missing: a, b; mismatched: ...`."""
    parts = []
    for what, found in (result.details or {}).items():
        if isinstance(found, Mapping):
            found = [f"{column} ({', '.join(f'{k} {v}' for k, v in types.items())})"
                     for column, types in found.items()]  # amount (expected integer, actual text)
        if found:
            parts.append(f"{what}: {', '.join(str(item) for item in found)}")
    return f"details: {result.table} ({result.check}): {'; '.join(parts)}"


def _sample_lines(samples: Samples) -> list[str]:
    """Under a heading per check, one line per sample: `key=value, ...: value` (SPEC 12)."""
    lines = []
    for (table, check), taken in samples.items():
        if isinstance(taken, str):
            lines.append(f"samples: {table} ({check}): not taken: {taken}")
            continue
        lines.append(f"samples: {table} ({check}): {len(taken)} offending row(s)")
        lines += ["  " + _sample_text(sample) for sample in taken]
    return lines


def _sample_text(sample: Sample) -> str:
    value = json.dumps(sample.value, ensure_ascii=False, default=str)
    key = ", ".join(f"{name}={json.dumps(v, ensure_ascii=False, default=str)}"
                    for name, v in sample.key.items())
    return f"{key}: {value}" if key else value


def summary_line(results: Sequence[CheckResult]) -> str:
    """Say how many checks passed, failed and errored."""
    passed = sum(r.status == "pass" for r in results)
    failed = [r for r in results if r.status == "fail"]
    warned = sum(r.severity == "warning" for r in failed)
    errors = sum(r.status == "error" for r in results)
    note = f" ({warned} warning)" if warned else ""
    return (f"{len(results)} checks: {passed} passed, {len(failed)} failed{note}, "
            f"{errors} error{'' if errors == 1 else 's'}")


def _status(result: CheckResult) -> str:
    status = result.status.upper()
    return f"{status} ({result.severity})" if result.status == "fail" else status


def format_value(result: CheckResult) -> str:
    """Format a value in its unit: seconds as a duration, ratios to 4 places."""
    value = result.value
    if value is None:
        return "-"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return _format(result.spec.kind, value)


def format_threshold(result: CheckResult) -> str:
    """Format the bounds as `>= x`, `<= y` or `x..y`."""
    t = result.spec.threshold
    lo = None if t.min is None else _format(result.spec.kind, t.min)
    hi = None if t.max is None else _format(result.spec.kind, t.max)
    if lo is not None and hi is not None:
        return f"{lo}..{hi}"
    if lo is None and hi is None:
        return "-"  # a row_count without bounds only publishes its value
    return f">= {lo}" if lo is not None else f"<= {hi}"


def _format(kind: str, value: float) -> str:
    if kind == "freshness":
        return duration_text(value)
    if kind in ("completeness", "validity", "uniqueness", "reference"):
        return f"{value:.4f}"
    return f"{value:g}" if value != int(value) else str(int(value))


def duration_text(seconds: float) -> str:
    """Format seconds as 2h05m, 7m12s or 42s."""
    s = int(round(seconds))
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
