"""Run steps as their dependencies allow, many at once, the way Pulumi's engine walks its graph.

Pulumi's engine starts every resource operation whose dependencies are done, without a bound
(`pulumi up --parallel` defaults to unbounded), and when one fails it starts nothing new but
lets those in flight finish. The local applier does the same, so a program that leaves a
dependency undeclared fails here as it would under `pulumi up`, not only there; and an `up`
waits for its longest chain instead of the sum of every step (a certificate renewal replaces
five run-to-completion initialisers, three of them independent of each other).

Threads, not asyncio: every step is blocking docker SDK calls (the SDK has no async API), and
the steps mostly wait on the engine.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Final, TypeVar

K = TypeVar("K")

_THREAD_PREFIX: Final = "apply-step"
# The caller's thread waits in slices of this long: CPython runs a signal's handler (Ctrl-C,
# SIGTERM) only between bytecodes, and a signal that arrives just before a blocking lock wait
# begins does not interrupt that wait, so without a slice it was acted on only when the next
# step ended (measured: 7 of 12 interrupts sent as a step began waited for the steps' own
# timeout; tests/unit/test_applier_schedule.py).
_SIGNAL_CHECK_S: Final = 0.2


class Cancelled(Exception):
    """Raised by a step that saw the cancel event: the run was interrupted."""


class _InFlight:
    """The steps that are in flight, entered and left by their own threads, and the cancel
    event, set under the same lock: once `cancel_and_wait` sets it, no step begins (or comes
    back from an `abandonable` wait) any more, and it returns when every step in flight has
    ended. Nothing here depends on what the caller's thread was doing when the interrupt
    reached it (a result just taken from the queue and not yet counted, a thread half
    started): the steps' threads keep the count, and no signal handler runs in them."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self._changed = threading.Condition()
        self._active: set[int] = set()

    def enter(self) -> bool:
        """False when the run was cancelled: the calling step must not go on."""
        with self._changed:
            if self.cancel.is_set():
                return False
            self._active.add(threading.get_ident())
            return True

    def leave(self) -> None:
        with self._changed:
            self._active.discard(threading.get_ident())
            self._changed.notify_all()

    def cancel_and_wait(self) -> None:
        """Interruptible (a second Ctrl-C ends the wait; the threads are daemons)."""
        with self._changed:
            self.cancel.set()
            while self._active:
                self._changed.wait(_SIGNAL_CHECK_S)


# The run the current step's thread belongs to, for `abandonable`.
_current = threading.local()


@contextmanager
def abandonable() -> Iterator[None]:
    """A wait inside a step that changes nothing and records nothing (a build's output
    stream, which can be silent for minutes: an interrupt waited 82-122 s for three app
    builds on the loaded build machine): an interrupted run does not wait for it to end, and
    the step raises Cancelled when it leaves it, so nothing after it runs. Outside a step of
    run_when_ready it does nothing."""
    in_flight: _InFlight | None = getattr(_current, "in_flight", None)
    if in_flight is None:
        yield
        return
    in_flight.leave()
    try:
        yield
    finally:
        if not in_flight.enter():
            raise Cancelled  # the run was interrupted: what the wait gave is moot


def run_when_ready(
    keys: Sequence[K],
    needs: Mapping[K, Collection[K]],
    run: Callable[[K], None],
    *,
    cancel: threading.Event,
    also_failed: Callable[[BaseException], None] = lambda _exc: None,
) -> None:
    """Run `run(key)` for every key, each in a thread of its own once every key it `needs`
    has run; ready keys start in `keys`' order. A need outside `keys` (an object the up leaves
    unchanged) counts as done once what it needs among `keys` has run, as under Pulumi's
    engine, where an unchanged resource is registered only after its own dependencies.

    The first step that raises stops new starts; those in flight finish, then its exception
    is raised (later failures go to `also_failed`). A KeyboardInterrupt in the caller's thread
    (Ctrl-C, or SIGTERM as infra/apply.py raises it) sets `cancel`, which the steps check at
    their waits (they raise Cancelled), waits for every step that began, reports the failures
    seen so far to `also_failed` (the interrupt is raised, so none of them would be shown),
    and is raised again: the caller's state is then what the steps recorded. A second one
    while waiting is not caught (the threads are daemons, so the process can end at once).

    Raises:
        ValueError: a key needs itself through others (the plan orders first, so a bug).
    """
    wanted = set(keys)
    waits_for = {key: _among(wanted, key, needs) for key in keys}
    pending = list(keys)
    finished: set[K] = set()
    running: set[K] = set()
    failures: list[BaseException] = []
    in_flight = _InFlight(cancel)
    # queue.Queue, not SimpleQueue: its blocking get is interrupted by a signal (SimpleQueue's
    # C get was not: Ctrl-C waited for every step in flight to end).
    results: queue.Queue[tuple[K, BaseException | None]] = queue.Queue()

    def start_ready() -> None:
        for key in list(pending):
            if waits_for[key] <= finished:
                pending.remove(key)
                running.add(key)
                name = f"{_THREAD_PREFIX}-{len(finished) + len(running)}"
                threading.Thread(
                    target=_step, args=(key, run, in_flight, results), name=name, daemon=True
                ).start()

    try:
        start_ready()
        while running:
            key, error = _next(results)
            running.discard(key)
            if error is None:
                finished.add(key)
            elif isinstance(error, Cancelled):
                pass  # the reason (an interrupt) is raised below
            else:
                if not isinstance(error, Exception):
                    cancel.set()  # a KeyboardInterrupt raised inside a step
                failures.append(error)
            if not failures and not cancel.is_set():
                start_ready()
    except KeyboardInterrupt:
        in_flight.cancel_and_wait()
        for failure in [*failures, *_failed(results)]:
            also_failed(failure)
        raise
    if failures:
        for later in failures[1:]:
            also_failed(later)
        raise failures[0]
    if pending:
        raise ValueError(f"steps wait on each other: {pending!r}")


def _next(results: queue.Queue[tuple[K, BaseException | None]]) -> tuple[K, BaseException | None]:
    """The next step's outcome, waited for in slices (_SIGNAL_CHECK_S)."""
    while True:
        try:
            return results.get(timeout=_SIGNAL_CHECK_S)
        except queue.Empty:
            continue


def _step(
    key: K,
    run: Callable[[K], None],
    in_flight: _InFlight,
    results: queue.Queue[tuple[K, BaseException | None]],
) -> None:
    """One step's thread: `run(key)` unless the run was cancelled first; the outcome goes to
    `results` either way."""
    if not in_flight.enter():
        results.put((key, Cancelled()))
        return
    _current.in_flight = in_flight
    try:
        run(key)
    except BaseException as exc:  # handed to the caller's thread, whatever it is
        results.put((key, exc))
    else:
        results.put((key, None))
    finally:
        in_flight.leave()


def _among(wanted: set[K], key: K, needs: Mapping[K, Collection[K]]) -> set[K]:
    """The keys in `wanted` that `key` needs, directly or through needs outside `wanted`."""
    found: set[K] = set()
    seen: set[K] = set()
    stack = list(needs.get(key, ()))
    while stack:
        need = stack.pop()
        if need in seen:
            continue
        seen.add(need)
        if need in wanted:
            found.add(need)
        else:
            stack.extend(needs.get(need, ()))
    found.discard(key)
    return found


def _failed(results: queue.Queue[tuple[K, BaseException | None]]) -> list[BaseException]:
    """The failures among the results not taken yet (not the steps that were cancelled)."""
    failed: list[BaseException] = []
    while True:
        try:
            _key, error = results.get_nowait()
        except queue.Empty:
            return failed
        if isinstance(error, Exception) and not isinstance(error, Cancelled):
            failed.append(error)


__all__ = ["Cancelled", "abandonable", "run_when_ready"]
