"""Benchmark: dqmon's scan of one table vs the best hand-written SQL for the same results.

Builds `orders` with N rows in a throwaway PostgreSQL database (benchmarks/_orders.py, shared
with benchmarks/peers.py), then times, best of R:
  dqmon        scan_table() for 10 checks (freshness, row_count, 3 completeness, 4 validity,
               uniqueness): one aggregate scan plus one uniqueness query;
  handwritten  the same answers in the best SQL we could write by hand: one FILTER aggregate
               plus a separate count(DISTINCT) (PITFALLS.md: mixing it in stops parallel scans);
  per-check    one query per check, as tools that run checks independently do.
Ratios are measured in one run on one table, so a noisy machine cancels out.

    python benchmarks/scan_vs_sql.py --rows 2000000 --repeat 5
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from typing import Any

import psycopg
from _orders import orders_database, sqlalchemy_url

from dqmon.config import parse_config
from dqmon.scan import scan_table
from dqmon.warehouse import Warehouse

CHECKS = """
version: 1
# the throwaway database is reached as the admin role, a superuser: allowed explicitly
warehouses: {{main: {{url: "{url}", statement_timeout: 10m, allow_privileged_role: true}}}}
tables:
  - name: orders
    checks:
      - freshness: {{column: created_at, max_age: 2h}}
      - row_count: {{min: 1}}
      - completeness: {{columns: [order_id, customer_id, amount]}}
      - validity: {{name: positive, condition: "amount > 0"}}
      - validity: {{name: status_known, column: status, in: [pending, paid, shipped, cancelled]}}
      - validity: {{name: email_format, column: email, regex: '^[^@]+@[^@]+\\.[^@]+$'}}
      - validity: {{name: amount_range, column: amount, between: [0, 100000]}}
      - uniqueness: {{columns: [order_id]}}
"""

HANDWRITTEN = [
    """SELECT count(*), max(created_at), now(), count(order_id), count(customer_id),
              count(amount), count(*) FILTER (WHERE amount > 0),
              count(*) FILTER (WHERE status IN ('pending','paid','shipped','cancelled')),
              count(status), count(*) FILTER (WHERE email ~ '^[^@]+@[^@]+\\.[^@]+$'),
              count(email), count(*) FILTER (WHERE amount BETWEEN 0 AND 100000)
       FROM orders""",
    "SELECT count(DISTINCT order_id), count(order_id) FROM orders",
]

PER_CHECK = [
    "SELECT now() - max(created_at) FROM orders",
    "SELECT count(*) FROM orders",
    *(f"SELECT count({c})::float / count(*) FROM orders"
      for c in ("order_id", "customer_id", "amount")),
    "SELECT count(*) FILTER (WHERE amount > 0)::float / count(*) FROM orders",
    "SELECT count(*) FILTER (WHERE status IN ('pending','paid','shipped','cancelled'))::float"
    " / count(status) FROM orders",
    "SELECT count(*) FILTER (WHERE email ~ '^[^@]+@[^@]+\\.[^@]+$')::float / count(email)"
    " FROM orders",
    "SELECT count(*) FILTER (WHERE amount BETWEEN 0 AND 100000)::float / count(amount)"
    " FROM orders",
    "SELECT count(DISTINCT order_id)::float / count(order_id) FROM orders",
]

def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    """Return the fastest of `repeat` timed calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    """Build the table, time the three approaches, print a table of results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--admin", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    args = parser.parse_args()

    with orders_database(args.admin, args.rows) as conn:
        run(conn, sqlalchemy_url(conn), args)


def run(conn: psycopg.Connection[Any], url: str, args: argparse.Namespace) -> None:
    """Time dqmon against the hand-written queries on the same table."""
    config = parse_config(CHECKS.format(url=url), env={})
    table = config.tables[0]
    warehouse = Warehouse("main", config.warehouses["main"])
    results = scan_table(table, warehouse)  # warm-up, and a correctness check
    assert all(r.status != "error" for r in results), [r.error for r in results]

    def queries(sqls: list[str]) -> Callable[[], None]:
        return lambda: [conn.execute(q).fetchall() for q in sqls]  # type: ignore[func-returns-value]

    queries(HANDWRITTEN)()
    dqmon_s = best_of(args.repeat, lambda: scan_table(table, warehouse))
    hand_s = best_of(args.repeat, queries(HANDWRITTEN))
    per_check_s = best_of(args.repeat, queries(PER_CHECK))
    warehouse.dispose()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows: {args.rows:,}  checks: {len(results)}  best of {args.repeat}")
    print(f"{'approach':<13}{'seconds':>9}{'queries':>9}{'vs handwritten':>16}")
    for label, secs, n in (("dqmon", dqmon_s, 2), ("handwritten", hand_s, len(HANDWRITTEN)),
                           ("per-check", per_check_s, len(PER_CHECK))):
        print(f"{label:<13}{secs:>9.3f}{n:>9}{secs / hand_s:>15.2f}x")
    print(f"dqmon peak RSS of this process: {rss_mb:.0f} MiB")


if __name__ == "__main__":
    main()
