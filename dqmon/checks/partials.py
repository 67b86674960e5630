"""The scanned checks as combinable partial aggregates (SPEC 8: statistics and segments).

Each check that the table's one scan answers asks for a few aggregates (`Input`s); a group of
rows (the whole scope, or one segment) gives each a value. Partials of several groups combine
(counts and sums add, minima and maxima fold, variances by Chan's parallel formula), so the
whole-table value and `__other__` follow from the segments. `finalize` turns one check's
partials into its value. Pure: no SQL here (`aggregate.py` writes it), no I/O.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal
from typing import Any

from dqmon.checks.timeutil import age_seconds
from dqmon.config.resolved import CheckSpec

Partials = Mapping[str, Any]  # one check's partial aggregates of one group, by role


@dataclass(frozen=True)
class Input:
    """One aggregate of the scan: `fn` over `column` (None: over rows), where `where` holds.

    Equal inputs are computed once (several completeness checks share one row count).
    """

    fn: str  # count | sum | sumsq | min | max | var | latest | valid | now
    column: str | None = None
    where: str | None = None
    length: bool = False  # over the character length of the value
    rule: int | None = None  # valid: the position of the validity check whose rule it counts


ROWS = Input("count")  # the scope's own count(*): the span's rows, the segments' rank
NOW = Input("now")  # the warehouse's clock, for freshness

_LENGTHS = {"min_length": "min", "max_length": "max", "avg_length": "avg"}


def inputs(spec: CheckSpec, index: int, dialect: str) -> dict[str, Input]:
    """Return the aggregates `spec` (the `index`-th scanned check) needs, by role."""
    where = spec.where
    if spec.kind == "row_count":
        return {"n": Input("count", None, where)}
    if spec.kind == "freshness":
        return {"latest": Input("latest", spec.columns[0], where), "now": NOW}
    if spec.kind == "completeness":
        return {"filled": Input("count", spec.columns[0], where), "n": Input("count", None, where)}
    if spec.kind == "validity":
        column = spec.columns[0] if spec.columns else None  # a condition considers every row
        return {"valid": Input("valid", None, where, rule=index),
                "considered": Input("count", column, where)}
    if spec.kind == "statistic" and spec.stat is not None:
        return _statistic_inputs(spec.stat, spec.columns[0], where, dialect)
    raise ValueError(f"{spec.kind} is not answered by the aggregate scan")


def _statistic_inputs(stat: str, column: str, where: str | None,
                      dialect: str) -> dict[str, Input]:
    length = stat in _LENGTHS
    stat = _LENGTHS.get(stat, stat)
    count = Input("count", column, where)  # count(char_length(x)) == count(x)
    if stat in ("min", "max", "sum"):
        return {stat: Input(stat, column, where, length)}
    if stat == "avg":
        return {"sum": Input("sum", column, where, length), "n": count}
    if stat == "stddev" and dialect == "sqlite":  # SQLite has no var_samp
        return {"n": count, "sum": Input("sum", column, where),
                "sumsq": Input("sumsq", column, where)}
    if stat == "stddev":
        return {"n": count, "sum": Input("sum", column, where),
                "var": Input("var", column, where)}
    raise ValueError(f"the statistic {stat} is not answered by the aggregate scan")


def read(spec: CheckSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Return one group's partials from the scan's values by role (stddev: n, mean, m2)."""
    if spec.stat != "stddev":
        return dict(values)
    n = int(values["n"] or 0)
    if n == 0:
        return {"n": 0, "mean": 0.0, "m2": 0.0}
    mean = float(values["sum"]) / n
    if "sumsq" in values:  # SQLite: sum of squares; clamp the rounding below zero
        m2 = max(float(values["sumsq"] or 0) - float(values["sum"]) ** 2 / n, 0.0)
    else:
        m2 = float(values["var"] or 0) * (n - 1)  # var_samp is NULL for one value
    return {"n": n, "mean": mean, "m2": m2}


def combine(spec: CheckSpec, parts: Sequence[Partials]) -> dict[str, Any]:
    """Merge the partials of several groups of rows into those of their union."""
    if spec.stat == "stddev":
        merged = {"n": 0, "mean": 0.0, "m2": 0.0}
        for part in parts:
            merged = chan(merged, part)
        return merged
    return {role: _fold(_COMBINE[role], [p[role] for p in parts]) for role in roles(spec)}


def roles(spec: CheckSpec) -> tuple[str, ...]:
    """Return the roles of `spec`'s partials after `read` (without building inputs)."""
    if spec.stat == "stddev":
        return ("n", "mean", "m2")
    return tuple(inputs(spec, 0, "").keys())


def chan(a: Partials, b: Partials) -> dict[str, Any]:
    """Merge two (count, mean, sum of squared deviations) triples (Chan et al., 1979)."""
    n_a, n_b = int(a["n"]), int(b["n"])
    if n_b == 0:
        return dict(a)
    if n_a == 0:
        return dict(b)
    n = n_a + n_b
    delta = float(b["mean"]) - float(a["mean"])
    mean = float(a["mean"]) + delta * n_b / n
    m2 = float(a["m2"]) + float(b["m2"]) + delta * delta * n_a * n_b / n
    return {"n": n, "mean": mean, "m2": m2}


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, Decimal) != isinstance(b, Decimal):  # a float never meets a Decimal
        return float(a) + float(b)
    return a + b


_COMBINE: dict[str, Callable[[Any, Any], Any]] = {
    "n": _add, "filled": _add, "valid": _add, "considered": _add, "sum": _add, "sumsq": _add,
    "min": min, "max": max, "latest": max, "now": max,
}
_ZERO = {"n": 0, "filled": 0, "valid": 0, "considered": 0}  # counts of no rows; the rest NULL


def _fold(how: Callable[[Any, Any], Any], values: Sequence[Any]) -> Any:
    """Fold the non-NULL values (SQL aggregates skip NULLs); None when there are none."""
    present = [v for v in values if v is not None]
    return functools.reduce(how, present) if present else None


def finalize(spec: CheckSpec, partials: Partials, tz: tzinfo) -> float | None:
    """Return the check's value from its partials; None: a statistic of no values (SPEC 8)."""
    p = {**_ZERO, **{k: v for k, v in partials.items() if v is not None}}
    if spec.kind == "freshness":
        return age_seconds(p.get("latest"), p.get("now"), tz)
    if spec.kind == "row_count":
        return float(p["n"])
    if spec.kind == "completeness":
        return ratio(p["filled"], p["n"])
    if spec.kind == "validity":
        return ratio(p["valid"], p["considered"])
    return _statistic(spec, p)


def _statistic(spec: CheckSpec, p: Mapping[str, Any]) -> float | None:
    stat = _LENGTHS.get(spec.stat or "", spec.stat)
    if stat == "sum":
        return statistic_number(spec, p.get("sum", 0))  # the sum of no values is 0 (SPEC 8)
    if stat in ("min", "max"):
        return None if p.get(stat) is None else statistic_number(spec, p[stat])
    if stat == "avg":
        n = int(p["n"])
        return None if n == 0 else statistic_number(spec, p["sum"]) / n
    if stat == "stddev":
        n = int(p["n"])  # the sample deviation of fewer than two values is undefined
        return None if n < 2 else math.sqrt(max(float(p["m2"]), 0.0) / (n - 1))
    raise ValueError(f"the statistic {spec.stat} is not answered by the aggregate scan")


def statistic_number(spec: CheckSpec, value: Any) -> float:
    """Return a statistic as a float; refuse text, dates and other non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"{spec.stat} of {spec.columns[0]} is not a number "
                         f"(the column holds {type(value).__name__} values)")
    return float(value)


def ratio(part: object, whole: object) -> float:
    """Return part/whole, and 1.0 for an empty whole (nothing to fault: SPEC section 2)."""
    whole_n = int(whole or 0)  # type: ignore[call-overload]
    if whole_n == 0:
        return 1.0
    part_n = int(part or 0)  # type: ignore[call-overload]
    return float(part_n / whole_n)
