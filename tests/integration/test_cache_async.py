"""AsyncSecureCache: the same behaviour as SecureCache, through asyncio."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from secure_cache import AsyncSecureCache, SecureCache
from tests.support.cache_env import (
    FakeClock,
    cache_environ,
    new_data_key,
    raw_client,
)
from tests.support.tls_redis import TlsRedisServer

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on a private loop. Unlike asyncio.run this leaves the thread's current-loop state
    alone, which later tests (Pulumi calls asyncio.get_event_loop()) depend on."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def test_async__round_trip_and_batches(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    env = cache_environ(tls_redis, tmp_path / "s")

    async def scenario() -> None:
        async with await AsyncSecureCache.from_env(env) as cache:
            await cache.set("async:a", b"alpha", ttl=60)
            assert await cache.get("async:a") == b"alpha"
            values = {f"async:batch:{i}": os.urandom(32) for i in range(100)}
            await cache.set_many(values)
            assert await cache.get_many([*values, "async:absent"]) == values
            await cache.set_json("async:json", [1, "two"])
            assert await cache.get_json("async:json") == [1, "two"]
            assert await cache.delete("async:a") is True
            assert await cache.get("async:a") is None
            status = await cache.status()
            assert status["backend"] == "redis"
            assert status["redis"]["tls_version"] == "TLSv1.3"
            assert status["counters"]["acl_denied"] == 0

    _run(scenario())


def test_async__interoperates_with_sync_client(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    env = cache_environ(tls_redis, tmp_path / "s")
    with SecureCache.from_env(env) as sync_cache:
        sync_cache.set("shared:key", b"written by sync")

    async def read() -> bytes | None:
        async with await AsyncSecureCache.from_env(env) as cache:
            return await cache.get("shared:key")

    assert _run(read()) == b"written by sync"


def test_async__many_concurrent_calls_share_a_small_pool(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    env = cache_environ(tls_redis, tmp_path / "s")

    async def scenario() -> list[bytes | None]:
        async with await AsyncSecureCache.from_env(env, max_connections=3) as cache:
            await asyncio.gather(*(cache.set(f"conc:{i}", b"%d" % i) for i in range(200)))
            results = await asyncio.gather(*(cache.get(f"conc:{i}") for i in range(200)))
            assert len(cache._transport._all) <= 3
            return list(results)

    assert _run(scenario()) == [b"%d" % i for i in range(200)]


def test_async__tampered_value_is_a_counted_miss(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    env = cache_environ(tls_redis, tmp_path / "s")

    async def scenario() -> None:
        async with await AsyncSecureCache.from_env(env) as cache:
            await cache.set("async:victim", b"secret")
            raw_client(tls_redis).set(cache.stored_name("async:victim"), b"secret")
            assert await cache.get("async:victim") is None
            assert cache.events.count("integrity_failures") == 1

    _run(scenario())


@pytest.fixture
def server(tls_redis_factory: Any) -> TlsRedisServer:
    started: TlsRedisServer = tls_redis_factory()
    return started


def test_async__falls_back_and_recovers(server: TlsRedisServer, tmp_path: Path) -> None:
    env = cache_environ(server, tmp_path / "s")
    clock = FakeClock()

    async def scenario() -> None:
        cache = await AsyncSecureCache.from_env(env, clock=clock)
        await cache.set("before", b"1")
        server.kill()
        await cache.set("during", b"2")  # no exception: served by memory
        assert await cache.get("during") == b"2"
        assert cache.backend == "memory"
        server.start()
        deadline = time.monotonic() + 10
        while cache.backend != "redis" and time.monotonic() < deadline:
            clock.advance(60)  # a probe is due; a server still loading answers LOADING
            await cache.status()
            await asyncio.sleep(0.01)
        assert cache.backend == "redis"
        assert await cache.get("during") == b"2"  # replayed, then read from Redis
        assert cache.events.count("fallbacks") == 1
        assert cache.events.count("reconnects") == 1
        await cache.close()

    _run(scenario())
    with SecureCache.from_env(env) as other:
        assert other.get("during") == b"2"


def test_async__rotation(server: TlsRedisServer, tmp_path: Path) -> None:
    old_key, new_key = server.material.data_key, new_data_key()
    with SecureCache.from_env(cache_environ(server, tmp_path / "old")) as before:
        before.set_many({f"arot:{i}": b"%d" % i for i in range(30)})
    env = cache_environ(server, tmp_path / "r", data_key=new_key, previous_keys=(old_key,))

    async def rotate() -> None:
        async with await AsyncSecureCache.from_env(env) as cache:
            report = await cache.rotate(batch_size=10)
            assert report.complete
            assert report.migrated == 30

    _run(rotate())
    with SecureCache.from_env(cache_environ(server, tmp_path / "n", data_key=new_key)) as after:
        assert after.get_many([f"arot:{i}" for i in range(30)]) == {
            f"arot:{i}": b"%d" % i for i in range(30)
        }
