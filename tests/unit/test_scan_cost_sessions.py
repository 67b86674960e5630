"""Per-session cost (issue 9): one watchdog thread for every client deadline; compiled text."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from dqmon.config.models import Warehouse as Settings
from dqmon.warehouse import Statement, Warehouse
from dqmon.warehouse.deadline import Deadline


class _Conn:
    """A DBAPI connection stand-in that records being cancelled."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()


def _watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dqmon-deadlines"]


def test_one_thread_fires_every_deadline() -> None:
    """Twenty armed deadlines all fire, and one watchdog thread fired them."""
    conns = [_Conn() for _ in range(20)]
    deadlines = [Deadline(0.01 * (20 - i)) for i in range(20)]
    for deadline, conn in zip(deadlines, conns, strict=True):
        deadline.start(conn)
    assert all(conn.cancelled.wait(10) for conn in conns)
    assert [d.fired for d in deadlines] == [True] * 20
    assert len(_watchdogs()) == 1


def test_a_disarmed_deadline_never_fires() -> None:
    """A deadline disarmed before it is due leaves its connection alone."""
    early, late = _Conn(), _Conn()
    disarmed, armed = Deadline(0.05), Deadline(0.2)
    disarmed.start(early)
    armed.start(late)
    disarmed.cancel()
    assert late.cancelled.wait(10)  # due after the disarmed one: that one was passed by
    assert not early.cancelled.is_set()
    assert (disarmed.fired, armed.fired) == (False, True)


def _sqlite(tmp_path: Path) -> Warehouse:
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (id int, at text)")
        conn.execute("insert into t values (1, '2026-11-20 10:00:00')")
    return Warehouse("main", Settings(url=f"sqlite:///{db}"))


def test_sessions_start_no_thread_each(tmp_path: Path) -> None:
    """Fifty sessions leave at most the one watchdog thread behind, not one timer each."""
    warehouse = _sqlite(tmp_path)
    warehouse.ping()
    before = threading.active_count()
    for _ in range(50):
        warehouse.ping()
    assert threading.active_count() <= max(before, 1 + len(_watchdogs()))
    warehouse.dispose()


def test_statement_needing_type_processing_runs_through_sqlalchemy(tmp_path: Path) -> None:
    """A datetime bound on SQLite needs SQLAlchemy's processor: a Statement gives the same row."""
    warehouse = _sqlite(tmp_path)
    t = sa.table("t", sa.column("id"), sa.column("at"))
    query = sa.select(sa.func.count().label("n")).select_from(t).where(
        t.c.at >= sa.bindparam("since", datetime(2026, 11, 20)))
    statement = Statement(query)
    expected = warehouse.fetch_one(query)
    assert warehouse.fetch_one(statement) == expected == {"n": 1}
    assert warehouse.fetch_one(statement, {"since": datetime(2026, 11, 21)}) == {"n": 0}
    warehouse.dispose()


def test_statement_text_is_what_the_driver_got(tmp_path: Path) -> None:
    """Before its first run a Statement shows the rendered query; after, the text it sends."""
    warehouse = _sqlite(tmp_path)
    query = sa.select(sa.func.count().label("n")).select_from(sa.table("t")).where(
        sa.column("id").in_([1, 2]))
    statement = Statement(query)
    assert statement.text(warehouse.compile) == warehouse.compile(query)
    sent: list[str] = []
    sa.event.listen(warehouse.engine(), "before_cursor_execute",
                    lambda *args: sent.append(args[2]))
    assert warehouse.fetch_one(statement) == {"n": 1}
    assert sent[-1] == statement.text(warehouse.compile)
    assert "IN (?, ?)" in sent[-1]
    warehouse.dispose()
