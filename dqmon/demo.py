"""Build the embedded SQLite demo warehouse: realistic orders with a few deliberate defects.

Deterministic: the same rows every time, with timestamps anchored to the build time so
that freshness means something.
"""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

STATUSES = ["pending", "paid", "paid", "paid", "shipped", "shipped", "cancelled"]
ORDERS = 2400


def build_demo(path: str | Path, *, now_s: float | None = None) -> Path:
    """Write the demo warehouse to `path` (replacing it) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    now = datetime.fromtimestamp(time.time() if now_s is None else now_s, UTC)
    with sqlite3.connect(tmp) as db:
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?)", _orders(now))
        db.executemany("INSERT INTO customers VALUES (?,?,?,?)", _customers())
    db.close()
    tmp.replace(target)
    return target


SCHEMA = """
CREATE TABLE orders (
    order_id    INTEGER,
    customer_id INTEGER,
    email       TEXT,
    amount      NUMERIC(12, 2),
    status      TEXT,
    created_at  TIMESTAMP,
    shipped_at  TIMESTAMP,
    promised_at TIMESTAMP
);
CREATE TABLE customers (
    customer_id INTEGER,
    email       TEXT,
    country     TEXT,
    signed_up   TIMESTAMP
);
"""


def _iso(moment: datetime, style: int) -> str:
    # Three spellings real pipelines write into SQLite text columns.
    if style == 0:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if style == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.astimezone(UTC).isoformat()


def _orders(now: datetime) -> list[tuple[object, ...]]:
    rng = random.Random(20261120)
    rows: list[list[Any]] = []
    newest = now - timedelta(minutes=7)
    for i in range(ORDERS):
        order_id = 100000 + i
        created = newest - timedelta(seconds=int(i * 3 * 86400 / ORDERS) + rng.randint(0, 30))
        status = rng.choice(STATUSES)
        promised = created + timedelta(days=3)
        shipped = created + timedelta(hours=rng.randint(6, 60)) if status == "shipped" else None
        email = f"customer{rng.randint(1, 900)}@example.com"
        amount = round(rng.uniform(5, 900), 2)
        rows.append([order_id, rng.randint(1, 900), email, amount, status,
                     _iso(created, i % 3), shipped and _iso(shipped, 0), _iso(promised, 0)])
    # Deliberate defects, at fixed rows.
    for i in (10, 400, 1800):
        rows[i][1] = None  # a missing customer_id
    for i in (25, 700, 1200, 1500, 2100):
        rows[i][2] = rows[i][2].replace("@", " at ")  # a malformed email
    rows[333][3] = -42.0  # a negative amount
    rows[900][4] = "refunded"  # a status nobody declared
    rows[1900][0] = rows[1899][0]  # a duplicated order_id
    for i in (55, 56):
        rows[i][4] = "test"  # test orders, excluded by the table's `where`
        rows[i][3] = -1.0
    return [tuple(r) for r in rows]


def _customers() -> list[tuple[object, ...]]:
    rng = random.Random(7)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows: list[tuple[object, ...]] = []
    for cid in range(1, 901):
        country = rng.choice(["DE", "FR", "US", "GB", "NL", None if cid % 97 == 0 else "ES"])
        signed = start + timedelta(hours=cid * 9)
        rows.append((cid, f"customer{cid}@example.com", country, _iso(signed, 0)))
    rows.append((17, "duplicate@example.com", "DE", _iso(start, 0)))  # duplicated key
    return rows
