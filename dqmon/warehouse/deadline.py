"""Client-side deadlines: one watchdog thread cancels every session's overdue query.

Issue 9: a `threading.Timer` per session cost a thread start per query; one thread with a
heap of due times fires them all.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import weakref
from typing import Any

from dqmon.warehouse import session


class Deadline:
    """The client-side deadline: cancel the query when it outlives the statement timeout."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self.fired = False
        self._dbapi_conn: Any = None
        self._done = False
        self._lock = threading.Lock()  # a cancel in flight finishes before the session ends

    def start(self, dbapi_conn: Any) -> None:
        """Arm the deadline for the query about to run on `dbapi_conn`."""
        self._dbapi_conn = dbapi_conn
        _WATCHDOG.arm(time.monotonic() + self.after_s, self)

    def fire(self) -> None:
        """Cancel the query, unless the session has already ended (the watchdog calls this)."""
        with self._lock:
            if not self._done:
                self.fired = session.cancel(self._dbapi_conn)

    def cancel(self) -> None:
        """Disarm the deadline (the query ended); wait for a cancel already under way."""
        with self._lock:
            self._done = True
        self._dbapi_conn = None


class _Watchdog:
    """One thread fires every session's deadline (issue 9: not a thread per session)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, weakref.ref[Deadline]]] = []
        self._order = itertools.count()  # ties never compare deadlines
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, due_s: float, deadline: Deadline) -> None:
        """Fire `deadline` at monotonic time `due_s` unless it is disarmed or gone by then."""
        with self._wake:
            heapq.heappush(self._due, (due_s, next(self._order), weakref.ref(deadline)))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="dqmon-deadlines",
                                                daemon=True)
                self._thread.start()
            elif self._due[0][2]() is deadline:
                self._wake.notify()  # the new deadline is the earliest: sleep less

    def _loop(self) -> None:
        while True:
            for deadline in self._expired():
                deadline.fire()

    def _expired(self) -> list[Deadline]:
        """Wait until at least one deadline is due; return the due ones still alive."""
        with self._wake:
            now = time.monotonic()
            while not self._due or self._due[0][0] > now:
                self._wake.wait(self._due[0][0] - now if self._due else None)
                now = time.monotonic()
            due = []
            while self._due and self._due[0][0] <= now:
                due.append(heapq.heappop(self._due)[2]())
        return [d for d in due if d is not None]  # a finished session's deadline is gone


_WATCHDOG = _Watchdog()
