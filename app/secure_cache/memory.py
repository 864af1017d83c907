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
from typing import Final

Clock = Callable[[], float]


@dataclass(frozen=True)
class Pending:
    """One change made during an outage: a write (value) or a delete (value is None)."""

    key: str
    value: bytes | None
    ttl_seconds: float | None


# Counted per entry on top of its key and value: a rough bound of what the dict, the tuple and
# the float cost, so that a flood of tiny or empty entries is bounded in bytes too.
ENTRY_OVERHEAD_BYTES: Final = 128
DEFAULT_MAX_BYTES: Final = 32 << 20


class MemoryCache:
    """At most `max_entries` keys (values and tombstones) and `max_bytes` of keys and values,
    least recently used evicted first. A value larger than `max_bytes` on its own is not kept
    (and the key's older value is dropped, never served stale)."""

    def __init__(
        self,
        max_entries: int,
        *,
        clock: Clock = time.monotonic,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_bytes < ENTRY_OVERHEAD_BYTES:
            raise ValueError(f"max_bytes must be at least {ENTRY_OVERHEAD_BYTES}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
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
                self._remove(key)
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
            self.bytes = 0
        pending = []
        for key, (value, expires) in entries.items():
            if expires is None:
                pending.append(Pending(key, value, None))
            elif expires > now:
                pending.append(Pending(key, value, expires - now))
        return pending

    def _put(self, key: str, entry: tuple[bytes | None, float | None]) -> None:
        size = _size(key, entry[0])
        with self._lock:
            self._remove(key)
            if size > self.max_bytes:
                self.evictions += 1
                return
            self._entries[key] = entry
            self.bytes += size
            while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
                old_key, (old_value, _) = self._entries.popitem(last=False)
                self.bytes -= _size(old_key, old_value)
                self.evictions += 1

    def _remove(self, key: str) -> None:
        """Drop `key` and its bytes; the caller holds the lock."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= _size(key, entry[0])


def _size(key: str, value: bytes | None) -> int:
    # len(key) * 4 bounds its UTF-8 size without encoding it.
    return len(key) * 4 + (0 if value is None else len(value)) + ENTRY_OVERHEAD_BYTES


__all__ = ["MemoryCache", "Pending"]
