"""The in-memory fallback: a bounded LRU with per-entry TTLs and delete tombstones.

Used only while Redis is unavailable. It remembers deletes as tombstones as well as writes,
so that when Redis returns the client can replay both (drain()) and a key deleted during
the outage does not come back from Redis. Thread-safe; the clock is injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True)
class Pending:
    """One change made during an outage: a write (value) or a delete (value is None)."""

    key: str
    value: bytes | None
    ttl_seconds: float | None


class MemoryCache:
    """At most `max_entries` keys (values and tombstones), least recently used evicted first."""

    def __init__(self, max_entries: int, *, clock: Clock = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value or None for a tombstone, absolute expiry or None)
        self._entries: OrderedDict[str, tuple[bytes | None, float | None]] = OrderedDict()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """True for a value or a tombstone, live or not."""
        return key in self._entries

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            value, expires = entry
            if expires is not None and expires <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        expires = None if ttl is None else self._clock() + ttl
        self._put(key, (value, expires))

    def delete(self, key: str) -> bool:
        """Record a tombstone; true when a live value was removed."""
        existed = self.get(key) is not None
        self._put(key, (None, None))
        return existed

    def drain(self) -> list[Pending]:
        """Every change still live, oldest first; the cache is left empty."""
        with self._lock:
            now = self._clock()
            entries, self._entries = self._entries, OrderedDict()
        pending = []
        for key, (value, expires) in entries.items():
            if expires is None:
                pending.append(Pending(key, value, None))
            elif expires > now:
                pending.append(Pending(key, value, expires - now))
        return pending

    def _put(self, key: str, entry: tuple[bytes | None, float | None]) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.evictions += 1


__all__ = ["MemoryCache", "Pending"]
