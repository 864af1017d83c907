"""app/secure_cache/aof_rewrite.py: one AOF rewrite that starts after the request, waited for.

INFO persistence is played back as Redis 7.0.15 answers it (field names as it prints them);
the clock is the test's, so no test waits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from secure_cache.aof_rewrite import IN_PROGRESS, RewriteError, rewrite_aof

pytestmark = pytest.mark.unit


def _persistence(
    *, running: int = 0, scheduled: int = 0, rewrites: int = 0, status: str = "ok"
) -> dict[str, Any]:
    return {
        "aof_enabled": 1,
        "aof_rewrite_in_progress": running,
        "aof_rewrite_scheduled": scheduled,
        "aof_rewrites": rewrites,
        "aof_last_bgrewrite_status": status,
    }


class _Redis:
    """INFO answers in turn (the last again); BGREWRITEAOF answers in turn (an exception
    raised, anything else returned); the clock moves by each sleep."""

    def __init__(self, infos: list[Mapping[str, Any]], starts: list[object] | None = None) -> None:
        self._infos: Iterator[Mapping[str, Any]] = iter(infos)
        self._last = infos[-1]
        self._starts = list(starts or [True])
        self.started = 0
        self.now = 0.0

    def info(self) -> Mapping[str, Any]:
        self._last = next(self._infos, self._last)
        return self._last

    def start(self) -> object:
        self.started += 1
        answer = self._starts.pop(0) if len(self._starts) > 1 else self._starts[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def run(self, timeout_s: float = 60.0) -> Any:
        return rewrite_aof(
            self.info, self.start, timeout_s=timeout_s, sleep=self.sleep, clock=lambda: self.now
        )


def test_a_rewrite_is_asked_and_waited_for_until_redis_counts_it_done() -> None:
    redis = _Redis(
        [
            _persistence(rewrites=4),
            _persistence(running=1, rewrites=4),
            _persistence(running=1, rewrites=5),
            _persistence(rewrites=5),
        ]
    )
    done = redis.run()
    assert (done.rewrites, done.waited_for_another, redis.started) == (5, False, 1)


def test_a_rewrite_already_running_is_waited_for_then_one_of_its_own_runs() -> None:
    redis = _Redis(
        [
            _persistence(running=1, rewrites=4),
            _persistence(rewrites=5),  # the earlier one ended: its snapshot may predate us
            _persistence(running=1, rewrites=6),
            _persistence(rewrites=6),
        ]
    )
    done = redis.run()
    assert (done.rewrites, done.waited_for_another, redis.started) == (6, True, 1)


def test_one_started_between_the_look_and_the_request_is_waited_for_and_asked_again() -> None:
    busy = RuntimeError(f"Background append only file rewriting {IN_PROGRESS}")
    redis = _Redis(
        [
            _persistence(rewrites=4),
            _persistence(running=1, rewrites=5),
            _persistence(rewrites=5),
            _persistence(rewrites=6),
        ],
        starts=[busy, True],
    )
    done = redis.run()
    assert (done.rewrites, done.waited_for_another, redis.started) == (6, True, 2)


def test_a_scheduled_rewrite_is_waited_for_too() -> None:
    redis = _Redis(
        [_persistence(rewrites=1), _persistence(scheduled=1, rewrites=1), _persistence(rewrites=2)]
    )
    assert redis.run().rewrites == 2


def test_a_failed_rewrite_is_an_error_naming_redis_status() -> None:
    redis = _Redis([_persistence(rewrites=1), _persistence(rewrites=2, status="err")])
    with pytest.raises(RewriteError, match=r"aof_last_bgrewrite_status: err"):
        redis.run()


def test_a_refusal_other_than_one_running_is_an_error() -> None:
    redis = _Redis([_persistence()], starts=[PermissionError("NOPERM no permissions")])
    with pytest.raises(RewriteError, match="refused BGREWRITEAOF: NOPERM"):
        redis.run()


def test_a_rewrite_that_never_ends_times_out() -> None:
    redis = _Redis([_persistence(rewrites=1), _persistence(running=1, rewrites=2)])
    with pytest.raises(RewriteError, match="still rewriting its append-only file after 30 s"):
        redis.run(timeout_s=30)


def test_an_accepted_request_with_no_rewrite_counted_times_out() -> None:
    redis = _Redis([_persistence(rewrites=3)])
    with pytest.raises(RewriteError, match="ran no rewrite within 30 s"):
        redis.run(timeout_s=30)


def test_a_redis_without_the_rewrite_count_is_refused_before_anything_is_asked() -> None:
    redis = _Redis([{"aof_rewrite_in_progress": 0, "aof_rewrite_scheduled": 0}])
    with pytest.raises(RewriteError, match="no aof_rewrites field"):
        redis.run()
    assert redis.started == 0
