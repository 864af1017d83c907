"""Run one behaviour test against both client shells, SecureCache and AsyncSecureCache.

The shells share their decisions (secure_cache.core) and differ only in how they wait for
I/O, so a behaviour is written once and parametrized over `SHELLS`: `open_cache("async",
...)` drives an AsyncSecureCache on a private event loop behind SecureCache's synchronous
signatures (tests/unit/test_cache_client_api.py checks that the two APIs match).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, cast

from secure_cache import AsyncSecureCache, SecureCache
from secure_cache.settings import Settings

SHELLS: Final = ("sync", "async")


class BlockingAsyncCache:
    """An AsyncSecureCache whose coroutine methods run to completion on a private loop.

    Unlike asyncio.run this leaves the thread's current-loop state alone, which later tests
    (Pulumi calls asyncio.get_event_loop()) depend on.
    """

    def __init__(self, make: Callable[[], Awaitable[AsyncSecureCache]]) -> None:
        self._loop = asyncio.new_event_loop()
        self._cache: AsyncSecureCache = self._loop.run_until_complete(make())

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._cache, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def run(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attr(*args, **kwargs))

        return run

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.run_until_complete(self._cache.close())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()

    def __enter__(self) -> BlockingAsyncCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_cache(
    shell: str,
    environ: Mapping[str, str] | None = None,
    *,
    settings: Settings | None = None,
    **options: Any,
) -> SecureCache:
    """A connected client of `shell` from `environ` (from_env) or from `settings`."""
    if shell == "sync":
        if settings is not None:
            return SecureCache(settings, **options)
        return SecureCache.from_env(environ, **options)
    if shell != "async":
        raise ValueError(f"unknown shell {shell!r}; use one of {SHELLS}")

    async def make() -> AsyncSecureCache:
        if settings is not None:
            return AsyncSecureCache(settings, **options)
        return await AsyncSecureCache.from_env(environ, **options)

    # Typed as SecureCache: it answers every SecureCache call with the same signature.
    return cast(SecureCache, BlockingAsyncCache(make))


__all__ = ["SHELLS", "BlockingAsyncCache", "open_cache"]
