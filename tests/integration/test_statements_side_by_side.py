"""run-once lends a lone table the warehouse's spare connections (issue 11).

Each custom check sleeps, then counts the probe queries active at that moment in
pg_stat_activity: the first to finish sees 2 when the table's statements run side by side,
and every one sees 1 when they run one at a time.
"""

from __future__ import annotations

from pathlib import Path

from dqmon.config import load_config
from dqmon.plan import scan_plan
from dqmon.warehouse import open_warehouses

from helpers import write_config

PROBE = ("select (select count(*) from pg_stat_activity where state = 'active' "
         "and query like '%dq_side_probe%') from pg_sleep(0.5)")
TABLE = f"""
  - name: probe
    table: pg_catalog.pg_class
    checks:
      - custom: {{name: first, sql: "{PROBE} /* dq_side_probe */", min: 0}}
      - custom: {{name: second, sql: "{PROBE} /* dq_side_probe */", min: 0}}
"""


def _concurrency(tmp_path: Path, url: str, max_connections: int) -> float:
    """Scan the probe table with `max_connections`; return the most probes seen at once."""
    config = load_config(str(write_config(tmp_path, url, TABLE,
                                          warehouse_extra=f"    max_connections: {max_connections}\n")))
    warehouses = open_warehouses(config.warehouses)
    try:
        results = scan_plan([(t, t.checks, None) for t in config.tables], warehouses)
    finally:
        for warehouse in warehouses.values():
            warehouse.dispose()
    assert {r.status for r in results} == {"pass"}, [r.error for r in results]
    return max(r.value for r in results if r.value is not None)


def test_a_lone_table_runs_its_statements_side_by_side(pg_url: str, tmp_path: Path) -> None:
    """One table, 4 connections: both probes see each other."""
    assert _concurrency(tmp_path, pg_url, 4) == 2


def test_one_connection_runs_one_statement_at_a_time(pg_url: str, tmp_path: Path) -> None:
    """One connection: each probe sees only itself (so the test above can fail)."""
    assert _concurrency(tmp_path, pg_url, 1) == 1
