"""scripts/cpu_placement.py: the benchmark fixes which CPUs it and its servers run on, since
a sequential round trip's time on this VM depended more on the scheduler's placement than on
the client (docs/benchmark.md, "Where the process runs")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.cpu_placement import PlacementError, pin, plan
from tests.support.entry_points import run_entry


def test_split__servers_on_the_last_cpu_the_bench_on_the_first() -> None:
    two = plan("split", {0, 1})
    assert (two.bench, two.servers) == (frozenset({0}), frozenset({1}))
    # One CPU each, however many there are: a bench free to move among several would again
    # measure where the scheduler put it.
    four = plan("split", {3, 0, 2, 1})
    assert (four.bench, four.servers) == (frozenset({0}), frozenset({3}))
    assert four.describe() == "split: bench on CPU 0, servers on CPU 3"


def test_plan__an_unknown_placement_is_refused_not_read_as_split() -> None:
    with pytest.raises(AssertionError):
        plan("spilt", {0, 1})  # type: ignore[arg-type]


def test_split__one_cpu_is_refused_naming_the_placements_that_work() -> None:
    with pytest.raises(PlacementError) as raised:
        plan("split", {5})
    assert "CPU 5" in str(raised.value)
    assert "--placement shared" in str(raised.value)


def test_shared__both_on_the_first_cpu() -> None:
    shared = plan("shared", {2, 1})
    assert (shared.bench, shared.servers) == (frozenset({1}), frozenset({1}))


def test_free__moves_nothing() -> None:
    free = plan("free", {0, 1})
    assert (free.bench, free.servers) == (frozenset(), frozenset())
    before = os.sched_getaffinity(0)
    pin(os.getpid(), free.bench)  # empty: this process keeps every CPU it had
    assert os.sched_getaffinity(0) == before


_THREADED = (
    "import threading, time, sys\n"
    "for _ in range(3): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    "print('ready', flush=True); sys.stdin.read()\n"
)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to move a thread")
def test_pin__moves_every_thread_of_a_running_process() -> None:
    """A process's threads started before it was pinned (Redis's background threads) are
    moved too: sched_setaffinity on the process id moves only its main thread."""
    target = frozenset({max(os.sched_getaffinity(0))})
    child = subprocess.Popen(  # fixed argv
        [sys.executable, "-c", _THREADED],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        tasks = [int(t.name) for t in Path(f"/proc/{child.pid}/task").iterdir()]
        assert len(tasks) >= 4  # the main thread and the three it started
        pin(child.pid, target)
        assert {tid: os.sched_getaffinity(tid) for tid in tasks} == dict.fromkeys(tasks, target)
    finally:
        child.kill()
        child.wait()


def test_pin__a_process_that_has_ended_is_a_placement_error() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # fixed argv
    child.wait()
    with pytest.raises(PlacementError, match=f"process {child.pid} ended"):
        pin(child.pid, frozenset({0}))


def test_bench__split_on_one_cpu_is_bad_input_not_a_traceback() -> None:
    from scripts import bench  # noqa: PLC0415

    only = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {only})
    try:
        code, text = run_entry(lambda: bench.main(["--placement", "split"]))
    finally:
        os.sched_setaffinity(0, before)
    assert code == 2, text
    assert "--placement shared" in text, text
    assert "Traceback" not in text, text
