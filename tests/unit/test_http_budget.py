"""The HTTP service's byte budget (secure_cache.http_budget): bodies of known size reserve or
are refused at once; reads of unknown size hold the largest value's share, waiting in turn,
then keep their own value's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from secure_cache.http_budget import COPIES_PER_VALUE, BudgetExhausted, ByteBudget

LARGEST = 100
SHARE = LARGEST * COPIES_PER_VALUE  # what a read holds until it settles
LIMIT = 4 * SHARE  # reads not settled yet may hold two shares, half of it
WAIT_S = 30.0


def test_reserve__refuses_at_once_past_the_limit_and_releases_after() -> None:
    budget = ByteBudget(LIMIT)
    with budget.reserve(4 * LARGEST):
        assert budget.in_use == LIMIT
        with pytest.raises(BudgetExhausted), budget.reserve(1):
            pass
    assert (budget.in_use, budget.refused) == (0, 1)


def test_reading__waits_in_turn_and_a_settled_small_value_lets_the_next_read_in() -> None:
    budget = ByteBudget(LIMIT)
    order: list[str] = []
    small_read = asyncio.Event()

    async def read(name: str, size: int, hold: asyncio.Event | None = None) -> None:
        async with budget.reading(LARGEST, WAIT_S) as settle:
            order.append(f"{name} reads")
            await asyncio.sleep(0)
            settle(size)
            order.append(f"{name} settled")
            await asyncio.sleep(0)
            if hold is not None:
                await hold.wait()

    async def scenario() -> None:
        hold = asyncio.Event()
        first = asyncio.create_task(read("a", LARGEST // 2, hold))  # keeps half a share
        second = asyncio.create_task(read("b", 1, small_read))  # settles small, then waits
        third = asyncio.create_task(read("c", 1))
        await asyncio.sleep(0.01)
        # Two shares taken: the third waited until the first two settled on smaller values,
        # and it finished while they still held theirs.
        assert order == ["a reads", "b reads", "a settled", "b settled", "c reads", "c settled"]
        assert budget.in_use == (LARGEST // 2 + 1) * COPIES_PER_VALUE
        hold.set()
        small_read.set()
        await asyncio.gather(first, second, third)

    asyncio.run(scenario())
    assert budget.in_use == 0


def test_reading__holds_no_more_than_the_budget_and_refuses_a_value_past_it() -> None:
    budget = ByteBudget(LIMIT)

    async def scenario() -> None:
        async with budget.reading(10 * LARGEST, WAIT_S) as settle:  # more than the budget
            assert budget.in_use == LIMIT
            settle(LARGEST)
            assert budget.in_use == SHARE
            with pytest.raises(RuntimeError):
                settle(1)
        async with budget.reading(LARGEST, WAIT_S) as settle:
            with pytest.raises(BudgetExhausted):
                settle(5 * LARGEST)  # a value larger than the budget can take

    asyncio.run(scenario())
    assert (budget.in_use, budget.refused) == (0, 1)


def test_reading__reads_not_settled_hold_at_most_half_and_uploads_keep_the_rest() -> None:
    budget = ByteBudget(LIMIT)

    async def scenario() -> None:
        release = asyncio.Event()
        started: list[int] = []

        async def read(index: int) -> None:
            async with budget.reading(LARGEST, WAIT_S):
                started.append(index)
                await release.wait()

        reads = [asyncio.create_task(read(i)) for i in range(3)]
        await asyncio.sleep(0.01)
        assert started == [0, 1]  # the third waits: two shares are half the budget
        with budget.reserve(2 * LARGEST):  # an upload the other half takes
            assert budget.in_use == LIMIT
        release.set()
        await asyncio.gather(*reads)
        assert started == [0, 1, 2]

    asyncio.run(scenario())
    assert (budget.in_use, budget.unsettled, budget.refused) == (0, 0, 0)


@pytest.mark.parametrize("when", ["waiting", "granted"])
def test_reading__a_read_cancelled_while_waiting_or_just_granted_leaves_nothing_held(
    when: str,
) -> None:
    budget = ByteBudget(LIMIT)

    async def scenario() -> None:
        release = asyncio.Event()
        entered: list[Callable[[int], None]] = []

        async def read() -> None:
            async with budget.reading(LARGEST, WAIT_S) as settle:
                entered.append(settle)
                await release.wait()

        holders = [asyncio.create_task(read()) for _ in range(2)]
        await asyncio.sleep(0)
        waiter = asyncio.create_task(read())
        await asyncio.sleep(0)
        assert len(entered) == 2  # the third waits
        if when == "granted":
            release.set()  # the holders leave and grant the waiter its share...
            await asyncio.gather(*holders)
        waiter.cancel()  # ...which it never gets to use
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        release.set()
        await asyncio.gather(*holders)

    asyncio.run(scenario())
    assert budget.in_use == 0


def test_reading__a_read_that_waits_past_its_bound_is_refused_and_holds_nothing() -> None:
    budget = ByteBudget(LIMIT)

    async def scenario() -> None:
        with budget.reserve(4 * LARGEST):  # a stalled response holds the whole budget
            with pytest.raises(BudgetExhausted):
                async with budget.reading(LARGEST, 0.01):
                    pytest.fail("granted while the budget was full")
            assert budget.in_use == LIMIT

    asyncio.run(scenario())
    assert (budget.in_use, budget.refused) == (0, 1)
