"""A warehouse's outage state: while it is down, one probe per back-off interval goes out."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0


def backoff_s(failures: int, base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_MAX_S) -> float:
    """Return the wait before probing a warehouse again after `failures` failed attempts."""
    if failures <= 0:
        return 0.0
    return float(min(cap_s, base_s * 2 ** min(failures - 1, 32)))


class WarehouseGate:
    """A warehouse's outage state: while it is down, one probe per back-off interval goes out."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 jitter: Callable[[], float] = lambda: random.uniform(0.9, 1.1)) -> None:
        self._clock = clock
        self._jitter = jitter  # replicas that saw one outage should not probe in lockstep
        self._lock = threading.Lock()
        self._probing = False
        self.failures = 0
        self.next_attempt_s = 0.0
        self.last_error: str | None = None

    @property
    def down(self) -> bool:
        """Tell whether the last attempt found the warehouse unreachable."""
        return self.failures > 0

    def admit(self) -> bool:
        """Tell whether a run may contact the warehouse now (claims the probe when down)."""
        with self._lock:
            if self.failures == 0:
                return True
            if self._probing or self._clock() < self.next_attempt_s:
                return False
            self._probing = True
            return True

    def succeeded(self) -> bool:
        """Mark the warehouse reachable; return True when this ends an outage."""
        with self._lock:
            was_down = self.failures > 0
            self.failures, self._probing, self.last_error = 0, False, None
            return was_down

    def failed(self, error: str) -> float:
        """Record an unreachable warehouse; return the back-off until the next probe."""
        with self._lock:
            self.last_error = error
            if self.failures == 0 or self._probing:  # concurrent failures count as one
                self.failures += 1
                self.next_attempt_s = self._clock() + backoff_s(self.failures) * self._jitter()
            self._probing = False
            return max(0.0, self.next_attempt_s - self._clock())
