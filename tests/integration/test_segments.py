"""Segments (SPEC 8): every scanned check per value of a column, in the same single scan.

A segment's value must equal the same check run with `where: "<the segment's condition>"`;
the whole-table value must equal a run without `segment_by`; the published segments stay
bounded by `max_segments` + 1 whatever the column holds.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dqmon.config import parse_config
from dqmon.scan import scan_table
from dqmon.telemetry import Telemetry
from dqmon.warehouse import open_warehouses

from helpers import write_config
from rows import COLUMNS, ROWS, run_results

if TYPE_CHECKING:
    from engines import Engine

pytest_plugins = ["engines"]  # the `engine` fixture: each live engine in turn

# Every scanned kind; {w} is where the where-run puts its condition. avg_paid has its own.
CHECKS = [
    "freshness: {{column: created_at, max_age: 100000d{w}}}",
    "row_count: {{min: 2{w}}}",
    "completeness: {{columns: [email], min_ratio: 0.9{w}}}",
    "validity: {{name: real_status, column: status, not_in: [test, dummy], min_ratio: 0.9{w}}}",
    "validity: {{name: recent, column: created_at, between: ['2020-01-01', '2026-12-31']{w}}}",
    "validity: {{name: positive, condition: 'amount > 0'{w}}}",
    "statistic: {{column: amount, stat: min, min: 0{w}}}",
    "statistic: {{column: amount, stat: max, max: 50{w}}}",
    "statistic: {{column: amount, stat: sum, min: 0{w}}}",
    "statistic: {{column: amount, stat: avg, max: 30{w}}}",
    "statistic: {{column: amount, stat: stddev, max: 40{w}}}",
    "statistic: {{column: email, stat: min_length, min: 6{w}}}",
    "statistic: {{column: email, stat: max_length, max: 7{w}}}",
    "statistic: {{column: email, stat: avg_length, max: 7{w}}}",
]
OWN_WHERE = "status = 'paid'"
NOT_SEGMENTED = ["uniqueness: {columns: [id]}",
                 "statistic: {column: country, stat: distinct_count, min: 1}"]
# ranked by rows: DE 3, then FR and US 2 each (a tie: by label, FR first), NULL 1
SEGMENTS = {"DE": "country = 'DE'", "FR": "country = 'FR'",
            "__other__": "(country IS NULL OR country NOT IN ('DE', 'FR'))"}


def tables(segment_by: str = "", where: str | None = None) -> str:
    """The `t` table block: the scanned checks (each with `where`, if given), and the rest."""
    def condition(own: str | None) -> str:
        both = " AND ".join(f"({c})" for c in (own, where) if c)
        return f", where: \"{both}\"" if both else ""

    checks = [c.format(w=condition(None)) for c in CHECKS]
    checks.append(f"statistic: {{name: avg_paid, column: amount, stat: avg, min: 0"
                  f"{condition(OWN_WHERE)}}}")
    if where is None:
        checks += NOT_SEGMENTED
    body = "".join(f"      - {c}\n" for c in checks)
    return f"\n  - name: t\n{segment_by}    checks:\n{body}"


SEGMENT_BY = "    segment_by: {column: country, max_segments: 2}\n"


def same(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    """Counts, minima and maxima match exactly; averages and deviations within rounding."""
    for check, value in expected.items():
        if check == "freshness":  # the runs are seconds apart
            assert actual[check] == pytest.approx(value, abs=120), check
        elif isinstance(value, float) and check.startswith(("avg", "stddev")):
            assert actual[check] == pytest.approx(value, rel=1e-9), check
        else:
            assert actual[check] == value, check


def test_segment_values_equal_where_runs(engine: Engine, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Each published segment's value equals the check run with the segment's `where`."""
    engine.make("t", COLUMNS, ROWS)
    _, results, ordered = run_results(capsys, write_config(tmp_path, engine.url,
                                                            tables(SEGMENT_BY)))
    scanned = [c for c, s in results if s is None and not c.startswith(("uniq", "distinct"))]
    assert len(scanned) == len(CHECKS) + 1
    assert {s for _, s in results} == {None, *SEGMENTS}
    assert not {c for c, s in results if s is not None} & {"uniqueness_id",
                                                           "distinct_count_country"}
    for label, where in SEGMENTS.items():
        _, alone, _ = run_results(capsys, write_config(tmp_path, engine.url,
                                                       tables(where=where)))
        segment = {c: r["value"] for (c, s), r in results.items() if s == label}
        same({c: r["value"] for (c, _), r in alone.items()}, segment)
        assert {c: r["status"] for (c, s), r in results.items() if s == label} == {
            c: r["status"] for (c, _), r in alone.items()}, label
    _, whole, _ = run_results(capsys, write_config(tmp_path, engine.url, tables()))
    same({c: r["value"] for (c, _), r in whole.items()},
         {c: r["value"] for (c, s), r in results.items() if s is None})
    # spec order, each check's segments right after it, largest first and __other__ last
    keys = [(r["check"], r["attributes"].get("dq.segment")) for r in ordered]
    assert keys[:4] == [("freshness", None), ("freshness", "DE"), ("freshness", "FR"),
                        ("freshness", "__other__")]


def test_null_segment_and_no_other(engine: Engine, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """NULL is the `__null__` segment; with room for every value there is no `__other__`."""
    engine.make("t", COLUMNS, ROWS)
    segment_by = "    segment_by: {column: country, max_segments: 10}\n"
    _, results, _ = run_results(capsys, write_config(tmp_path, engine.url,
                                                     tables(segment_by)))
    assert {s for _, s in results} == {None, "DE", "FR", "US", "__null__"}
    _, alone, _ = run_results(capsys, write_config(tmp_path, engine.url,
                                                   tables(where="country IS NULL")))
    same({c: r["value"] for (c, _), r in alone.items()},
         {c: r["value"] for (c, s), r in results.items() if s == "__null__"})
    assert results[("row_count", "__null__")]["value"] == 1
    assert results[("sum_amount", "__null__")]["value"] == 7.25


def test_a_failing_scan_publishes_no_segment(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A scan that fails errors every check it answers, and no segment result appears."""
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (country TEXT, amount NUMERIC)")
        conn.execute("INSERT INTO t VALUES ('DE', 1)")
    conn.close()
    table = """
  - name: t
    segment_by: {column: nope, max_segments: 3}
    checks:
      - row_count: {min: 1}
      - statistic: {column: amount, stat: avg, min: 0}
      - statistic: {column: amount, stat: distinct_count, min: 0}
"""
    code, results, _ = run_results(capsys, write_config(tmp_path, f"sqlite:///{db}", table))
    assert {k: r["status"] for k, r in results.items()} == {
        ("row_count", None): "error", ("avg_amount", None): "error",
        ("distinct_count_amount", None): "pass"}
    assert "nope" in results[("row_count", None)]["error"]
    assert code == 3


@pytest.mark.postgres
def test_one_scan_with_statistics_wheres_and_segments(make_table, pg_url: str,  # type: ignore[no-untyped-def]
                                                      pg_conn: psycopg.Connection[Any],
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Freshness, row_count, completeness, validity, five statistics, two per-check wheres
    and segment_by read the table exactly once (one sequential scan)."""
    rows = [(i, ["DE", "FR", "US", None][i % 4], i * 1.5, f"u{i}@x.io", "paid",
             f"2026-01-{1 + i % 28:02d} 10:00:00+00") for i in range(5000)]
    make_table("big", {"id": "integer", "country": "text", "amount": "numeric(10,2)",
                       "email": "text", "status": "text", "created_at": "timestamptz"}, rows)
    table = """
  - name: big
    segment_by: {column: country, max_segments: 2}
    checks:
      - freshness: {column: created_at, max_age: 100000d}
      - row_count: {min: 1}
      - completeness: {columns: [email], where: "country = 'DE'"}
      - validity: {name: paid, column: status, in: [paid], where: "amount > 10"}
      - statistic: {column: amount, stat: min, min: 0}
      - statistic: {column: amount, stat: max, min: 0}
      - statistic: {column: amount, stat: avg, min: 0}
      - statistic: {column: amount, stat: stddev, min: 0}
      - statistic: {column: email, stat: max_length, max: 254}
"""
    before = seq_scans(pg_conn, "big")
    _, results, _ = run_results(capsys, write_config(tmp_path, pg_url, table))
    assert len(results) == 9 * 4  # the whole table, DE, FR and __other__
    assert all(r["status"] == "pass" for r in results.values())
    deadline = time.monotonic() + 10  # statistics reach the view when the backend flushes
    while seq_scans(pg_conn, "big") == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert seq_scans(pg_conn, "big") - before == 1


def seq_scans(conn: psycopg.Connection[Any], table: str) -> int:
    """Return the table's sequential scans as the statistics system shows them now."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = %s",
                       (table,)).fetchone()
    assert row is not None
    return int(row[0])


def test_segment_series_stay_bounded(tmp_path: Path) -> None:
    """10,000 segment values publish max_segments + 1 series per check on /metrics."""
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (k TEXT, amount NUMERIC)")
        # value v<i> has 1 + i % 7 rows: the largest hold 7 rows each, ranked by label
        conn.executemany("INSERT INTO t VALUES (?, ?)",
                         [(f"v{i:05d}", i) for i in range(10_000) for _ in range(1 + i % 7)])
    conn.close()
    config = parse_config(f"""version: 1
warehouses: {{main: {{url: "sqlite:///{db}"}}}}
tables:
  - name: t
    segment_by: {{column: k, max_segments: 5}}
    checks:
      - row_count: {{min: 1}}
      - statistic: {{column: amount, stat: avg, min: 0}}
""", env={})
    [warehouse] = open_warehouses(config.warehouses).values()
    telemetry = Telemetry(daemon=True, export=False)
    try:
        results = scan_table(config.tables[0], warehouse)
        telemetry.record(results)
        body, _ = telemetry.metrics_text()
    finally:
        telemetry.shutdown()
        warehouse.dispose()
    families = {f.name: f.samples for f in text_string_to_metric_families(body.decode())}
    for family, check in (("dq_row_count", "row_count"), ("dq_statistic_value", "avg_amount"),
                          ("dq_check_passed", "row_count"), ("dq_check_up", "avg_amount")):
        segments = [s.labels.get("dq_segment", "") for s in families[family]
                    if s.labels["dq_check"] == check]
        assert sorted(segments) == ["", "__other__", "v00006", "v00013", "v00020",
                                    "v00027", "v00034"], family
    other = next(r for r in results if r.check == "row_count" and r.segment == "__other__")
    assert other.value == sum(1 + i % 7 for i in range(10_000)) - 5 * 7
