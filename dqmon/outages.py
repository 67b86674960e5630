"""Which export targets are failing, so that an outage is logged once, not on every send.

A leaf module: telemetry's exporters and OpenLineage's sender each keep one and word their
own warning (SPEC 3: "a dead endpoint behaves like a dead collector").
"""

from __future__ import annotations

import threading


class Outages:
    """The targets whose last send failed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failing: set[str] = set()

    def changed(self, target: str, ok: bool) -> bool:
        """Record one send's outcome; tell whether it changed the target's state."""
        with self._lock:
            changed = (target in self._failing) == ok
            if ok:
                self._failing.discard(target)
            else:
                self._failing.add(target)
        return changed
