"""Benchmark (issue 10): the 10-check scan plus 5 statistics and a 20-segment segment_by,
dqmon vs the best hand-written SQL for the same numbers, on one PostgreSQL table.

Builds `orders` (benchmarks/_orders.py) with N rows, adds `seg` = order_id % 20, then times,
R interleaved rounds:
  dqmon        scan_table() for scan_vs_sql.py's 10 checks plus statistics min, max, avg,
               stddev of amount and max_length of email, with segment_by seg (20 segments):
               one GROUP BY scan answering every segment, __other__ and the whole table
               (combined in Python), plus the uniqueness query (not segmented);
  handwritten  the same numbers by hand: one FILTER aggregate GROUP BY seg (the whole-table
               values would still have to be combined from it, which is not timed) plus the
               count(DISTINCT) query.
Reports the median of each and the median of the paired ratios (dqmon / hand-written, per
round). The SPEC 8 target is within 1.10x.

    python benchmarks/segments_vs_sql.py --rows 2000000 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import psycopg
from _orders import orders_database, sqlalchemy_url
from scan_vs_sql import CHECKS

from dqmon.config import parse_config
from dqmon.scan import scan_table
from dqmon.warehouse import Warehouse

SEGMENTED = CHECKS.replace("  - name: orders\n", "  - name: orders\n"
                           "    segment_by: {{column: seg, max_segments: 20}}\n") + """\
      - statistic: {{column: amount, stat: min, min: 0}}
      - statistic: {{column: amount, stat: max, min: 0}}
      - statistic: {{column: amount, stat: avg, min: 0}}
      - statistic: {{column: amount, stat: stddev, min: 0}}
      - statistic: {{column: email, stat: max_length, max: 254}}
"""

HANDWRITTEN = [
    """SELECT seg, count(*), max(created_at), now(), count(order_id), count(customer_id),
              count(amount), count(*) FILTER (WHERE amount > 0),
              count(*) FILTER (WHERE status IN ('pending','paid','shipped','cancelled')),
              count(status), count(*) FILTER (WHERE email ~ '^[^@]+@[^@]+\\.[^@]+$'),
              count(email), count(*) FILTER (WHERE amount BETWEEN 0 AND 100000),
              min(amount), max(amount), sum(amount), count(amount), stddev_samp(amount),
              max(char_length(email))
       FROM orders GROUP BY seg""",
    "SELECT count(DISTINCT order_id), count(order_id) FROM orders",
]


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(conn: psycopg.Connection[Any], args: argparse.Namespace) -> None:
    conn.execute("ALTER TABLE orders ADD COLUMN seg int")
    conn.execute("UPDATE orders SET seg = order_id % 20")
    conn.execute("VACUUM ANALYZE orders")
    config = parse_config(SEGMENTED.format(url=sqlalchemy_url(conn)), env={})
    table, warehouse = config.tables[0], Warehouse("main", config.warehouses["main"])
    results = scan_table(table, warehouse)  # warm-up; also proves every check answered
    assert not [r.error for r in results if r.error], [r.error for r in results if r.error]
    segments = {r.segment for r in results if r.segment is not None}

    def handwritten() -> None:
        for sql in HANDWRITTEN:
            conn.execute(sql).fetchall()

    rounds = [(timed(lambda: scan_table(table, warehouse)), timed(handwritten))
              for _ in range(args.repeat)]
    warehouse.dispose()
    dq, hand = (statistics.median(r[i] for r in rounds) for i in (0, 1))
    ratio = statistics.median(d / h for d, h in rounds)
    print(f"rows={args.rows} checks={len(table.checks)} results={len(results)} "
          f"segments={len(segments)}")
    print(f"dqmon        median {dq:.3f} s")
    print(f"handwritten  median {hand:.3f} s")
    print(f"dqmon / handwritten (paired median) {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--admin", default="host=127.0.0.1 user=postgres dbname=postgres")
    args = parser.parse_args()
    with orders_database(args.admin, args.rows) as conn:
        run(conn, args)


if __name__ == "__main__":
    main()
