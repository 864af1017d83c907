"""Ctrl-C during a script: one line naming the way on, never a traceback or a failure that is
not one. scripts/lib.sh `on_interrupt` says the line; the Python commands the scripts run end
silently by the signal (infra/cli.py `exit_with`), so the script's shell sees the interrupt."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT

LIB = REPO_ROOT / "scripts" / "lib.sh"

# A command that, interrupted, says its own line and exits 3, as `infra.apply up` does: the
# script's `|| die` would read that as the command failing. It writes `started` inside its
# `try`, so the signal is sent only once it can be caught there.
_CHILD = """
import sys, time
from pathlib import Path
try:
    Path(sys.argv[1]).write_text("yes")
    time.sleep(60)
except KeyboardInterrupt:
    print("child: error: interrupted; state saved", file=sys.stderr)
    sys.exit(3)
"""


def _script(path: Path, tag: str, way_on: str, body: str) -> Path:
    path.write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        f'LOG_TAG={tag}\nsource "{LIB}"\non_interrupt "{way_on}"\n{body}\n'
    )
    path.chmod(0o755)
    return path


def _child(tmp_path: Path, source: str = _CHILD) -> tuple[str, Path]:
    """The shell words that run the stand-in command, and the file it writes once started."""
    child = tmp_path / "child.py"
    child.write_text(source)
    started = tmp_path / "started"
    return f'"{sys.executable}" "{child}" "{started}"', started


def _interrupt_when_started(
    argv: list[str],
    started: Path,
    signum: int = signal.SIGINT,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` as a terminal's foreground job (a process group of its own) and send its
    group `signum` (SIGINT: what Ctrl-C does) once `started` exists."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "SECURE_REDIS_INTERRUPT_SAYER"}
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    ) as proc:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.02)
        os.killpg(proc.pid, signum)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_on_interrupt__one_line_with_the_way_on_not_the_commands_failure(tmp_path: Path) -> None:
    command, started = _child(tmp_path)
    script = _script(
        tmp_path / "run.sh",
        "rotate",
        "run it again",
        f'{command} || die "the command failed"\necho after',
    )
    done = _interrupt_when_started([str(script)], started)
    assert done.returncode == 130
    assert done.stdout == "", "the script went on after the interrupt"
    assert done.stderr.splitlines() == [
        "child: error: interrupted; state saved",
        "rotate: error: interrupted; run it again",
    ]


def test_on_interrupt__a_script_run_by_another_leaves_the_line_to_the_outer(
    tmp_path: Path,
) -> None:
    """setup-secure-redis.sh runs pulumi-deploy.sh; the e2e suite runs rotate.sh: one line."""
    command, started = _child(tmp_path)
    inner = _script(tmp_path / "inner.sh", "inner", "inner way", command)
    outer = _script(tmp_path / "outer.sh", "setup", "outer way", f'"{inner}" || die "failed"')
    done = _interrupt_when_started([str(outer)], started)
    assert done.returncode == 130
    assert done.stderr.splitlines()[-1] == "setup: error: interrupted; outer way"
    assert "inner" not in done.stderr


def test_on_interrupt__sigterm_is_one_line_and_143(tmp_path: Path) -> None:
    silent = "import sys, time, pathlib; pathlib.Path(sys.argv[1]).write_text('y'); time.sleep(60)"
    command, started = _child(tmp_path, silent)
    script = _script(tmp_path / "run.sh", "teardown", "run it again", command)
    done = _interrupt_when_started([str(script)], started, signal.SIGTERM)
    assert done.returncode == 143
    assert done.stderr.splitlines()[-1] == "teardown: error: interrupted; run it again"


def test_on_interrupt__a_stale_sayer_in_the_environment_does_not_silence_the_script(
    tmp_path: Path,
) -> None:
    """A variable left by another shell names a process not in this job's group."""
    command, started = _child(tmp_path)
    script = _script(tmp_path / "run.sh", "rotate", "run it again", command)
    env = {**os.environ, "SECURE_REDIS_INTERRUPT_SAYER": f"{os.getpid()}:{os.getpgid(0)}"}
    done = _interrupt_when_started([str(script)], started, env=env)
    assert done.returncode == 130
    assert done.stderr.splitlines()[-1] == "rotate: error: interrupted; run it again"


def test_on_interrupt__a_script_in_a_session_of_its_own_says_it_itself(tmp_path: Path) -> None:
    """A test under setup --full runs rotate.sh with setsid: setup never gets that signal."""
    command, started = _child(tmp_path)
    inner = _script(tmp_path / "inner.sh", "rotate", "inner way", command)
    # As tests/e2e/interrupted.py starts rotate.sh: a session of its own, its group's id its pid.
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        "import subprocess, sys\n"
        "from pathlib import Path\n"
        "with open(sys.argv[3], 'w') as err:\n"
        "    p = subprocess.Popen([sys.argv[1]], start_new_session=True, stderr=err)\n"
        "    Path(sys.argv[2]).write_text(str(p.pid))\n"
        "    p.wait()\n"
    )
    group, said = tmp_path / "inner.group", tmp_path / "inner.err"
    outer = _script(
        tmp_path / "outer.sh",
        "setup",
        "outer way",
        f'"{sys.executable}" "{launcher}" "{inner}" "{group}" "{said}"',
    )
    with subprocess.Popen([str(outer)], start_new_session=True, stderr=subprocess.PIPE) as proc:
        deadline = time.monotonic() + 60
        while not (started.exists() and group.exists()):
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.02)
        os.killpg(int(group.read_text()), signal.SIGINT)
        _, outer_said = proc.communicate(timeout=60)
    assert said.read_text().splitlines()[-1] == "rotate: error: interrupted; inner way"
    assert b"outer way" not in outer_said, "the outer script was not interrupted"


# Every Python command scripts/*.sh run, read from the scripts, so a new one is covered.
# Not here: infra.apply says what it saved and exits 3 on purpose (tests/unit/
# test_applier_interrupt.py); bench.py and bench_goals.py are the benchmark's, not a step of a
# deploy or a rotation.
_OWN_LINE = {"infra.apply", "scripts/bench.py", "scripts/bench_goals.py"}


def _commands() -> list[str]:
    found: set[str] = set()
    for script in (REPO_ROOT / "scripts").glob("*.sh"):
        text = script.read_text(encoding="utf-8")
        found |= set(re.findall(r"-m ((?:infra|policies)\.[a-z_.]+)", text))
        found |= set(re.findall(r"\b(scripts/[a-z_]+\.py)\b", text))
    return sorted(found - _OWN_LINE)


# Runs the command as `python -m` (or as a script) would, with a real SIGINT sent to itself as
# its `main` (policies/check.py: `run`) begins: the KeyboardInterrupt is raised inside it.
_RUN_INTERRUPTED = """
import os, runpy, signal, sys
command = sys.argv[1]
def tracer(frame, event, arg):
    ours = frame.f_globals.get("__name__") == "__main__"
    if event == "call" and ours and frame.f_code.co_name in ("main", "run"):
        sys.settrace(None)
        os.kill(os.getpid(), signal.SIGINT)
    return None
sys.argv = [command]
sys.settrace(tracer)
if command.endswith(".py"):
    runpy.run_path(command, run_name="__main__")
else:
    runpy.run_module(command, run_name="__main__", alter_sys=True)
"""


def test_the_commands_read_from_the_scripts() -> None:
    assert {"infra.rotation_probe", "infra.stack_config", "scripts/stack_status.py"} <= set(
        _commands()
    )


@pytest.mark.parametrize("command", _commands())
def test_a_command_the_scripts_run__interrupted__ends_by_the_signal_without_a_word(
    command: str,
) -> None:
    """A 37-line traceback (infra/rotation_probe.py, in a snapshot) reached the middle of
    rotate.sh's output; ending by SIGINT itself lets the script's trap say the one line."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN_INTERRUPTED, command],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert done.stderr == ""
    assert done.returncode == -signal.SIGINT


# Loaded by site.py before `-m` runs (PYTHONPATH): a real SIGINT as runpy looks the command's
# module up, after its package's __init__ ran and before any of the command's own code.
_SITECUSTOMIZE = """
import os, signal, sys

class InterruptAtTheCommand:
    def find_spec(self, name, path=None, target=None):
        if name == sys.orig_argv[sys.orig_argv.index("-m") + 1]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, InterruptAtTheCommand())
"""


@pytest.mark.parametrize(
    "module", [c for c in _commands() if not c.endswith(".py")] + ["infra.apply"]
)
def test_a_command_interrupted_while_it_starts__ends_by_the_signal_without_a_word(
    module: str, tmp_path: Path
) -> None:
    """rotate.sh interrupted as an `infra.apply up` started: a traceback from typing.py, under
    infra/__init__.py (infra/quiet_start.py)."""
    (tmp_path / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    done = subprocess.run(
        [sys.executable, "-m", module],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=120,
        check=False,
    )
    assert done.stderr == ""
    assert done.returncode == -signal.SIGINT


def test_quiet_while_starting__leaves_another_interpreter_its_handler() -> None:
    """Only `python -m infra.X` / `policies.X`: this interpreter (pytest) imported infra/ too,
    as the Pulumi program's does (run as a script by the language host), and its Ctrl-C must
    stay a KeyboardInterrupt."""
    from infra import quiet_start  # noqa: PLC0415 - the module under test, already imported

    assert signal.getsignal(signal.SIGINT) is not quiet_start.end_by_the_signal
