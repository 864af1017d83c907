"""Repeated log events as counts: at most one line per kind of event per interval.

Anyone who reaches the service's port can make some events happen as fast as it answers:
connections closed at the limit (service.py) and requests without the token or to `/healthz`
(http_api.py). A line each let a flood rotate the container's whole log (10 MiB x 3,
infra/components/hardening.py) away within minutes, and the lines a defender needs with it.
So those events are counted by kind, and the counts are logged at most once per interval:
the first event after a quiet interval is due at once (count 1, so the start of a flood shows
when it starts), the ones after it are added up until the first event after the interval has
passed. No event is dropped; only its own line is.

`CountedEvents` is the counting alone (no I/O, no clock of its own: callers pass the time);
the exporter's threaded /metrics server (metrics_server.py) counts its refusals with it.
`CountedLog` writes its lines, and what it held back is written when the next line is due
even when no event follows (a timer on the running event loop) and when the service stops
(`flush`), so a flood that ends is in the log within an interval of its end. A line written
by either way is the interval's one line: the other waits for the next interval.
The kinds must come from a closed set (route templates, known methods, statuses), or a flood
of distinct kinds would be as many lines again.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Final, Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)


class Timer(Protocol):
    def cancel(self) -> None: ...


# Calls a function after so many seconds (asyncio's loop.call_later); None: no timer can run.
Schedule = Callable[[float, Callable[[], None]], Timer]

# How often counted lines are written at most, for every kind the service counts: a flood
# leaves one line per kind per 10 s (about 8,600 a day), and its start shows at once.
COUNTED_LOG_INTERVAL_S: Final = 10.0


class CountedEvents(Generic[K]):
    """Counts of events by kind since the last line, and when the next line is due."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._counts: Counter[K] = Counter()
        self._last = -math.inf

    def add(self, now: float, kind: K) -> dict[K, int] | None:
        """Count one `kind` event at `now` (monotonic seconds). When a line is due, the counts
        since the last one (this event included, in the order the kinds first came), which
        start again from zero; otherwise None."""
        self._counts[kind] += 1
        if now - self._last < self.interval:
            return None
        self._last = now
        return self.take()

    @property
    def due_at(self) -> float:
        """When the next line may be written (monotonic seconds, the callers' clock)."""
        return self._last + self.interval

    def take_line(self, now: float) -> dict[K, int]:
        """The counts not logged yet, as the line written at `now` when there are any (the
        next one is then due an interval later); empty when none."""
        counts = self.take()
        if counts:
            self._last = now
        return counts

    def take(self) -> dict[K, int]:
        """The counts not logged yet (empty when none), which start again from zero."""
        counts = dict(self._counts)
        self._counts.clear()
        return counts


class CountedLog(Generic[K]):
    """CountedEvents whose lines go to `write`, with held-back counts written as soon as the
    next line is due (by a timer on the running event loop; none runs without one)."""

    def __init__(
        self,
        write: Callable[[dict[K, int]], None],
        interval: float = COUNTED_LOG_INTERVAL_S,
        *,
        schedule: Callable[[], Schedule | None] | None = None,
    ) -> None:
        self._events: CountedEvents[K] = CountedEvents(interval)
        self._write = write
        self._schedule = schedule or _running_loop_timer
        self._timer: Timer | None = None

    def record(self, now: float, kind: K) -> None:
        """One `kind` event at `now` (monotonic seconds)."""
        counts = self._events.add(now, kind)
        if counts is not None:
            self._cancel_timer()  # this line has what the timer was to write
            self._write(counts)
        elif self._timer is None:
            schedule = self._schedule()
            if schedule is not None:
                due = self._events.due_at
                self._timer = schedule(max(0.0, due - now), lambda: self._timer_due(due))

    def flush(self) -> None:
        """Write what was counted and not written yet, if anything."""
        self._cancel_timer()
        if counts := self._events.take():
            self._write(counts)

    def _timer_due(self, now: float) -> None:
        self._timer = None
        if counts := self._events.take_line(now):
            self._write(counts)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _running_loop_timer() -> Schedule | None:
    try:
        return asyncio.get_running_loop().call_later
    except RuntimeError:  # no event loop (a unit test driving it by hand)
        return None


__all__ = ["COUNTED_LOG_INTERVAL_S", "CountedEvents", "CountedLog", "Schedule", "Timer"]
