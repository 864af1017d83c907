"""The event loops the async client is tested on: asyncio's default, and uvloop's, which the
service runs it on (app/secure_cache/service.py serve). A library user picks their own loop,
so AsyncSecureCache and its transport must behave the same on both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Final, Protocol, TypeVar

import uvloop

T = TypeVar("T")

LOOPS: Final[dict[str, Callable[[], asyncio.AbstractEventLoop]]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


class RunOnLoop(Protocol):
    """Runs a coroutine to completion on a new loop of the kind under test."""

    def __call__(self, coro: Coroutine[Any, Any, T]) -> T: ...


def run_on(new_loop: Callable[[], asyncio.AbstractEventLoop], coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on a private loop from `new_loop`. Unlike asyncio.run this leaves the
    thread's current-loop state alone, which later tests (Pulumi calls
    asyncio.get_event_loop()) depend on."""
    loop = new_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


__all__ = ["LOOPS", "RunOnLoop", "run_on"]
