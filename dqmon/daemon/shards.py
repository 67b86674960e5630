"""Shards: replica I of N runs the tables whose stable name hash % N is I (SPEC 11)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def stable_hash(name: str) -> int:
    """Hash a table name the same way in every process (Python's `hash` is salted per run)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


@dataclass(frozen=True)
class Shard:
    """Replica `index` of `count`: it runs the tables whose stable hash % `count` is `index`."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """Parse `I/N` (0 <= I < N); None or an empty string means every table."""
        if not text or not text.strip():
            return cls()
        index, sep, count = text.strip().partition("/")
        if not sep or not index.isdigit() or not count.isdigit():
            raise ValueError(f"{text!r} is not I/N (e.g. 0/3)")
        if not 0 <= int(index) < int(count):
            raise ValueError(f"{text!r}: I must be between 0 and N-1")
        return cls(int(index), int(count))

    def owns(self, table: str) -> bool:
        """Tell whether this replica runs `table`."""
        return stable_hash(table) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


EVERY_TABLE = Shard()  # a single replica's shard: 0/1
