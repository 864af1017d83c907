"""The operator's commands on a deployed stack as the e2e tests run them: `scripts/rotate.sh`,
one `up` of the local applier, and `python -m infra.stack_config`, each a subprocess of the
checkout (its interpreter, its stack files), the way docs/day2.md tells an operator to.

A failure message carries the last lines of what the command printed: rotate.sh and the
applier never print a secret (the token tests assert it of their output).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Final

from infra.settings import REPO_ROOT
from tests.e2e.stacks import Stack

# Bounds that only keep a broken stack from hanging the run (a busy 2-core machine: an up's
# render alone took up to a minute at load 30; `rotate.sh S data-key` runs two ups and the
# rotation pass).
UP_S: Final = 600.0
ROTATE_S: Final = 900.0
CONFIG_S: Final = 60.0
# How much of a failed command's output a failure message shows.
TAIL_CHARS: Final = 3000


def rotate_script(stack: Stack, kind: str) -> list[str]:
    """The argv of `scripts/rotate.sh S KIND`."""
    return [str(REPO_ROOT / "scripts" / "rotate.sh"), stack.name, kind]


def up_command(stack: Stack) -> list[str]:
    """The argv of one `up` of the stack by the local applier (run from the checkout)."""
    return [sys.executable, "-m", "infra.apply", "up", "--stack", stack.name]


def output(done: subprocess.CompletedProcess[str]) -> str:
    """What a command printed, its output and then its errors."""
    return done.stdout + done.stderr


def rotate(stack: Stack, kind: str) -> subprocess.CompletedProcess[str]:
    """`scripts/rotate.sh S KIND` run to its end, whatever its exit status."""
    return subprocess.run(
        rotate_script(stack, kind), capture_output=True, text=True, timeout=ROTATE_S, check=False
    )


def up(stack: Stack) -> subprocess.CompletedProcess[str]:
    """One `up` of the stack by the local applier, whatever its exit status."""
    return subprocess.run(
        up_command(stack), cwd=REPO_ROOT, capture_output=True, text=True, timeout=UP_S, check=False
    )


def succeeded(done: subprocess.CompletedProcess[str], what: str) -> str:
    """What the command printed, once it exited 0; a failure naming `what` otherwise."""
    said = output(done)
    assert done.returncode == 0, f"{what} exited {done.returncode}:\n{said[-TAIL_CHARS:]}"
    return said


def rotated(stack: Stack, kind: str) -> str:
    """`scripts/rotate.sh S KIND`, which must succeed; what it printed."""
    return succeeded(rotate(stack, kind), f"rotate.sh {stack.name} {kind}")


def applied(stack: Stack) -> str:
    """One `up` of the stack, which must succeed; what it printed."""
    return succeeded(up(stack), f"up of {stack.name}")


def config(stack: Stack, *words: str) -> str:
    """`python -m infra.stack_config WORDS[0] --stack S WORDS[1:]` (get, set); its output."""
    done = subprocess.run(
        [sys.executable, "-m", "infra.stack_config", *words[:1], "--stack", stack.name, *words[1:]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CONFIG_S,
        check=True,
    )
    return done.stdout.strip()
