"""The stack's lock held for a whole scripts/rotate.sh run (infra/applier/state.py `hold`,
infra/rotation_lock.py): refused to every other up, down, rekey, setting change and rotation
of the stack, naming the rotation; handed down to the run's own commands; gone with the run,
killed or not.

Measured on s61 (2026-12-04, docs/day2.md "Two rotations, or an up, at once"): with each up
holding the lock for itself only, two `rotate.sh s61 certs` started together both raised
certRenewalGeneration to 1; one up applied it, the other was refused and put the setting back
to 0 below the state's 1, so the next plain up renewed every certificate again, unchecked.
The deployed sequence is `tests/e2e/test_e2e_day2_sequences.py`; these are the lock's rules
on a directory of their own, with real processes and real flocks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Final

import pytest

from infra.applier.state import HELD_LOCK_ENV, STATE_DIR, StateError, StateStore
from infra.stack_config import main as stack_config
from infra.stack_config import set_setting

ROTATION: Final = "scripts/rotate.sh dev certs"
REFUSED: Final = f"stack dev is being rotated by a running `{ROTATION}` (pid {os.getpid()}"
STACK_FILE: Final = "config:\n  secure-redis:environment: development\n"


@pytest.fixture
def rotating(tmp_path: Path) -> Iterator[int]:
    """A rotation of stack dev under tmp_path holds the lock (this process: its pid is the
    holder's); the descriptor that holds it."""
    fd = StateStore(tmp_path, "dev", environ={}).hold(ROTATION)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.mark.usefixtures("rotating")
@pytest.mark.parametrize("action", ["up", "down", "rekey"])
def test_hold__an_up_down_or_rekey_by_hand_is_refused_naming_the_rotation(
    tmp_path: Path, action: str
) -> None:
    with (
        pytest.raises(StateError) as refused,
        StateStore(tmp_path, "dev", environ={}).locked(action),
    ):
        pytest.fail(f"{action} took the lock a rotation holds")
    said = str(refused.value)
    assert REFUSED in said
    assert f"Run {action} again once that rotation has finished" in said
    assert "nothing was changed" in said
    assert f"`{ROTATION}` run again finishes what it left half done" in said


@pytest.mark.usefixtures("rotating")
def test_hold__a_second_rotation_is_refused_naming_the_first(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"being rotated by a running `scripts/rotate\.sh dev"):
        StateStore(tmp_path, "dev", environ={}).hold("scripts/rotate.sh dev passwords")
    with StateStore(tmp_path, "prod", environ={}).locked("up"):
        pass  # another stack is independent


def test_hold__handed_down_the_runs_own_ups_and_looks_pass_and_keep_its_record(
    tmp_path: Path, rotating: int
) -> None:
    store = StateStore(tmp_path, "dev", environ={})
    own = StateStore(tmp_path, "dev", environ={HELD_LOCK_ENV: store.held(rotating)})
    lock = tmp_path / STATE_DIR / "dev.lock"
    record = lock.read_bytes()
    assert json.loads(record)["command"] == ROTATION
    with own.locked("up"):
        assert own.busy("scripts/rotate.sh dev") is None, "its own look is not refused"
    assert lock.read_bytes() == record, "the up under the rotation left the run's record"
    said = store.busy("scripts/rotate.sh dev")
    assert said is not None
    assert REFUSED in said, "a look from outside the run is refused"


@pytest.mark.usefixtures("rotating")
def test_hold__a_variable_set_by_hand_hands_nothing_down(tmp_path: Path) -> None:
    """Only the very descriptor that holds the lock hands it down: a variable naming another
    file's descriptor, a closed one, or another stack's, takes the lock as usual (refused)."""
    with (tmp_path / "other").open("w") as other:
        for value in (f"dev:{other.fileno()}", "dev:999", "dev:x", f"prod:{other.fileno()}"):
            store = StateStore(tmp_path, "dev", environ={HELD_LOCK_ENV: value})
            with pytest.raises(StateError, match="being rotated"), store.locked("up"):
                pytest.fail(f"{value} handed the lock down")
    # A second open of the lock file itself is another open file: flock tells them apart.
    reopened = os.open(tmp_path / STATE_DIR / "dev.lock", os.O_RDONLY)
    try:
        store = StateStore(tmp_path, "dev", environ={HELD_LOCK_ENV: f"dev:{reopened}"})
        with pytest.raises(StateError, match="being rotated"), store.locked("up"):
            pytest.fail("a fresh descriptor of the lock file handed the lock down")
    finally:
        os.close(reopened)


def test_busy__rotation_only_ignores_a_plain_up_and_names_a_rotation(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "dev", environ={})
    with store.locked("up"):
        assert store.busy("set", rotation_only=True) is None
        assert store.busy("set") is not None
    fd = store.hold(ROTATION)
    try:
        said = store.busy("set", rotation_only=True)
    finally:
        os.close(fd)
    assert said is not None
    assert REFUSED in said


@pytest.mark.usefixtures("rotating")
def test_stack_config_set__refused_during_a_rotation_and_the_file_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its next up would apply the change: during a data-key pass an up by hand took a new
    `redisMaxmemoryMb`, replaced Redis and left the retire undone (s61, 2026-12-04)."""
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_FILE)
    argv = ["set", "--stack", "dev", "--project-dir", str(tmp_path), "redisMaxmemoryMb", "160"]
    assert stack_config(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert REFUSED in err
    assert "Run `python -m infra.stack_config set` again once that rotation" in err
    assert stack_file.read_text() == STACK_FILE


def test_stack_config_set__passes_while_a_plain_up_runs(tmp_path: Path) -> None:
    """An up read the file when it began; the next applies the change, as before."""
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(STACK_FILE)
    with StateStore(tmp_path, "dev", environ={}).locked("up"):
        set_setting("dev", "redisMaxmemoryMb", "160", tmp_path)
    assert "redisMaxmemoryMb: 160" in stack_file.read_text()


def _rotation_lock(
    tmp_path: Path, *command: str, output: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    """`python -m infra.rotation_lock` holding stack dev's lock for `command` (exec'd); its
    stdout and stderr go to `output`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.rotation_lock",
            "--stack",
            "dev",
            "--kind",
            "certs",
            "--project-dir",
            str(tmp_path),
            "--",
            *command,
        ],
        stdout=output,
        stderr=output,
        text=True,
        start_new_session=True,
    )


def test_rotation_lock__the_command_holds_it_under_the_recorded_pid_and_a_kill_lets_go(
    tmp_path: Path,
) -> None:
    """exec keeps the pid, so the refusal names the process to wait for or stop; SIGKILL of
    the whole run (no exit trap runs) leaves the lock free for the next up: nothing to clear
    by hand after a crash."""
    # The command says it runs, with the variable it was handed, then waits to be killed.
    run = _rotation_lock(tmp_path, "sh", "-c", f'echo "${HELD_LOCK_ENV}"; exec sleep 600')
    try:
        assert run.stdout is not None
        handed = run.stdout.readline().strip()
        assert handed.startswith("dev:"), handed
        with (
            pytest.raises(StateError) as refused,
            StateStore(tmp_path, "dev", environ={}).locked("up"),
        ):
            pytest.fail("an up took the lock the rotation holds")
        assert f"`{ROTATION}` (pid {run.pid}," in str(refused.value)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate()
    with StateStore(tmp_path, "dev", environ={}).locked("up"):
        pass


def test_rotation_lock__refused_is_one_line_exit_1_and_the_command_never_runs(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    with StateStore(tmp_path, "dev", environ={}).locked("up"):
        run = _rotation_lock(tmp_path, "touch", str(marker))
        out, err = run.communicate(timeout=60)
    assert run.returncode == 1, err
    assert err.count("\n") == 1, err
    assert err.startswith("rotate: error: the state of stack dev is locked by a running `up`")
    assert f"Run {ROTATION} again once that up has finished" in err
    assert not marker.exists()
    assert out == ""


def test_rotation_lock__a_rerun_waits_for_what_an_interrupted_run_left_holding_the_lock(
    tmp_path: Path,
) -> None:
    """CI, 2026-12-04: `rotate.sh prod data-key` stopped by SIGTERM to its group, then run
    again at once, was refused ("locked by another process"): the `docker start --attach` it
    had started passes the signal to the rotation pass and waits for its container, holding the
    inherited lock a little longer. The rerun now waits for such processes (the record names a
    rotation that has ended), says so, then runs."""
    # rotate.sh ends at once; what it started keeps the lock's descriptor a moment longer.
    first = _rotation_lock(tmp_path, "sh", "-c", "sleep 3 & exit 0", output=subprocess.DEVNULL)
    assert first.wait(timeout=60) == 0
    try:
        rerun = _rotation_lock(tmp_path, "echo", "ran")
        out, err = rerun.communicate(timeout=60)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
    assert rerun.returncode == 0, err
    assert out == "ran\n"
    assert "the processes an interrupted rotation of stack dev started still hold" in err


def test_rotation_lock__interrupted_while_it_waits__one_line_and_the_command_never_runs(
    tmp_path: Path,
) -> None:
    """rotate.sh has exec'd into the lock's wait: its shell trap is gone, so the line is the
    wait's own (scripts/lib.sh on_interrupt says it everywhere else)."""
    first = _rotation_lock(tmp_path, "sh", "-c", "sleep 30 & exit 0", output=subprocess.DEVNULL)
    assert first.wait(timeout=60) == 0
    marker = tmp_path / "ran"
    try:
        rerun = _rotation_lock(tmp_path, "touch", str(marker))
        assert rerun.stderr is not None
        waiting = rerun.stderr.readline()
        assert "still hold its lock; waiting" in waiting, waiting
        os.killpg(rerun.pid, signal.SIGINT)
        _, err = rerun.communicate(timeout=60)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
    assert rerun.returncode == -signal.SIGINT
    assert err.splitlines() == [
        f"rotate: error: interrupted while waiting for stack dev's lock; nothing was changed: "
        f"run {ROTATION} again"
    ]
    assert not marker.exists()


def test_rotation_lock__a_rotation_still_running_is_not_waited_for(tmp_path: Path) -> None:
    """Only an ended rotation's processes are waited for: a live one is refused at once."""
    fd = StateStore(tmp_path, "dev", environ={}).hold(ROTATION)
    try:
        rerun = _rotation_lock(tmp_path, "echo", "ran")
        out, err = rerun.communicate(timeout=60)
    finally:
        os.close(fd)
    assert rerun.returncode == 1
    assert out == ""
    assert "waiting" not in err
    assert REFUSED in err
