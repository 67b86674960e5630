"""Every check kind against a real PostgreSQL, on tables with exact known defects (SPEC §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli, run_json, write_config

pytestmark = pytest.mark.postgres

ORDERS = {"id": "integer", "customer_id": "integer", "email": "text", "amount": "numeric(10,2)",
          "status": "text", "created_at": "timestamptz"}


@pytest.fixture
def orders(make_table):  # type: ignore[no-untyped-def]
    """Ten orders with known defects: 2 null customers, 1 duplicate id, bad emails and amounts."""
    rows = [
        (1, 10, "a@x.io", 5.00, "paid", "2026-11-20 10:00:00+00"),
        (2, 11, "b@x.io", 0.00, "paid", "2026-11-20 11:00:00+00"),
        (3, None, "c@x.io", 100.00, "shipped", "2026-11-20 12:00:00+00"),
        (4, 12, "not-an-email", -3.50, "pending", "2026-11-20 13:00:00+00"),
        (5, None, None, None, "refunded", "2026-11-20 14:00:00+00"),
        (5, 13, "d@x.io", 100.01, None, "2026-11-20 15:00:00+00"),
        (6, 14, "e@x.io", 42.00, "paid", "2026-11-20 16:00:00+00"),
        (7, 15, "f@x", 7.00, "cancelled", "2026-11-20 17:00:00+00"),
        (None, 16, "g@x.io", 8.00, "paid", "2026-11-20 18:00:00+00"),
        (8, 17, "h@x.io", 9.00, "test", "2026-11-20 19:00:00+00"),
    ]
    return make_table("orders", ORDERS, rows)


TABLE = """
  - name: orders
    checks:
      - row_count: {min: 10, max: 10}
      - completeness: {columns: [id, customer_id, email]}
      - validity: {name: positive, condition: "amount > 0"}
      - validity: {name: status_known, column: status, in: [pending, paid, shipped, cancelled, test]}
      - validity: {name: email_format, column: email, regex: '^[^@]+@[^@]+\\.[^@]+$'}
      - validity: {name: amount_range, column: amount, between: [0, 100]}
      - uniqueness: {columns: [id]}
      - uniqueness: {columns: [id, customer_id]}
"""


def test_values_are_exact(orders: str, pg_url: str, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    """Each aggregate and uniqueness check returns the exact ratio its definition implies."""
    code, results = run_json(capsys, write_config(tmp_path, pg_url, TABLE))
    values = {name: r["value"] for name, r in results.items()}
    assert values == {
        "row_count": 10,
        "completeness_id": 0.9,
        "completeness_customer_id": 0.8,
        "completeness_email": 0.9,
        # condition: NULL amount counts as invalid; 0.00 and -3.50 fail: 7 of 10
        "positive": 0.7,
        # column rules skip NULLs: 9 statuses considered, "refunded" is the only bad one
        "status_known": pytest.approx(8 / 9),
        # 9 emails considered; "not-an-email" and "f@x" are invalid
        "email_format": pytest.approx(7 / 9),
        # between is inclusive: 0.00 and 100.00 pass, -3.50 and 100.01 fail, NULL skipped
        "amount_range": pytest.approx(7 / 9),
        # 9 non-null ids, 8 distinct
        "uniqueness_id": pytest.approx(8 / 9),
        # rows with both keys non-null: 7; (5,13) vs (5,NULL) -> the NULL one is excluded
        "uniqueness_id_customer_id": 1.0,
    }
    assert {n: r["status"] for n, r in results.items() if r["status"] == "pass"} == {
        "row_count": "pass", "uniqueness_id_customer_id": "pass"}
    assert code == 1


def test_where_limits_every_check(orders: str, pg_url: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`where` applies to aggregate and uniqueness checks alike."""
    table = TABLE.replace("    checks:", "    where: \"status <> 'test' AND id IS NOT NULL\"\n"
                                          "    checks:", 1)
    _, results = run_json(capsys, write_config(tmp_path, pg_url, table))
    # out: the test row, the NULL id, and the NULL status (NULL <> 'test' is not true)
    assert results["row_count"]["value"] == 7
    assert results["completeness_customer_id"]["value"] == pytest.approx(5 / 7)
    assert results["uniqueness_id"]["value"] == 1.0  # the second id 5 had the NULL status


def test_empty_scope(orders: str, pg_url: str, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    """An empty scope: count 0, ratios 1.0 and passing, freshness +Inf and failing."""
    table = """
  - name: orders
    where: "false"
    checks:
      - freshness: {column: created_at, max_age: 1d}
      - row_count: {min: 0}
      - completeness: {columns: [id]}
      - validity: {name: positive, condition: "amount > 0"}
      - uniqueness: {columns: [id]}
"""
    code, results = run_json(capsys, write_config(tmp_path, pg_url, table))
    assert {n: (r["value"], r["status"]) for n, r in results.items()} == {
        "freshness": ("+Inf", "fail"),
        "row_count": (0, "pass"),
        "completeness_id": (1.0, "pass"),
        "positive": (1.0, "pass"),
        "uniqueness_id": (1.0, "pass"),
    }
    assert code == 1


def test_one_scan_for_all_aggregate_checks(orders: str, pg_url: str, pg_conn, tmp_path: Path,  # type: ignore[no-untyped-def]
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Freshness, row count, completeness and validity together read the table exactly once."""
    table = """
  - name: orders
    checks:
      - freshness: {column: created_at, max_age: 1d}
      - row_count: {min: 1}
      - completeness: {columns: [id, customer_id, email, amount]}
      - validity: {name: positive, condition: "amount > 0"}
      - validity: {name: status_known, column: status, in: [paid]}
      - validity: {name: email_format, column: email, regex: '@'}
      - validity: {name: amount_range, column: amount, between: [0, 100]}
"""

    def seq_scans() -> int:
        pg_conn.execute("SELECT pg_stat_clear_snapshot()")
        row = pg_conn.execute(
            "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'orders'").fetchone()
        return int(row[0])

    before = seq_scans()
    _, results = run_json(capsys, write_config(tmp_path, pg_url, table))
    assert len(results) == 10
    # statistics reach pg_stat_user_tables when the backend reports them; poll briefly
    import time
    deadline = time.monotonic() + 5
    while seq_scans() == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert seq_scans() - before == 1


def test_freshness_timestamp_kinds(make_table, pg_url: str, pg_conn, tmp_path: Path,  # type: ignore[no-untyped-def]
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Freshness is right for timestamptz, for naive UTC timestamps, and for naive local ones."""
    make_table("events", {"tstz": "timestamptz", "ts_utc": "timestamp", "ts_ny": "timestamp"}, [])
    pg_conn.execute("""INSERT INTO events VALUES (now() - interval '3 hours',
        (now() AT TIME ZONE 'UTC') - interval '2 hours',
        (now() AT TIME ZONE 'America/New_York') - interval '1 hour')""")
    table = """
  - name: events
    checks:
      - freshness: {column: tstz, max_age: 4h}
      - freshness: {name: fresh_utc, column: ts_utc, max_age: 1h}
"""
    _, results = run_json(capsys, write_config(tmp_path, pg_url, table))
    assert 3 * 3600 <= results["freshness"]["value"] < 3 * 3600 + 60
    assert results["freshness"]["status"] == "pass"
    assert 2 * 3600 <= results["fresh_utc"]["value"] < 2 * 3600 + 60
    assert results["fresh_utc"]["status"] == "fail"
    assert results["fresh_utc"]["threshold"] == {"max": 3600.0}

    table = "\n  - name: events\n    checks:\n      - freshness: {column: ts_ny, max_age: 2h}\n"
    config = write_config(tmp_path, pg_url, table,
                          warehouse_extra="    timezone: America/New_York\n")
    _, results = run_json(capsys, config)
    assert 3600 <= results["freshness"]["value"] < 3600 + 60


def test_schema_counts_missing_and_mistyped(orders: str, pg_url: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Schema counts expected columns that are missing or of another type family."""
    table = """
  - name: orders
    checks:
      - schema: {columns: {id: integer, amount: numeric, created_at: timestamp, email: text}}
      - schema: {name: drifted, columns: {id: text, amount: integer, gone: date, status: text}}
"""
    code, results = run_json(capsys, write_config(tmp_path, pg_url, table))
    assert (results["schema"]["value"], results["schema"]["status"]) == (0, "pass")
    assert (results["drifted"]["value"], results["drifted"]["status"]) == (3, "fail")
    assert results["drifted"]["threshold"] == {"max": 0}
    assert code == 1


def test_custom_value_bounds_and_errors(orders: str, pg_url: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Custom publishes its one number; bounds decide; a non-number is an error (exit 3)."""
    table = """
  - name: orders
    checks:
      - custom: {name: paid, sql: "select count(*) from orders where status = 'paid'", min: 4, max: 4}
      - custom: {name: too_many, sql: "select sum(amount) from orders", max: 100}
      - custom: {name: words, sql: "select 'many'", max: 1}
"""
    code, results = run_json(capsys, write_config(tmp_path, pg_url, table))
    assert (results["paid"]["value"], results["paid"]["status"]) == (4, "pass")
    assert (results["too_many"]["value"], results["too_many"]["status"]) == (267.51, "fail")
    assert results["words"]["status"] == "error"
    assert "non-number" in results["words"]["error"]
    assert code == 3


def test_severity_and_exit_codes(orders: str, pg_url: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A failing warning exits 0, a failing critical 1, an error 3, a usage error 2."""
    warn = "\n  - name: orders\n    checks:\n      - row_count: {max: 1, severity: warning}\n"
    crit = "\n  - name: orders\n    checks:\n      - row_count: {max: 1}\n"
    broken = ("\n  - name: orders\n    checks:\n      - row_count: {max: 1}\n"
              "      - custom: {name: bad, sql: 'select nope from orders', max: 1}\n")
    for tables, expected in ((warn, 0), (crit, 1), (broken, 3)):
        config = write_config(tmp_path, pg_url, tables)
        code, results = run_json(capsys, config)
        assert code == expected, tables
    assert results["bad"]["error"].startswith("column \"nope\" does not exist")
    code, _, err = run_cli(capsys, "run-once", "--config", str(config), "--table", "nope")
    assert code == 2 and "no table named 'nope'" in err
    code, _, err = run_cli(capsys, "run-once", "--config", str(config), "--partition", "2026-11-20")
    assert code == 2 and "has no partition" in err
    code, _, err = run_cli(capsys, "run-once", "--config", str(config), "--check", "ghost")
    assert code == 2 and "no check named ghost" in err


def test_text_output_and_check_filter(orders: str, pg_url: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--check narrows the run; text output has one row per check and a summary line."""
    config = write_config(tmp_path, pg_url, TABLE)
    code, out, _ = run_cli(capsys, "run-once", "--config", str(config), "--no-export",
                           "--check", "row_count", "--check", "positive")
    lines = out.splitlines()
    assert lines[0].split() == ["TABLE", "CHECK", "VALUE", "THRESHOLD", "STATUS"]
    assert lines[1].split() == ["orders", "row_count", "10", "10..10", "PASS"]
    assert lines[2].split() == ["orders", "positive", "0.7000", ">=", "1.0000", "FAIL", "(critical)"]
    assert lines[-1] == "2 checks: 1 passed, 1 failed, 0 errors"
    assert code == 1
