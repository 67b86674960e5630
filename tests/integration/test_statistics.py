"""Statistics, per-check `where` and the new validity rules on every live engine (SPEC 8).

The same eight rows on PostgreSQL, SQLite, DuckDB and MariaDB give the same exact values;
the expected ones are worked out by hand in the comments.
"""

from __future__ import annotations

import math
import statistics
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dqmon.checks import Scope, aggregate_query, statistic_query
from dqmon.config import parse_config

from helpers import run_cli, write_config
from rows import COLUMNS, ROWS, run_results

if TYPE_CHECKING:
    from engines import Engine

pytest_plugins = ["engines"]  # the `engine` fixture: each live engine in turn

AMOUNTS = [float(r[2]) for r in ROWS if r[2] is not None]  # 7 values; the NULL is skipped
LENGTHS = [len(r[3]) for r in ROWS if r[3] is not None]  # characters: "é@x.io" is 6

STATS = """
  - name: t
    checks:
      - statistic: {column: amount, stat: min, min: -10}
      - statistic: {column: amount, stat: max, max: 50}
      - statistic: {column: amount, stat: sum, min: 0}
      - statistic: {column: amount, stat: avg, min: 10, max: 500}
      - statistic: {column: amount, stat: stddev, max: 100}
      - statistic: {column: email, stat: min_length, min: 1}
      - statistic: {column: email, stat: max_length, max: 254}
      - statistic: {column: email, stat: avg_length, max: 254}
      - statistic: {column: country, stat: distinct_count, min: 1}
      - statistic: {name: avg_de, column: amount, stat: avg, where: "country = 'DE'", min: 0}
      - row_count: {name: paid_rows, where: "status = 'paid'", min: 1}
      - completeness: {columns: [email], where: "country = 'DE'", min_ratio: 0.5}
      - validity: {name: real_status, column: status, not_in: [test, dummy], min_ratio: 0.5}
      - validity: {name: no_test_email, column: email, not_regex: '^test@', min_ratio: 0.5}
"""
EXPECTED = {
    "min_amount": -3.0,
    "max_amount": 100.0,
    "sum_amount": 179.75,  # 10 + 20 + 5.5 + 100 + 7.25 - 3 + 40
    "avg_amount": pytest.approx(179.75 / 7),
    "stddev_amount": pytest.approx(statistics.stdev(AMOUNTS)),
    "min_length_email": 6,  # a@x.io, test@x and é@x.io (6 characters, 7 bytes)
    "max_length_email": 8,  # ccc@x.io
    "avg_length_email": pytest.approx(47 / 7),
    "distinct_count_country": 3,  # DE, FR, US: NULL is not a value
    "avg_de": 15.0,  # 10 and 20; the DE row without an amount is skipped
    "paid_rows": 4,  # ids 1, 3, 5, 8
    "completeness_email": pytest.approx(2 / 3),  # DE rows 1, 2, 3: row 3 has no email
    "real_status": pytest.approx(5 / 7),  # 7 non-null statuses, test and dummy not valid
    "no_test_email": pytest.approx(6 / 7),  # 7 non-null emails, test@x matches
}


def values(results: dict[tuple[str, str | None], dict[str, Any]]) -> dict[str, Any]:
    """Return {check: value} of the whole-table results."""
    return {check: r["value"] for (check, segment), r in results.items() if segment is None}


def test_statistics_are_exact(engine: Engine, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """Every statistic, per-check where and new rule gives the same exact value everywhere."""
    engine.make("t", COLUMNS, ROWS)
    code, results, _ = run_results(capsys, write_config(tmp_path, engine.url, STATS))
    assert values(results) == EXPECTED
    failed = {check for (check, _), r in results.items() if r["status"] != "pass"}
    assert failed == {"max_amount"}  # 100 > 50
    assert results[("avg_amount", None)]["attributes"]["dq.stat"] == "avg"
    assert results[("avg_amount", None)]["metric"] == "dq.statistic_value"
    assert code == 1


def test_percentiles(engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """p50/p90 interpolate continuously where the engine has them; elsewhere exit 2."""
    engine.make("t", COLUMNS, ROWS)
    table = """
  - name: t
    checks:
      - statistic: {column: amount, stat: p50, max: 100}
      - statistic: {column: amount, stat: p90, max: 100}
      - statistic: {name: p50_fr, column: amount, stat: p50, where: "country = 'FR'", max: 100}
"""
    config = write_config(tmp_path, engine.url, table)
    if engine.name in ("sqlite", "mariadb"):
        code, _, _ = run_results_or_usage(capsys, config)
        assert code == 2
        return
    _, results, _ = run_results(capsys, config)
    # sorted: -3, 5.5, 7.25, 10, 20, 40, 100; p90 at 0.9 * 6 = 5.4: 40 + 0.4 * 60
    assert values(results) == {"p50_amount": 10.0, "p90_amount": pytest.approx(64.0),
                               "p50_fr": pytest.approx(52.75)}


def run_results_or_usage(capsys: pytest.CaptureFixture[str],
                         config: Path) -> tuple[int, str, str]:
    """Run the CLI expecting a config error: return (code, stdout, stderr)."""
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--no-export")
    assert "no percentile function" in err
    return code, out, err


BETWEEN = """
  - name: t
    checks:
      - validity: {name: dates, column: created_at, between: ["2020-01-01", "2026-12-31"]}
      - validity: {name: times, column: created_at,
                   between: ["2026-01-10T10:00:00", "2026-01-11T00:00:00"]}
      - validity: {name: offsets, column: created_at,
                   between: ["2026-01-10T11:00:00+01:00", "2026-01-10T12:00:00+02:00"]}
      - validity: {name: days, column: day, between: ["2020-01-01", "2026-01-10"]}
      - validity: {name: day_times, column: day,
                   between: ["2026-01-10T00:00:00", "2026-01-11T00:00:00"]}
"""


def test_between_dates_and_times(engine: Engine, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """ISO-8601 bounds compare as instants on timestamp and date columns, inclusive."""
    engine.make("t", COLUMNS, ROWS)
    _, results, _ = run_results(capsys, write_config(tmp_path, engine.url, BETWEEN))
    assert values(results) == {
        # 7 timestamps: 2030-01-01 and 2019-12-31 23:59:59 are out, 2020-01-01 00:00 is in
        "dates": pytest.approx(5 / 7),
        # ids 1 (10:00, the lower bound), 2, and 3 (midnight, the upper bound)
        "times": pytest.approx(3 / 7),
        # both bounds are 10:00 UTC: only id 1
        "offsets": pytest.approx(1 / 7),
        # 7 days: 2026-01-10 twice and 2020-01-01
        "days": pytest.approx(3 / 7),
        # a date is its midnight: 2026-01-10 (twice) and 2026-01-11
        "day_times": pytest.approx(4 / 7),
    }


@pytest.mark.postgres
def test_between_timestamptz_follows_the_warehouse_zone(make_table, pg_url: str,  # type: ignore[no-untyped-def]
                                                        tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """On timestamptz, a bound without offset is wall-clock time in the warehouse's zone."""
    make_table("tz", {"at": "timestamptz"}, [("2026-01-10 10:00:00+00",),
                                              ("2026-01-10 15:00:00+00",)])
    table = """
  - name: tz
    checks:
      - validity: {name: morning, column: at,
                   between: ["2026-01-10T05:00:00", "2026-01-10T05:00:00"]}
      - validity: {name: utc, column: at,
                   between: ["2026-01-10T15:00:00Z", "2026-01-10T15:00:00Z"]}
"""
    config = write_config(tmp_path, pg_url, table, warehouse_extra="    timezone: America/New_York\n")
    _, results, _ = run_results(capsys, config)
    # 05:00 in New York is 10:00 UTC: the first row; 15:00Z is the second whatever the zone
    assert values(results) == {"morning": 0.5, "utc": 0.5}


EMPTY = """
  - name: t
    where: "1 = 0"
    checks:
      - statistic: {column: amount, stat: min, min: -10}
      - statistic: {column: amount, stat: avg, min: 0}
      - statistic: {column: amount, stat: stddev, min: 0}
      - statistic: {column: amount, stat: sum, min: 0}
      - statistic: {column: email, stat: max_length, max: 254}
      - statistic: {column: country, stat: distinct_count, min: 0}
      - row_count: {name: paid_rows, where: "status = 'paid'", min: 0}
      - validity: {name: real_status, column: status, not_in: [test]}
"""


def test_empty_scope(engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No rows: a statistic has no value and fails; sum and distinct_count are 0; ratios 1."""
    engine.make("t", COLUMNS, ROWS)
    code, results, _ = run_results(capsys, write_config(tmp_path, engine.url, EMPTY))
    assert {c: (r["value"], r["status"]) for (c, _), r in results.items()} == {
        "min_amount": (None, "fail"), "avg_amount": (None, "fail"),
        "stddev_amount": (None, "fail"), "max_length_email": (None, "fail"),
        "sum_amount": (0, "pass"), "distinct_count_country": (0, "pass"),
        "paid_rows": (0, "pass"), "real_status": (1.0, "pass")}
    assert all(r["error"] is None for r in results.values())
    assert code == 1


def test_one_value_has_no_sample_deviation(engine: Engine, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The sample standard deviation of a single value is undefined: no value, a failure."""
    engine.make("t", COLUMNS, ROWS)
    table = """
  - name: t
    checks:
      - statistic: {column: amount, stat: stddev, where: "id = 1", max: 1}
      - statistic: {name: two, column: amount, stat: stddev, where: "id <= 2", max: 10}
"""
    _, results, _ = run_results(capsys, write_config(tmp_path, engine.url, table))
    assert values(results) == {"stddev_amount": None, "two": pytest.approx(math.sqrt(50))}


def test_partition_slice(engine: Engine, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    """A partition slice limits the statistics: 2026-01-10 holds ids 1 and 2."""
    engine.make("t", COLUMNS, ROWS)
    table = """
  - name: t
    partition: {column: created_at, granularity: day}
    checks:
      - statistic: {column: amount, stat: sum, min: 0}
      - statistic: {column: amount, stat: avg, min: 0}
      - statistic: {column: amount, stat: stddev, min: 0}
      - statistic: {column: email, stat: max_length, min: 0}
      - statistic: {column: country, stat: distinct_count, min: 0}
      - row_count: {name: paid_rows, where: "status = 'paid'", min: 0}
"""
    config = write_config(tmp_path, engine.url, table)
    _, results, _ = run_results(capsys, config, "--partition", "2026-01-10")
    assert values(results) == {"sum_amount": 30.0, "avg_amount": 15.0,
                               "stddev_amount": pytest.approx(math.sqrt(50)),
                               "max_length_email": 7, "distinct_count_country": 1,
                               "paid_rows": 1}
    assert {r["attributes"]["dq.partition"] for r in results.values()} == {"2026-01-10"}


COMPILED = """version: 1
warehouses: {main: {url: "URL"}}
tables:
  - name: t
    table: sales.orders
    segment_by: {column: country, max_segments: 3}
    checks:
      - freshness: {column: created_at, max_age: 1h}
      - statistic: {column: amount, stat: stddev, max: 1, where: "country = 'DE'"}
      - statistic: {column: email, stat: avg_length, max: 1}
      - validity: {name: recent, column: created_at, between: ["2020-01-01", "2026-01-01"]}
      - validity: {name: nt, column: status, not_in: [test]}
      - validity: {name: nr, column: email, not_regex: '^t'}
      - statistic: {column: amount, stat: p95, max: 1, where: "country = 'DE'"}
      - statistic: {column: amount, stat: distinct_count, max: 1}
"""


@pytest.mark.parametrize(("url", "expected"), [
    ("snowflake://u@account/db", [
        "var_samp(CASE WHEN (country = 'DE') THEN amount END)",
        "sum(length(CAST(email AS VARCHAR)))", "BETWEEN DATE '2020-01-01' AND DATE '2026-01-01'",
        "status NOT IN ('test')", "regexp_instr(CAST(email AS VARCHAR), '^t') <= 0",
        "max(CURRENT_TIMESTAMP)", "GROUP BY country",
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY amount) AS dq_value",
        "WHERE (country = 'DE')", "count(DISTINCT amount)"]),
    ("bigquery://project/dataset", [
        "var_samp(CASE WHEN (country = 'DE') THEN `amount` END)",
        "sum(length(CAST(`email` AS STRING)))", "BETWEEN '2020-01-01' AND '2026-01-01'",
        "NOT REGEXP_CONTAINS(CAST(`email` AS STRING), '^t')", "GROUP BY `country`",
        "percentile_cont(`amount`, 0.95) OVER () AS `dq_value`", "LIMIT 1"]),
    ("trino://u@h:8080/catalog", [
        "var_samp(CASE WHEN (country = 'DE') THEN amount END)",
        "sum(length(CAST(email AS VARCHAR)))", "BETWEEN DATE '2020-01-01' AND DATE '2026-01-01'",
        "NOT regexp_like(CAST(email AS VARCHAR), '^t')", "GROUP BY country",
        "approx_percentile(amount, 0.95) AS dq_value", "count(DISTINCT amount)"]),
])
def test_compiles_for_other_dialects(url: str, expected: list[str]) -> None:
    """The grouped scan and the statistics' own queries compile for Snowflake, BigQuery, Trino."""
    try:
        dialect = make_url(url).get_dialect()()
    except (ImportError, sa.exc.NoSuchModuleError):
        pytest.skip(f"the dialect package for {url} is not installed")
    table = parse_config(COMPILED.replace("URL", url), env={}).tables[0]
    scope = Scope(table, dialect.name, UTC)
    kwargs = {"literal_binds": True, "render_postcompile": True}
    scan = str(aggregate_query(scope, [c for c in table.checks if c.scanned])
               .compile(dialect=dialect, compile_kwargs=kwargs))
    own = [str(statistic_query(scope, c).compile(dialect=dialect, compile_kwargs=kwargs))
           for c in table.checks if c.kind == "statistic" and not c.scanned]
    text = "\n".join([scan, *own])
    assert [e for e in expected if e not in text] == []
    assert scan.count("SELECT") == 1 and scan.count("FROM") == 1
