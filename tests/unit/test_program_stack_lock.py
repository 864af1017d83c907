"""The Pulumi program (infra/__main__.py) refuses `pulumi up` while another command holds the
stack's lock (infra/stack.py `require_stack_unlocked`): a scripts/rotate.sh run between two
of its ups, or the local applier's up, down or rekey. Before, only the local applier and the
repository's scripts knew of the lock, and a `pulumi up` by hand in the middle of a rotation
applied what the rotation had set so far (docs/day2.md, "Two rotations, or an up, at once").

The rotation's own `pulumi up` passes: it runs below the rotation's process, with the
rotation's variable, whether or not the Pulumi CLI and its language host pass the lock's
descriptor on to the program (here: closed before the check). Run under Pulumi's mock runtime,
`preview` as the engine sets it for `pulumi up` (False) and `pulumi preview` (True); the
holders are real processes with real flocks.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pulumi
import pytest

from infra.applier.state import HELD_LOCK_ENV, STATE_DIR, StateStore, _ancestors
from infra.settings import REPO_ROOT
from infra.stack import require_stack_unlocked

ROTATION: Final = "scripts/rotate.sh dev certs"


class _Nothing(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        raise AssertionError(f"{args.name} was declared before the check")

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> None:
    pulumi.runtime.set_mocks(_Nothing(), project="secure-redis", stack="dev", preview=request.param)


def _rotation_lock(tmp_path: Path, *command: str) -> subprocess.Popen[str]:
    """`python -m infra.rotation_lock` holding stack dev's lock while it runs `command`."""
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
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        start_new_session=True,
    )


@pytest.fixture
def another_rotation(tmp_path: Path) -> Iterator[int]:
    """A rotation of stack dev that is no ancestor of this process holds the lock; its pid."""
    run = _rotation_lock(tmp_path, "sh", "-c", f'echo "${HELD_LOCK_ENV}"; exec sleep 600')
    assert run.stdout is not None
    assert run.stdout.readline().startswith("dev:")
    yield run.pid
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate()


@pytest.mark.parametrize("engine", [False], indirect=True)
@pytest.mark.usefixtures("engine")
def test_up__refused_in_one_line_while_a_rotation_holds_the_stack(
    tmp_path: Path, another_rotation: int
) -> None:
    with pytest.raises(pulumi.RunError) as refused:
        require_stack_unlocked("dev", tmp_path)
    line = str(refused.value)
    assert f"stack dev is being rotated by a running `{ROTATION}` (pid {another_rotation}," in line
    assert "nothing was changed. Run `pulumi up` again once that rotation has finished" in line
    assert "\n" not in line


@pytest.mark.parametrize("engine", [False], indirect=True)
@pytest.mark.usefixtures("engine")
def test_up__refused_while_the_local_applier_s_up_holds_the_stack(tmp_path: Path) -> None:
    with (
        StateStore(tmp_path, "dev", environ={}).locked("up"),
        pytest.raises(pulumi.RunError, match="locked by a running `up` \\(pid "),
    ):
        require_stack_unlocked("dev", tmp_path)


@pytest.mark.parametrize("engine", [False], indirect=True)
@pytest.mark.usefixtures("engine", "another_rotation")
def test_up__the_rotation_s_variable_set_by_hand_hands_nothing_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a process the rotation started runs on its behalf: the variable alone does not."""
    monkeypatch.setenv(HELD_LOCK_ENV, "dev:3")
    with pytest.raises(pulumi.RunError, match="is being rotated by a running"):
        require_stack_unlocked("dev", tmp_path)


@pytest.mark.parametrize("engine", [False], indirect=True)
@pytest.mark.usefixtures("engine")
def test_up__refused_while_what_a_killed_rotation_started_holds_the_stack(
    tmp_path: Path,
) -> None:
    """rotate.sh killed while the up it started runs on: that up holds the lock, and the
    record names a pid that has ended. The kernel's lock table says it is held."""
    first = _rotation_lock(tmp_path, "sh", "-c", "exec 1>&- 2>&-; sleep 30 & exit 0")
    try:
        assert first.wait(timeout=60) == 0
        with pytest.raises(pulumi.RunError, match="another process \\(it recorded no holder"):
            require_stack_unlocked("dev", tmp_path)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate()
    # The sleep lets the lock go once it has died, a moment after the signal.
    lock = os.open(tmp_path / STATE_DIR / "dev.lock", os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.close(lock)
    require_stack_unlocked("dev", tmp_path)


def test_ancestors__reach_the_first_process() -> None:
    """rotate.sh may be pid 1 (a container's command): its descendants must find it."""
    ancestors = _ancestors()
    assert os.getppid() in ancestors
    assert 1 in ancestors


@pytest.mark.parametrize("engine", [True], indirect=True)
@pytest.mark.usefixtures("engine", "another_rotation")
def test_preview__warns_with_the_words_up_would_stop_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_a, **_k: warned.append(message))
    require_stack_unlocked("dev", tmp_path)
    assert len(warned) == 1
    assert warned[0].startswith("pulumi up would stop here: stack dev is being rotated by ")


@pytest.mark.parametrize("engine", [False], indirect=True)
@pytest.mark.usefixtures("engine")
def test_up__passes_when_no_command_holds_the_stack(tmp_path: Path) -> None:
    require_stack_unlocked("dev", tmp_path)  # no lock file yet
    with StateStore(tmp_path, "dev", environ={}).locked("up"):
        pass
    require_stack_unlocked("dev", tmp_path)  # the file stays; nobody holds it


def test_up__run_by_the_rotation_itself_passes_without_the_lock_s_descriptor(
    tmp_path: Path,
) -> None:
    """rotate.sh (the holder, exec'd by infra.rotation_lock) runs `pulumi up`, whose program
    is its descendant: the check passes though the descriptor was closed on the way."""
    program = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        import pulumi
        from infra.stack import require_stack_unlocked

        class Nothing(pulumi.runtime.Mocks):
            def new_resource(self, args):
                raise AssertionError(args.name)

            def call(self, args):
                return {{}}, []

        os.close(int(os.environ["{HELD_LOCK_ENV}"].rpartition(":")[2]))
        pulumi.runtime.set_mocks(Nothing(), "secure-redis", "dev", preview=False)
        try:
            require_stack_unlocked("dev", Path(sys.argv[1]))
        except pulumi.RunError as exc:
            sys.exit(f"refused: {{exc}}")
        print("declared")
        """
    )
    # `; exit $?`: the shell stays the holder, the program its child (no tail exec).
    script = f'"{sys.executable}" -c "$0" "$1"; exit $?'
    run = _rotation_lock(tmp_path, "sh", "-c", script, program, str(tmp_path))
    out, err = run.communicate(timeout=120)
    assert (run.returncode, out) == (0, "declared\n"), err


def test_program__checks_the_lock_before_it_builds_the_stack() -> None:
    """infra/__main__.py runs only under the engine (it exits outside one): the call sits
    before build_stack, which declares the first resource."""
    program = (REPO_ROOT / "infra" / "__main__.py").read_text()
    assert program.index("require_stack_unlocked(settings.stack)") < program.index(
        "build_stack(settings)"
    )
