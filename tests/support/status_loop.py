"""Requests repeated on a thread while a test changes something under them, each answer kept
with the time it arrived: how the token-rotation tests show a token accepted all along until
its retirement (tests/integration/test_service_token_rotation.py, tests/e2e)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

Results = list[tuple[float, int]]


@contextlib.contextmanager
def status_loop(status: Callable[[], int], pause_s: float = 0.0) -> Iterator[Results]:
    """Call `status()` again and again (`pause_s` apart) while the block runs; yields the list
    of (time.monotonic() on arrival, status) it fills."""
    results: Results = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            results.append((time.monotonic(), status()))
            if pause_s:
                stop.wait(pause_s)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield results
    finally:
        stop.set()
        thread.join(timeout=30)


def statuses_before(results: Results, moment: float) -> list[int]:
    """The statuses of the requests that finished before `moment`."""
    return [status for arrived, status in results if arrived < moment]
