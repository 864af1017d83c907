"""One byte budget for everything the HTTP service holds in flight, across all connections.

Every request body being received and every value being sent reserves its bytes here first;
when the budget is spent the request is answered 503 at once instead of buffering more. So,
whatever the concurrency, the bodies in memory stay below HTTP_MAX_INFLIGHT_BYTES, and that is
set below the container's memory limit (infra/components/app.py). A per-request limit alone
(HTTP_MAX_VALUE_BYTES) does not bound memory: 63 concurrent 1 MiB uploads exceed a 64 MiB limit.

A reservation for a body of known size never waits: a waiting request would still hold its
connection and its headers, and a flood of them is what the budget is there to refuse. A GET
is the exception (reading): it learns its value's size only once it has read it, so it holds
the largest value's share while it reads, waiting its turn for it rather than being refused
(a 503 would turn away small reads under ordinary concurrency; a waiter holds nothing but its
connection, which HTTP_MAX_CONNECTIONS bounds), then keeps only its value's own. It waits at
most as long as a response its client does not read may hold its bytes (HTTP_STALL_TIMEOUT_S),
then gets 503 like an upload that does not fit. Without it,
reads ran outside the budget: 300 concurrent GETs of a 1 MiB value took the service from 61
to 277 MiB resident with a 20 MiB budget (2026-12-04), past a 160 MiB container
(tests/integration/test_service_concurrent_reads.py). Waiters are served in arrival order,
before anything else whenever bytes are released, and reads not settled yet hold at most half
of the budget (ByteBudget._admits_read). Single-threaded (asyncio), so plain
counters suffice.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Final

# What one value in flight costs beyond its own bytes: the request body is joined once, sealed
# into an envelope of about the same size and packed into a RESP command; on a read the reply,
# the opened value and the response chunks. 3x is a conservative whole-request figure.
COPIES_PER_VALUE: Final = 3


class BudgetExhausted(Exception):
    """The in-flight budget cannot take this many bytes now; answer 503 and retry later."""


class ByteBudget:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the budget must be at least one byte")
        self.limit = limit
        self.in_use = 0
        self.refused = 0
        self.unsettled = 0  # the largest-value shares of reads that have not settled yet
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        """Hold `size` bytes (times COPIES_PER_VALUE) for the block; BudgetExhausted if not."""
        cost = max(size, 0) * COPIES_PER_VALUE
        if self.in_use + cost > self.limit:
            self.refused += 1
            raise BudgetExhausted
        self.in_use += cost
        try:
            yield
        finally:
            self.in_use -= cost
            self._grant()

    @asynccontextmanager
    async def reading(self, most: int, wait_s: float) -> AsyncIterator[Callable[[int], None]]:
        """Hold `most` bytes (times COPIES_PER_VALUE, at most the whole budget) while a value
        of unknown size is read, waiting in turn for them, BudgetExhausted after `wait_s`
        seconds; the block calls the function it is given with the value's size once it has
        it, which keeps that much for the rest of the block (BudgetExhausted if it is more
        than held and the budget cannot take the rest)."""
        share = min(max(most, 0) * COPIES_PER_VALUE, self.limit)
        if self._waiting or not self._admits_read(share):
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((share, granted))
            try:
                async with asyncio.timeout(wait_s):
                    await granted
            except BaseException as exc:
                if granted.done() and not granted.cancelled():  # granted, then cancelled
                    self._settled(share)
                if isinstance(exc, TimeoutError):
                    self.refused += 1
                    raise BudgetExhausted from None
                raise
        else:
            self._start_read(share)
        held: int | None = None  # what the read keeps once settled

        def settle(size: int) -> None:
            nonlocal held
            if held is not None:
                raise RuntimeError("a read settles once")
            cost = max(size, 0) * COPIES_PER_VALUE
            if cost > share and self.in_use - share + cost > self.limit:
                self.refused += 1
                raise BudgetExhausted
            self.in_use += cost
            held = cost
            self._settled(share)

        try:
            yield settle
        finally:
            if held is None:
                self._settled(share)
            else:
                self.in_use -= held
                self._grant()

    def _admits_read(self, share: int) -> bool:
        """Whether a read may take its share now: the budget has it, and the reads not
        settled yet hold at most half of the budget with it (or it is the only one). So
        uploads and responses always have the other half: without that bound, reads of
        256 KiB values from 50 clients held the budget in their largest-value shares and 78%
        of the uploads beside them were refused (2026-12-04)."""
        if self.in_use + share > self.limit:
            return False
        return not self.unsettled or self.unsettled + share <= self.limit // 2

    def _start_read(self, share: int) -> None:
        self.in_use += share
        self.unsettled += share

    def _settled(self, share: int) -> None:
        """A read gives back its largest-value share (settled, or ended before it was)."""
        self.in_use -= share
        self.unsettled -= share
        self._grant()

    def _grant(self) -> None:
        """Let the waiting reads start, in arrival order, while they are admitted."""
        waiting = self._waiting
        while waiting:
            share, granted = waiting[0]
            if granted.done():  # its request was cancelled while it waited
                waiting.popleft()
                continue
            if not self._admits_read(share):
                return
            waiting.popleft()
            self._start_read(share)
            granted.set_result(None)

    def admits(self, size: int) -> bool:
        """Whether a request of `size` bytes could ever fit (it is not larger than the budget)."""
        return size * COPIES_PER_VALUE <= self.limit


__all__ = ["COPIES_PER_VALUE", "BudgetExhausted", "ByteBudget"]
