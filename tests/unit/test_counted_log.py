"""Repeated log events as counts (app/secure_cache/counted_log.py): at most one line per
interval, every event counted, what was held back written by a timer and by flush()."""

from __future__ import annotations

import asyncio

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
