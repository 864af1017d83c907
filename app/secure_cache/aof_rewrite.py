"""Ask Redis to rewrite its append-only file, and wait until that rewrite is done.

Redis's AOF (Redis 7: a base and incremental parts in `appendonlydir`) keeps every write
since its last rewrite, deleted entries and the envelopes a retired data key sealed among
them; Redis rewrites it on its own only past `auto-aof-rewrite-min-size` (64 MB). After a
data-key rotation scripts/rotate.sh asks for a rewrite through the exporter
(`python -m secure_cache.redis_exporter rewrite-aof`), so the file holds what Redis holds
now and nothing older (docs/day2.md, "What a retirement leaves").

A rewrite already running when asked may have taken its snapshot before the last changes;
so it is waited for first, and then one of our own is started. Ours is known done by INFO
persistence: nothing in progress or scheduled, and `aof_rewrites` (Redis 7.0's count of
rewrites since start) past what it was before the request. `aof_last_bgrewrite_status` then
says whether it succeeded. No I/O here: INFO and BGREWRITEAOF come as callables, and so do
the clock and the sleep, so tests drive every branch without a server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

# How often INFO is asked while waiting: a rewrite of a small cache takes milliseconds, one of
# 192 MiB a few seconds (bench.py waits the same way, at 5 ms, for its own rewrites).
POLL_S: Final = 0.1
# Redis's reply when a rewrite is already running (it then starts none).
IN_PROGRESS: Final = "already in progress"


class RewriteError(RuntimeError):
    """The rewrite did not happen or failed: the message says what Redis reported."""


@dataclass(frozen=True)
class RewriteDone:
    """A rewrite that started after the request and ended well."""

    rewrites: int
    """`aof_rewrites` once it was done."""
    waited_for_another: bool
    """A rewrite was already under way when asked: it was waited for, then ours ran."""


def busy(persistence: Mapping[str, Any]) -> bool:
    """A rewrite runs, or waits for a BGSAVE to end before it runs."""
    return bool(int(persistence.get("aof_rewrite_in_progress", 0))) or bool(
        int(persistence.get("aof_rewrite_scheduled", 0))
    )


def rewrites(persistence: Mapping[str, Any]) -> int:
    """Redis's count of AOF rewrites since it started (INFO persistence, Redis 7.0+)."""
    if "aof_rewrites" not in persistence:
        raise RewriteError(
            "INFO persistence has no aof_rewrites field (Redis older than 7.0?): a finished "
            "rewrite cannot be told from one not yet started"
        )
    return int(persistence["aof_rewrites"])


def rewrite_aof(
    info: Callable[[], Mapping[str, Any]],
    start: Callable[[], object],
    *,
    timeout_s: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RewriteDone:
    """Run one AOF rewrite that starts after this call and wait for its end.

    `info`: INFO persistence, parsed; `start`: BGREWRITEAOF, raising an exception whose text
    holds IN_PROGRESS when Redis refuses it for a rewrite already running (then waited for,
    and asked again). RewriteError when it does not end within `timeout_s` or fails."""
    deadline = clock() + timeout_s
    waited = False

    def settled(*, ours: bool) -> Mapping[str, Any]:
        nonlocal waited
        while True:
            now = info()
            if not busy(now):
                return now
            waited |= not ours
            if clock() > deadline:
                raise RewriteError(
                    f"Redis was still rewriting its append-only file after {timeout_s:.0f} s"
                )
            sleep(POLL_S)

    while True:
        before = rewrites(settled(ours=False))
        try:
            start()
        except Exception as exc:  # the client's error type is the caller's
            if IN_PROGRESS not in str(exc):
                raise RewriteError(f"Redis refused BGREWRITEAOF: {exc}") from exc
            waited = True
            if clock() > deadline:
                raise RewriteError(
                    f"Redis kept refusing BGREWRITEAOF for {timeout_s:.0f} s: {exc}"
                ) from exc
            continue  # another started in between: wait for it, then ask again
        break
    while True:
        done = settled(ours=True)
        count = rewrites(done)
        if count > before:
            break
        if clock() > deadline:
            raise RewriteError(
                f"Redis accepted BGREWRITEAOF but ran no rewrite within {timeout_s:.0f} s"
            )
        sleep(POLL_S)
    status = str(done.get("aof_last_bgrewrite_status", ""))
    if status != "ok":
        raise RewriteError(
            f"Redis's rewrite of its append-only file failed (aof_last_bgrewrite_status: "
            f"{status or 'missing'}); Redis's own log says why (a full disk, a fork refused "
            "for memory)"
        )
    return RewriteDone(rewrites=count, waited_for_another=waited)


__all__ = [
    "IN_PROGRESS",
    "POLL_S",
    "RewriteDone",
    "RewriteError",
    "busy",
    "rewrite_aof",
    "rewrites",
]
