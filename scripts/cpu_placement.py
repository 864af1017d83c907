"""Which CPUs the benchmark's own process and its Redis servers run on (scripts/bench.py).

A sequential call is one round trip between two processes, and on a small VM its time
depends less on either process than on where the scheduler puts them. On the 2-core build
machine on 2026-12-05, in two bench runs, tls_transport's sequential 1 KiB SET+GET ran at
53,331 operations a second with the bench and its server on one core (19 us each) and at
11,567 with them on two (86 us): a wake-up across cores costs this VM tens of microseconds
each way. Left to itself the scheduler moved between the two from one slice of a round to
the next, and it did so column by column (in a third run, plaintext redis-py ran at 20,782
operations a second while the TLS columns beside it ran at 10,585-11,693), so the ratios
measured placement as much as clients (docs/benchmark.md, "Where the process runs").

So a run fixes the placement it measures:

- ``split`` (the default): the servers on the last CPU, the bench and everything it starts
  (redis-benchmark, its threads) on the first. It is a deployment's shape, where Redis runs
  in a container of its own and never in its caller's time slice, and it is repeatable. On
  a machine with more than two CPUs the rest stay idle: a bench free to move among several
  CPUs would again measure where the scheduler put it.
- ``shared``: everything on the first CPU: every round trip is a switch between two processes
  on one core, with no wake-up across cores, so the time is what the client and the server
  spend, and the client's own cost weighs the most.
- ``free``: the scheduler's choice, as every run before 2026-12-05.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, assert_never, get_args

Placement = Literal["split", "shared", "free"]
PLACEMENTS: tuple[Placement, ...] = get_args(Placement)


class PlacementError(ValueError):
    """The placement asked for cannot be made on this machine."""


@dataclass(frozen=True)
class Plan:
    """The CPUs of the bench's process and of its servers; empty sets leave both as they are."""

    placement: Placement
    bench: frozenset[int]
    servers: frozenset[int]

    def describe(self) -> str:
        if self.placement == "free":
            return "free: where the scheduler puts them"
        bench, servers = _cpus(self.bench), _cpus(self.servers)
        return f"{self.placement}: bench on CPU {bench}, servers on CPU {servers}"


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def plan(placement: Placement, available: Set[int]) -> Plan:
    """Divide `available` CPUs (this process's affinity) as `placement` asks."""
    cpus = sorted(available)
    if not cpus:
        raise PlacementError("no CPU is available to this process")
    if placement == "free":
        return Plan("free", frozenset(), frozenset())
    if placement == "shared":
        return Plan("shared", frozenset(cpus[:1]), frozenset(cpus[:1]))
    if placement == "split":
        if len(cpus) < 2:
            raise PlacementError(
                f"--placement split needs two CPUs and this process may use only CPU "
                f"{cpus[0]}; run with --placement shared (or free)"
            )
        return Plan("split", frozenset(cpus[:1]), frozenset(cpus[-1:]))
    assert_never(placement)


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Move every thread of process `pid` onto `cpus` (nothing when `cpus` is empty).

    `sched_setaffinity` moves one thread: Redis starts its background threads (the
    append-only file's fsync among them) before it answers, and each of them is moved here.
    Threads started later inherit their creator's CPUs."""
    if not cpus:
        return
    # A thread started while the directory is read may have inherited the old CPUs, so read
    # it again until a pass finds no thread it has not moved.
    moved: set[int] = set()
    while True:
        try:
            tasks = {int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()}
        except FileNotFoundError:
            raise PlacementError(f"process {pid} ended before it could be pinned") from None
        if tasks <= moved:
            return
        for task in tasks - moved:
            # ProcessLookupError: the thread ended since the directory was read.
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(task, cpus)
            moved.add(task)
