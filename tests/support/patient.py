"""Waits between a test's threads that a starved process does not break.

A wait with a timeout (threading.Barrier(timeout=20), Event.wait(10)) counts wall-clock time,
which runs on while the whole process gets no CPU: on the 2-core machine at load 13-16 a
20 s barrier broke in CI although every thread it waited for was ready to run
(tests/unit/test_applier_schedule.py). These waits count their own wake-ups instead, one per
slice of SLICE_S: a wait gives up only after it was woken `wakeups` times and the others still
had not come, which a correct program cannot cause (they run whenever the waiter does), while
a process frozen or starved for minutes costs a wait one wake-up, not its whole allowance. A
thread that will never come (a scheduler running steps one after the other) still fails the
wait, after about `wakeups` * SLICE_S seconds on an idle machine.
"""

from __future__ import annotations

import threading
from typing import Final

SLICE_S: Final = 0.05
WAKEUPS: Final = 400
"""About 20 s on an idle machine: what the waits these replace allowed."""


def wait_patiently(event: threading.Event, wakeups: int = WAKEUPS) -> bool:
    """Whether `event` was set before the waiter was woken `wakeups` times."""
    for _ in range(wakeups):
        if event.wait(SLICE_S):
            return True
    return event.is_set()


def join_patiently(thread: threading.Thread, wakeups: int = WAKEUPS) -> None:
    """`thread` joined, or given up on after the joiner was woken `wakeups` times (the caller
    then sees it alive)."""
    for _ in range(wakeups):
        thread.join(SLICE_S)
        if not thread.is_alive():
            return


class Meeting:
    """A one-time threading.Barrier for `parties` threads whose wait gives up (raising
    threading.BrokenBarrierError, as the barrier did) only after each waiter's own `wakeups`."""

    def __init__(self, parties: int, wakeups: int = WAKEUPS) -> None:
        self._parties = parties
        self._wakeups = wakeups
        self._arrived = 0
        self._broken = False
        self._changed = threading.Condition()

    def wait(self) -> None:
        with self._changed:
            self._arrived += 1
            self._changed.notify_all()
            for _ in range(self._wakeups):
                if self._broken or self._arrived >= self._parties:
                    break
                self._changed.wait(SLICE_S)
            if self._arrived < self._parties or self._broken:
                self._broken = True  # as a barrier: the others do not wait on
                self._changed.notify_all()
                raise threading.BrokenBarrierError(
                    f"{self._arrived} of {self._parties} threads came"
                )


__all__ = ["SLICE_S", "WAKEUPS", "Meeting", "join_patiently", "wait_patiently"]
