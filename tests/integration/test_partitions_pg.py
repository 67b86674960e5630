"""Partition slices on PostgreSQL: half-open windows, hour and day, lag, time zones (SPEC §2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers import run_cli, run_json, write_config

pytestmark = pytest.mark.postgres

EDGES = [  # (timestamptz, naive UTC twin)
    ("2026-11-19 23:59:59.999+00", "2026-11-19 23:59:59.999"),
    ("2026-11-20 00:00:00+00", "2026-11-20 00:00:00"),
    ("2026-11-20 13:00:00+00", "2026-11-20 13:00:00"),
    ("2026-11-20 13:59:59.5+00", "2026-11-20 13:59:59.5"),
    ("2026-11-20 14:00:00+00", "2026-11-20 14:00:00"),
    ("2026-11-20 23:30:00+00", "2026-11-20 23:30:00"),
    ("2026-11-21 00:00:00+00", "2026-11-21 00:00:00"),
]


@pytest.fixture
def events(make_table):  # type: ignore[no-untyped-def]
    """Rows on and around the slice boundaries of 2026-11-20, in both timestamp types."""
    return make_table("events", {"tstz": "timestamptz", "ts": "timestamp"}, EDGES)


def _table(column: str, granularity: str, lag: int = 0) -> str:
    return f"""
  - name: events
    partition: {{column: {column}, granularity: {granularity}, lag: {lag}}}
    checks:
      - row_count: {{min: 1}}
      - freshness: {{column: {column}, max_age: 100000d}}
"""


@pytest.mark.parametrize("column", ["tstz", "ts"])
def test_day_slice_is_half_open(events: str, column: str, pg_url: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """A day slice holds [00:00, next 00:00): the start is in, the next midnight is out."""
    config = write_config(tmp_path, pg_url, _table(column, "day"))
    _, results = run_json(capsys, config, "--partition", "2026-11-20")
    assert results["row_count"]["value"] == 5
    assert results["row_count"]["attributes"]["dq.partition"] == "2026-11-20"
    assert results["freshness"]["attributes"] == {
        "dq.warehouse": "main", "dq.table": "events", "dq.check": "freshness",
        "dq.column": column, "dq.partition": "2026-11-20"}


@pytest.mark.parametrize("column", ["tstz", "ts"])
def test_hour_slice(events: str, column: str, pg_url: str, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    """An hour slice holds [13:00, 14:00): 13:59:59.5 is in, 14:00 is out."""
    config = write_config(tmp_path, pg_url, _table(column, "hour"))
    _, results = run_json(capsys, config, "--partition", "2026-11-20T13")
    assert results["row_count"]["value"] == 2
    assert results["row_count"]["attributes"]["dq.partition"] == "2026-11-20T13"


@pytest.mark.parametrize(("column", "expected"), [("tstz", 2), ("ts", 0)])
def test_slices_follow_the_warehouse_time_zone(events: str, column: str, expected: int,
                                               pg_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """In Asia/Tokyo (UTC+9) the hour 2026-11-20T22 is 13:00-14:00 UTC for timestamptz rows,
    while naive timestamps are read as Tokyo wall-clock times (none fall at 22:xx)."""
    config = write_config(tmp_path, pg_url, _table(column, "hour"),
                          warehouse_extra="    timezone: Asia/Tokyo\n")
    _, results = run_json(capsys, config, "--partition", "2026-11-20T22")
    assert results["row_count"]["value"] == expected


def test_lag_picks_an_earlier_slice(make_table, pg_url: str, tmp_path: Path,  # type: ignore[no-untyped-def]
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """lag 1 checks yesterday's slice: its rows, and its label."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    rows = [(yesterday + timedelta(hours=h),) for h in (0, 5, 23)] + [(today,)]
    make_table("daily", {"at": "timestamptz"}, rows)
    table = ("\n  - name: daily\n    partition: {column: at, lag: 1}\n"
             "    checks:\n      - row_count: {min: 1}\n")
    _, results = run_json(capsys, write_config(tmp_path, pg_url, table))
    if datetime.now(UTC) >= today + timedelta(days=1):
        pytest.skip("the day changed during the test")
    assert results["row_count"]["value"] == 3
    assert results["row_count"]["attributes"]["dq.partition"] == yesterday.strftime("%Y-%m-%d")


def test_partition_text_must_match_granularity(events: str, pg_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """An hour slice asked of a day-partitioned table is a usage error (exit 2)."""
    config = write_config(tmp_path, pg_url, _table("tstz", "day"))
    code, out, err = run_cli(capsys, "run-once", "--config", str(config), "--partition",
                             "2026-11-20T13")
    assert code == 2
    assert "day slices, written like 2026-11-20" in err
    assert out == ""
