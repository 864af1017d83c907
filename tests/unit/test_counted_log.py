"""Repeated log events as counts (app/secure_cache/counted_log.py): at most one line per
interval, every event counted, what was held back written by a timer and by flush()."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable

from secure_cache.counted_log import CountedEvents, CountedLog

INTERVAL = 10.0


def test_counted_events__first_at_once_then_the_counts_since_at_the_next_due_event() -> None:
    events: CountedEvents[str] = CountedEvents(INTERVAL)
    assert events.add(100.0, "a") == {"a": 1}
    assert [events.add(100.0 + i / 100, k) for i, k in enumerate("abab")] == [None] * 4
    assert events.add(100.0 + INTERVAL, "b") == {"a": 2, "b": 3}
    assert events.take() == {}


def test_counted_events__take_hands_over_what_was_held_back_once() -> None:
    events: CountedEvents[str] = CountedEvents(INTERVAL)
    events.add(0.0, "a")
    events.add(1.0, "a")
    events.add(2.0, "b")
    assert events.take() == {"a": 1, "b": 1}
    assert events.take() == {}


def test_counted_log__without_an_event_loop_flush_writes_the_rest() -> None:
    lines: list[dict[str, int]] = []
    log: CountedLog[str] = CountedLog(lines.append, INTERVAL)
    for i in range(1000):
        log.record(50.0 + i / 1000, "x")
    assert lines == [{"x": 1}]
    log.flush()
    log.flush()
    assert lines == [{"x": 1}, {"x": 999}]


def test_counted_log__on_an_event_loop_a_timer_writes_what_was_held_back() -> None:
    """A flood that stops is in the log one interval later, with no event after it."""
    lines: list[dict[str, int]] = []

    async def flood() -> None:
        loop = asyncio.get_running_loop()
        log: CountedLog[str] = CountedLog(lines.append, 0.05)
        for _ in range(20):
            log.record(loop.time(), "x")
        assert lines == [{"x": 1}]
        await asyncio.sleep(0.2)  # the timer is due after 0.05 s

    asyncio.run(flood())
    assert lines == [{"x": 1}, {"x": 19}]


class _Timers:
    """A clock and the timers due on it, run by hand (asyncio's call_later, without waiting)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._pending: list[tuple[float, int, Callable[[], None], _Handle]] = []
        self._made = 0

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle()
        self._made += 1
        self._pending.append((self.now + delay, self._made, callback, handle))
        return handle

    def advance_to(self, when: float) -> None:
        """Run the timers due by `when` in order, the clock at each one's time."""
        while due := sorted(t for t in self._pending if t[0] <= when):
            at, _n, callback, handle = due[0]
            self._pending.remove(due[0])
            if not handle.cancelled:
                self.now = at
                callback()
        self.now = when


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def test_counted_log__a_steady_flood_gets_at_most_one_line_per_interval() -> None:
    """Events at uneven gaps (a flood as it arrives) for about 100 s: a line at most every
    INTERVAL, whether an event or the timer writes it, and every event counted. The timer
    armed before a line that an event wrote used to fire anyway, and wrote a second line a
    moment after it (up to two per interval)."""
    timers = _Timers()
    written: list[tuple[float, int]] = []
    log: CountedLog[str] = CountedLog(
        lambda counts: written.append((timers.now, counts["x"])),
        INTERVAL,
        schedule=lambda: timers.call_later,
    )
    gaps = random.Random(7)
    events = 0
    while timers.now < 100.0:
        timers.advance_to(timers.now + gaps.uniform(0.0, 0.6))
        log.record(timers.now, "x")
        events += 1
    timers.advance_to(200.0)  # the timer writes what the last interval held back
    times = [at for at, _count in written]
    apart = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= INTERVAL - 1e-9 for gap in apart), written  # float sums of the gaps
    assert sum(count for _at, count in written) == events
    assert len(written) <= times[-1] / INTERVAL + 1
