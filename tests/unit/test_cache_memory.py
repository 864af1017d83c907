"""memory.MemoryCache: bounded LRU with TTLs and tombstones for the outage replay."""

from __future__ import annotations

import pytest

from secure_cache.memory import MemoryCache, Pending


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_set_get_delete(clock: Clock) -> None:
    memory = MemoryCache(10, clock=clock)
    memory.set("a", b"1")
    assert memory.get("a") == b"1"
    assert memory.delete("a") is True
    assert memory.get("a") is None
    assert memory.delete("a") is False


def test_least_recently_used__is_evicted_first(clock: Clock) -> None:
    memory = MemoryCache(2, clock=clock)
    memory.set("a", b"1")
    memory.set("b", b"2")
    memory.get("a")  # a is now the most recent
    memory.set("c", b"3")
    assert memory.get("b") is None
    assert memory.get("a") == b"1"
    assert memory.get("c") == b"3"
    assert len(memory) == 2
    assert memory.evictions == 1


def test_ttl__expires_entries(clock: Clock) -> None:
    memory = MemoryCache(10, clock=clock)
    memory.set("short", b"v", ttl=5)
    memory.set("forever", b"v")
    clock.now += 4.9
    assert memory.get("short") == b"v"
    clock.now += 0.2
    assert memory.get("short") is None
    assert memory.get("forever") == b"v"


def test_drain__returns_writes_and_deletes_in_order_and_empties(clock: Clock) -> None:
    memory = MemoryCache(10, clock=clock)
    memory.set("a", b"1", ttl=10)
    memory.delete("gone")
    memory.set("b", b"2")
    memory.set("expired", b"x", ttl=1)
    clock.now += 2
    assert memory.drain() == [
        Pending("a", b"1", 8.0),
        Pending("gone", None, None),
        Pending("b", b"2", None),
    ]
    assert len(memory) == 0


def test_tombstones__count_towards_the_bound(clock: Clock) -> None:
    memory = MemoryCache(2, clock=clock)
    memory.delete("x")
    memory.delete("y")
    memory.set("z", b"1")
    assert "x" not in memory
    assert "y" in memory
    assert "z" in memory


def test_max_entries__must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MemoryCache(0)


def test_bytes__least_recently_used_values_go_when_the_byte_bound_is_reached() -> None:
    cache = MemoryCache(1000, max_bytes=10_000)
    for i in range(20):
        cache.set(f"k{i}", b"x" * 1000)
    assert cache.bytes <= 10_000
    assert cache.get("k19") == b"x" * 1000
    assert cache.get("k0") is None
    assert len(cache) < 20


def test_bytes__a_value_larger_than_the_bound_is_not_kept_and_drops_the_stale_one() -> None:
    cache = MemoryCache(10, max_bytes=4096)
    cache.set("k", b"old")
    cache.set("k", b"x" * 5000)
    assert cache.get("k") is None
    assert cache.bytes == 0


def test_bytes__are_released_by_overwrite_expiry_and_drain() -> None:
    now = [0.0]
    cache = MemoryCache(10, max_bytes=1 << 20, clock=lambda: now[0])
    cache.set("a", b"x" * 100)
    cache.set("a", b"y" * 10)
    one = cache.bytes
    cache.set("b", b"z" * 50, ttl=1)
    now[0] = 2.0
    assert cache.get("b") is None
    assert cache.bytes == one
    cache.drain()
    assert cache.bytes == 0
