"""What only AsyncSecureCache has: many tasks on one loop, and data shared with SecureCache.

Every other behaviour is tested once against both shells (tests/support/cache_shells.py).
Each test here runs on asyncio's loop and on uvloop's (the `run` fixture,
tests/integration/conftest.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from secure_cache import AsyncSecureCache, SecureCache
from tests.support.cache_env import cache_environ
from tests.support.event_loops import RunOnLoop
from tests.support.tls_redis import TlsRedisServer


def test_async__interoperates_with_sync_client(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop
) -> None:
    env = cache_environ(tls_redis, tmp_path / "s")
    with SecureCache.from_env(env) as sync_cache:
        sync_cache.set("shared:key", b"written by sync")

    async def read() -> bytes | None:
        async with await AsyncSecureCache.from_env(env) as cache:
            return await cache.get("shared:key")

    assert run(read()) == b"written by sync"


def test_async__many_concurrent_calls_share_a_small_pool(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop
) -> None:
    env = cache_environ(tls_redis, tmp_path / "s")

    async def scenario() -> list[bytes | None]:
        async with await AsyncSecureCache.from_env(env, max_connections=3) as cache:
            await asyncio.gather(*(cache.set(f"conc:{i}", b"%d" % i) for i in range(200)))
            results = await asyncio.gather(*(cache.get(f"conc:{i}") for i in range(200)))
            assert len(cache._transport._all) <= 3
            return list(results)

    assert run(scenario()) == [b"%d" % i for i in range(200)]
