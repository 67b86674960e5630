"""The scan's partial aggregates: combining groups gives the whole, finalizing gives values.

Pure: group partials are made here as the SQL aggregates would return them.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from dqmon.checks import Scope, aggregate_query, partials, segments
from dqmon.checks.aggregate import read_scan
from dqmon.config import CheckSpec, parse_config

STATS = ("min", "max", "sum", "avg", "stddev")


def specs(*checks: str) -> list[CheckSpec]:
    """Parse checks of one SQLite table `t` (the dialect matters only for stddev's inputs)."""
    body = "".join(f"      - {c}\n" for c in checks)
    text = ("version: 1\nwarehouses: {main: {url: 'sqlite://'}}\n"
            f"tables:\n  - name: t\n    checks:\n{body}")
    return list(parse_config(text, env={}).tables[0].checks)


def stat(name: str) -> CheckSpec:
    """One statistic check of column x."""
    [spec] = specs(f"statistic: {{column: x, stat: {name}, min: -1000000}}")
    return spec


def aggregates(values: Sequence[float | None], dialect: str) -> dict[str, Any]:
    """What SQL's aggregates return over `values` (NULLs skipped), by the inputs' functions."""
    present = [v for v in values if v is not None]
    var = statistics.variance(present) if len(present) > 1 else None
    return {"count": len(present), "sum": sum(present) if present else None,
            "min": min(present, default=None), "max": max(present, default=None),
            "var": var, "sumsq": sum(v * v for v in present)}


def group_partials(spec: CheckSpec, values: Sequence[float | None],
                   dialect: str) -> dict[str, Any]:
    """One group's partials of `spec`, read as the scan reads its row."""
    sql = aggregates(values, dialect)
    wanted = partials.inputs(spec, 0, dialect)
    return partials.read(spec, {role: sql[inp.fn] for role, inp in wanted.items()})


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
@pytest.mark.parametrize("name", STATS)
def test_combined_groups_equal_the_whole(name: str, dialect: str) -> None:
    """Any split of the rows into groups combines to the statistic of all of them."""
    rng = random.Random(f"{name}{dialect}")
    values = [rng.choice([None, round(rng.uniform(-50, 5000), 2)]) for _ in range(200)]
    spec = stat(name)
    cuts = sorted(rng.sample(range(1, 200), 6))
    groups = [values[a:b] for a, b in zip([0, *cuts], [*cuts, 200], strict=True)]
    whole = partials.finalize(spec, partials.combine(
        spec, [group_partials(spec, g, dialect) for g in groups]), UTC)
    direct = partials.finalize(spec, group_partials(spec, values, dialect), UTC)
    present = [v for v in values if v is not None]
    expected = {"min": min(present), "max": max(present), "sum": sum(present),
                "avg": statistics.fmean(present), "stddev": statistics.stdev(present)}[name]
    assert whole == pytest.approx(expected, rel=1e-9)
    assert direct == pytest.approx(expected, rel=1e-9)


def test_chan_merges_mean_and_deviation() -> None:
    """Chan's formula gives the variance of the union of two groups, whatever their sizes."""
    a, b = [1.0, 2.0, 4.0], [10.0, 30.0]
    merged = partials.chan(
        {"n": 3, "mean": statistics.fmean(a), "m2": statistics.variance(a) * 2},
        {"n": 2, "mean": 20.0, "m2": statistics.variance(b)})
    assert merged["n"] == 5
    assert merged["mean"] == pytest.approx(statistics.fmean(a + b))
    assert merged["m2"] / 4 == pytest.approx(statistics.variance(a + b))
    assert partials.chan({"n": 0, "mean": 0.0, "m2": 0.0}, merged) == merged


def test_empty_scope_values() -> None:
    """No groups at all (a GROUP BY over no rows): the empty-scope values of SPEC 2 and 8."""
    checks = specs("freshness: {column: at, max_age: 1h}", "row_count: {min: 0}",
                   "completeness: {columns: [x]}",
                   "validity: {name: v, column: x, not_in: [1]}",
                   *(f"statistic: {{column: x, stat: {s}, min: 0}}" for s in STATS),
                   "statistic: {column: x, stat: max_length, max: 1}")
    values = [partials.finalize(s, partials.combine(s, []), UTC) for s in checks]
    assert values == [math.inf, 0.0, 1.0, 1.0, None, None, 0.0, None, None, None]


def test_one_value_has_no_sample_deviation() -> None:
    """stddev of one value is undefined (var_samp is NULL): no value."""
    spec = stat("stddev")
    assert partials.finalize(spec, group_partials(spec, [5.0, None], "postgresql"), UTC) is None
    assert partials.finalize(spec, group_partials(spec, [5.0, 7.0], "sqlite"), UTC) == \
        pytest.approx(math.sqrt(2))


def test_groups_without_values_are_skipped() -> None:
    """A group whose values are all NULL adds nothing to min, max, sum or avg."""
    for name, expected in (("min", 2.0), ("max", 3.0), ("sum", 5.0), ("avg", 2.5)):
        spec = stat(name)
        parts = [group_partials(spec, g, "postgresql") for g in ([None], [2.0, 3.0], [])]
        assert partials.finalize(spec, partials.combine(spec, parts), UTC) == expected, name


def test_decimal_sums_stay_exact() -> None:
    """PostgreSQL's numeric sums are Decimals: they add exactly."""
    spec = stat("sum")
    parts = [{"sum": Decimal("0.10")}, {"sum": Decimal("0.20")}, {"sum": None}]
    combined = partials.combine(spec, parts)
    assert combined == {"sum": Decimal("0.30")}
    assert partials.finalize(spec, combined, UTC) == 0.3


def test_a_statistic_of_text_is_an_error() -> None:
    """min of a text column is not a number: a ValueError naming the column."""
    with pytest.raises(ValueError, match="min of x is not a number"):
        partials.finalize(stat("min"), {"min": "abc"}, UTC)


def test_freshness_takes_the_latest_of_all_groups() -> None:
    """The newest timestamp of any group decides the whole table's freshness."""
    [spec] = specs("freshness: {column: at, max_age: 1h}")
    now = datetime(2026, 1, 10, 12, tzinfo=UTC)
    parts = [{"latest": datetime(2026, 1, 10, 9), "now": now},
             {"latest": datetime(2026, 1, 10, 11), "now": now}, {"latest": None, "now": now}]
    berlin = ZoneInfo("Europe/Berlin")  # naive values in UTC+1: 11:00 is 10:00 UTC
    assert partials.finalize(spec, partials.combine(spec, parts), berlin) == 7200


def test_segment_labels() -> None:
    """NULL is __null__; values are text cut at 100 characters."""
    assert segments.label(None) == "__null__"
    assert segments.label(42) == "42"
    assert segments.label("x" * 150) == "x" * 100
    assert segments.label(b"DE") == "DE"


def test_publish_keeps_the_largest_and_folds_the_rest() -> None:
    """The max_segments largest by rows stay (ties by label); the others become __other__."""
    values = ["US", None, "DE", "FR", "AT"]
    rows = [2, 1, 3, 2, 1]
    published = segments.publish(values, rows, 2)
    assert [(s.label, s.rows, sorted(s.groups)) for s in published] == [
        ("DE", 3, [2]), ("FR", 2, [3]), ("__other__", 4, [0, 1, 4])]
    everything = segments.publish(values, rows, 5)
    assert [s.label for s in everything] == ["DE", "FR", "US", "AT", "__null__"]


def test_publish_merges_values_equal_after_the_cut() -> None:
    """Two values that share their first 100 characters are one segment, not two series."""
    long = "y" * 100
    published = segments.publish([long + "a", long + "b", "z"], [1, 1, 1], 5)
    assert [(s.label, s.rows) for s in published] == [(long, 2), ("z", 1)]


def test_publish_folds_into_a_real_other_value() -> None:
    """A column value `__other__` and the fold share one series: still max_segments + 1."""
    published = segments.publish(["__other__", "a", "b"], [5, 4, 1], 2)
    assert [(s.label, s.rows) for s in published] == [("a", 4), ("__other__", 6)]


def test_equal_inputs_share_one_column() -> None:
    """Checks that need the same aggregate (the rows under one where) read one column."""
    checks = specs("completeness: {columns: [a, b], where: \"k = 1\"}",
                   "row_count: {min: 0, where: \"k = 1\"}", "row_count: {name: all, min: 0}",
                   "statistic: {column: a, stat: avg, min: 0}")
    table = parse_config("version: 1\nwarehouses: {main: {url: 'sqlite://'}}\n"
                         "tables: [{name: t, checks: [{row_count: {}}]}]\n", env={}).tables[0]
    scope = Scope(table, "postgresql", UTC)
    sql = str(aggregate_query(scope, checks).compile(dialect=postgresql.dialect()))
    assert sql.count("count(CASE WHEN (k = 1) THEN 1 END)") == 1
    assert sql.count("count(*)") == 1
    assert sql.count("count(a)") == 1  # avg's count; completeness a counts under its where
    assert sql.count("count(CASE WHEN (k = 1) THEN a END)") == 1
    row = {"dq_rows": 4, "p1_count": 2, "p2_count": 3, "p3_count": 1, "p4_sum": Decimal(5),
           "p5_count": 2}
    answer = read_scan(scope, checks, [row])
    values = [partials.finalize(s, p, UTC) for s, p in zip(checks, answer.whole, strict=True)]
    assert values == [2 / 3, 1 / 3, 3.0, 4.0, 2.5]


def test_where_is_conditional_aggregation() -> None:
    """A check's where goes inside its aggregates as CASE WHEN, never into the WHERE clause."""
    checks = specs("statistic: {column: a, stat: max, max: 1, where: \"k = 'x'\"}",
                   "validity: {name: v, column: s, not_regex: '^t', where: \"k = 'y'\"}")
    table = parse_config("version: 1\nwarehouses: {main: {url: 'sqlite://'}}\n"
                         "tables: [{name: t, checks: [{row_count: {}}]}]\n", env={}).tables[0]
    query = aggregate_query(Scope(table, "postgresql", UTC), checks)
    sql = str(query.compile(dialect=postgresql.dialect(),
                            compile_kwargs={"literal_binds": True}))
    assert "max(CASE WHEN (k = 'x') THEN a END)" in sql
    assert "count(CASE WHEN ((k = 'y') AND CAST(s AS VARCHAR) !~ '^t') THEN 1 END)" in sql
    assert "count(CASE WHEN (k = 'y') THEN s END)" in sql
    assert " WHERE " not in sql
    assert isinstance(query, sa.Select)
