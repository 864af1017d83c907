"""The applier's scheduler (infra/applier/schedule.py): independent steps at once, dependents
after what they need, the first failure stops new starts but lets steps in flight finish, and
an interrupt cancels the steps in flight and is raised again once they stopped.

No assertion on time: concurrency is shown by steps that can only finish together (a barrier
both must reach), order by what each step saw when it started. The threads' waits count their
own wake-ups, not seconds (tests/support/patient.py): a 20 s barrier broke in a CI run at load
13-16, while the process was starved, not the scheduler wrong.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from typing import Any

import pytest

from infra.applier.schedule import Cancelled, run_when_ready
from infra.settings import REPO_ROOT
from tests.support.patient import Meeting, join_patiently, wait_patiently

# Rounds of a real interrupt: each lost one showed up in about half of them before the fix.
_SIGNAL_ROUNDS = 6


def _interrupted_process(script: str, *, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run `script` (which interrupts itself with a real signal) in a Python process of its
    own, so the SIGINT never reaches the test runner; it must end cleanly."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_schedule__independent_steps_run_at_the_same_time() -> None:
    meet = Meeting(3)
    ran: list[str] = []

    def run(key: str) -> None:
        meet.wait()  # only passes when all three are running at once
        ran.append(key)

    run_when_ready(["a", "b", "c"], {}, run, cancel=threading.Event())
    assert sorted(ran) == ["a", "b", "c"]


def test_schedule__a_step_starts_only_once_what_it_needs_is_done() -> None:
    done: set[str] = set()
    seen: dict[str, set[str]] = {}

    def run(key: str) -> None:
        seen[key] = set(done)
        done.add(key)

    needs = {"app": {"redis", "net"}, "redis": {"net", "image"}, "net": set(), "image": set()}
    run_when_ready(["app", "redis", "net", "image"], needs, run, cancel=threading.Event())
    assert seen["redis"] >= {"net", "image"}
    assert seen["app"] >= {"redis", "net", "image"}


def test_schedule__a_need_outside_the_steps_counts_as_done() -> None:
    """An unchanged object is not a step of the up: what depends on it runs at once."""
    ran: list[str] = []
    run_when_ready(["app"], {"app": {"unchanged-redis"}}, ran.append, cancel=threading.Event())
    assert ran == ["app"]


def test_schedule__a_need_through_an_unchanged_step_is_still_waited_for() -> None:
    """`app-init` needs the unchanged `reload-acl`, which needs `redis-init`, rewritten by
    this up: under Pulumi's engine the unchanged one is registered only after `redis-init`,
    so `app-init` starts after it too (it started at once)."""
    done: set[str] = set()
    seen: dict[str, set[str]] = {}

    def run(key: str) -> None:
        seen[key] = set(done)
        done.add(key)

    needs = {"app-init": {"reload-acl"}, "reload-acl": {"redis-init"}}
    run_when_ready(["app-init", "redis-init"], needs, run, cancel=threading.Event())
    assert "redis-init" in seen["app-init"]


def test_schedule__a_failure_starts_nothing_new_lets_steps_in_flight_finish_and_is_raised() -> None:
    failed = threading.Event()
    ran: list[str] = []

    def run(key: str) -> None:
        if key == "bad":
            failed.set()
            raise ValueError("bad step")
        if key == "slow":
            assert wait_patiently(failed)  # still running when the other failed
        ran.append(key)

    needs = {"after-slow": {"slow"}}
    with pytest.raises(ValueError, match="bad step"):
        run_when_ready(["bad", "slow", "after-slow"], needs, run, cancel=threading.Event())
    assert ran == ["slow"]


def test_schedule__later_failures_are_reported_and_the_first_raised() -> None:
    both = Meeting(2)
    reported: list[str] = []

    def run(key: str) -> None:
        both.wait()  # both in flight, so the second failure comes after the first
        raise RuntimeError(key)

    with pytest.raises(RuntimeError) as first:
        run_when_ready(
            ["one", "two"],
            {},
            run,
            cancel=threading.Event(),
            also_failed=lambda exc: reported.append(str(exc)),
        )
    assert sorted([str(first.value), *reported]) == ["one", "two"]


def test_schedule__a_keyboard_interrupt_inside_a_step_cancels_the_others() -> None:
    """The applier's tests interrupt an up from its checkpoint (a step's thread)."""
    started = Meeting(2)
    cancel = threading.Event()
    stopped: list[str] = []

    def run(key: str) -> None:
        started.wait()
        if key == "interrupted":
            raise KeyboardInterrupt
        if wait_patiently(cancel):
            stopped.append(key)
            raise Cancelled

    with pytest.raises(KeyboardInterrupt):
        run_when_ready(["interrupted", "waiting"], {}, run, cancel=cancel)
    assert stopped == ["waiting"]


def test_schedule__ctrl_c_cancels_the_steps_in_flight_and_is_raised_once_they_stopped() -> None:
    """A real SIGINT to a process waiting in run_when_ready (as `python -m infra.apply up`
    is): its steps see the cancel event, stop, and KeyboardInterrupt reaches the caller after
    them, with nothing new started. Several rounds: a signal sent as the steps begin often
    reached the caller's thread just before its wait began, which it then did not interrupt
    (7 of 12 rounds, before the wait was sliced): the steps ran to their own end."""
    script = textwrap.dedent(
        """
        import os, signal, threading
        from infra.applier.schedule import Cancelled, run_when_ready
        from tests.support.patient import Meeting, wait_patiently

        for _round in range(_ROUNDS):
            cancel = threading.Event()
            both = Meeting(2)
            events = []

            def run(key):
                both.wait()
                if key == "a":
                    os.kill(os.getpid(), signal.SIGINT)
                if wait_patiently(cancel, 200):
                    events.append(f"{key} stopped")
                    raise Cancelled
                events.append(f"{key} finished")

            try:
                run_when_ready(["a", "b", "c"], {"c": {"a"}}, run, cancel=cancel)
            except KeyboardInterrupt:
                print("interrupted after:", sorted(events))
        """
    ).replace("_ROUNDS", str(_SIGNAL_ROUNDS))
    done = _interrupted_process(script, timeout_s=60 + 10 * _SIGNAL_ROUNDS)
    assert (
        done.stdout.splitlines()
        == ["interrupted after: ['a stopped', 'b stopped']"] * _SIGNAL_ROUNDS
    )


def test_schedule__an_interrupt_does_not_wait_for_an_abandonable_wait_which_then_cancels() -> None:
    """A build's output stream may be silent for minutes: a real SIGINT ends the run while
    one step still waits inside `abandonable()` (before, the run waited for that wait to end:
    82-122 s for three app builds on the loaded build machine), and that step, once its wait
    ends, is cancelled: nothing after the wait runs."""
    script = textwrap.dedent(
        """
        import os, signal, threading
        from infra.applier.schedule import Cancelled, abandonable, run_when_ready
        from tests.support.patient import Meeting, wait_patiently

        cancel = threading.Event()
        both = Meeting(2)
        release, waited_out, left = threading.Event(), threading.Event(), threading.Event()
        after = []

        def run(key):
            both.wait()
            if key == "create":
                if wait_patiently(cancel):
                    raise Cancelled
                return
            try:
                with abandonable():
                    os.kill(os.getpid(), signal.SIGINT)
                    wait_patiently(release)
                    waited_out.set()
                after.append("recorded")
            finally:
                left.set()

        try:
            run_when_ready(["build", "create"], {}, run, cancel=cancel)
        except KeyboardInterrupt:
            print("interrupted while the build waited:", not waited_out.is_set())
        release.set()
        wait_patiently(left)
        print("after the wait:", after)
        """
    )
    done = _interrupted_process(script, timeout_s=90)
    assert done.stdout.splitlines() == [
        "interrupted while the build waited: True",
        "after the wait: []",
    ]


def test_schedule__steps_waiting_on_each_other_are_an_error_not_a_hang() -> None:
    with pytest.raises(ValueError, match="wait on each other"):
        run_when_ready(
            ["a", "b"], {"a": {"b"}, "b": {"a"}}, lambda _k: None, cancel=threading.Event()
        )


def _ended(target: Callable[[], None]) -> list[BaseException]:
    """Run `target` in a thread; what it raised. A bound against a hang, not a measurement."""
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            target()
        except BaseException as exc:  # asserted by the caller, KeyboardInterrupt included
            outcome.append(exc)

    runner = threading.Thread(target=call, daemon=True)
    runner.start()
    join_patiently(runner)
    assert not runner.is_alive(), "the interrupted run kept waiting for a step that had ended"
    return outcome


def test_schedule__an_interrupt_just_after_a_result_was_taken_still_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signal lands between the queue's get and the bookkeeping of what it returned (a
    step that just ended): waiting for the steps in flight must not wait for that result
    again (it waited forever: the result was gone)."""

    class InterruptedAfterTheFirstGet(queue.Queue):  # type: ignore[type-arg]
        taken = 0

        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            item = super().get(block, timeout)
            type(self).taken += 1
            if type(self).taken == 1:
                raise KeyboardInterrupt
            return item

    monkeypatch.setattr(queue, "Queue", InterruptedAfterTheFirstGet)
    cancel = threading.Event()

    def run(key: str) -> None:
        if key == "waiting" and wait_patiently(cancel):
            raise Cancelled

    outcome = _ended(lambda: run_when_ready(["quick", "waiting"], {}, run, cancel=cancel))
    assert [type(exc) for exc in outcome] == [KeyboardInterrupt]


def test_schedule__an_interrupt_while_a_step_is_being_started_still_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signal lands while a step's thread is being started, before it runs: the step
    never begins, and the wait for the steps in flight does not wait for it (it waited
    forever)."""
    real_start = threading.Thread.start
    cancel = threading.Event()

    def start(thread: threading.Thread) -> None:
        if thread.name.startswith("apply-step") and thread.name != "apply-step-1":
            raise KeyboardInterrupt
        real_start(thread)

    def run(key: str) -> None:
        if wait_patiently(cancel):
            raise Cancelled

    monkeypatch.setattr(threading.Thread, "start", start)
    outcome = _ended(lambda: run_when_ready(["first", "second"], {}, run, cancel=cancel))
    assert [type(exc) for exc in outcome] == [KeyboardInterrupt]


def test_schedule__failures_before_an_interrupt_are_reported_not_lost() -> None:
    """A step failed, then a real SIGINT came while another was still in flight: the
    interrupt is raised, and the failure is reported (it was dropped: the user saw only
    "interrupted", never why the up had failed)."""
    script = textwrap.dedent(
        """
        import os, signal, threading
        from infra.applier.schedule import Cancelled, run_when_ready
        from tests.support.patient import wait_patiently

        cancel = threading.Event()
        failed = threading.Event()
        reported = []

        def run(key):
            if key == "bad":
                failed.set()
                raise ValueError("the cause")
            wait_patiently(failed)
            os.kill(os.getpid(), signal.SIGINT)
            if wait_patiently(cancel):
                raise Cancelled

        try:
            run_when_ready(
                ["bad", "slow"], {}, run, cancel=cancel,
                also_failed=lambda exc: reported.append(str(exc)),
            )
        except KeyboardInterrupt:
            print("interrupted, reported:", reported)
        """
    )
    done = _interrupted_process(script, timeout_s=60)
    assert done.stdout.strip() == "interrupted, reported: ['the cause']"
