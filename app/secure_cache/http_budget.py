"""One byte budget for everything the HTTP service holds in flight, across all connections.

Every request body being received and every value being sent reserves its bytes here first;
when the budget is spent the request is answered 503 at once instead of buffering more. So,
whatever the concurrency, the bodies in memory stay below HTTP_MAX_INFLIGHT_BYTES, and that is
set below the container's memory limit (infra/components/app.py). A per-request limit alone
(HTTP_MAX_VALUE_BYTES) does not bound memory: 63 concurrent 1 MiB uploads exceed a 64 MiB limit.

Reservations never wait: a waiting request would still hold its connection and its headers,
and a flood of them is what the budget is there to refuse. Single-threaded (asyncio), so a
plain counter suffices.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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

    def admits(self, size: int) -> bool:
        """Whether a request of `size` bytes could ever fit (it is not larger than the budget)."""
        return size * COPIES_PER_VALUE <= self.limit


__all__ = ["COPIES_PER_VALUE", "BudgetExhausted", "ByteBudget"]
