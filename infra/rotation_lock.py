"""`python -m infra.rotation_lock --stack S --kind KIND -- COMMAND...`: take stack S's lock for
a whole scripts/rotate.sh run, then exec COMMAND (rotate.sh itself) holding it.

A rotation is several steps (looks, settings raised, ups, the rotation pass, an AOF rewrite),
and each `up` held the lock only for itself: between them another operator's `up`, `down`,
setting change or second rotation ran. Two `rotate.sh S certs` at once both raised the
generation, one `up` took it and the other, refused, put the setting back below what the state
had applied, so the next plain `up` renewed every certificate again, unchecked; an `up` by
hand during a data-key pass replaced Redis and left the retire half done (s61, 2026-12-04:
docs/day2.md, "Two rotations, or an up, at once"). Held for the whole run, the lock refuses
them, naming the rotation (infra/applier/state.py `hold`, the one lock the applier's `up`,
`down` and `rekey` take too); the run's own commands inherit it.

exec keeps the pid: the one recorded as the holder is rotate.sh's own, so the refusal names
the process to wait for or stop. Refused: one line, exit 1 (rotate.sh's `die`), nothing
changed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from infra.applier.state import HELD_LOCK_ENV, StateError, StateStore
from infra.cli import OneLineParser, exit_with, project_dir
from infra.settings import REPO_ROOT


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m infra.rotation_lock",
        description="Hold a stack's lock for a whole scripts/rotate.sh run: exec COMMAND with "
        "it (its ups, settings and looks pass; any other up, down, rekey, setting change or "
        "rotation of the stack is refused, naming it).",
    )
    parser.add_argument("--stack", required=True)
    parser.add_argument("--kind", required=True, help="the rotation, for the holder's record")
    parser.add_argument(
        "--project-dir", type=project_dir, default=REPO_ROOT, help="where .secure-redis/ is"
    )
    parser.add_argument("command", nargs="+", help="what to exec holding the lock")
    args = parser.parse_args(argv)
    store = StateStore(args.project_dir, args.stack)
    rotation = f"scripts/rotate.sh {args.stack} {args.kind}"
    try:
        fd = store.hold(rotation, waiting=lambda why: print(f"rotate: {why}", file=sys.stderr))
    except StateError as exc:
        print(f"rotate: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # rotate.sh has exec'd this process, so its trap (scripts/lib.sh on_interrupt) is gone:
        # the line is said here, unless a script around it, which the same Ctrl-C reaches, says
        # its own.
        if not _outer_says():
            print(
                f"rotate: error: interrupted while waiting for stack {args.stack}'s lock; "
                f"nothing was changed: run {rotation} again",
                file=sys.stderr,
            )
        raise
    return _exec_holding(args.command, store.held(fd))


def _outer_says() -> bool:
    """Whether another script in this process group says the interrupt's line: the rule of
    scripts/lib.sh `on_interrupt`, whose SECURE_REDIS_INTERRUPT_SAYER is `pid:group`."""
    pid, _, group = os.environ.get("SECURE_REDIS_INTERRUPT_SAYER", "").partition(":")
    return group == str(os.getpgid(0)) and pid != str(os.getpid())


def _exec_holding(command: list[str], held: str) -> NoReturn:
    """Become `command` (no shell: rotate.sh's own path and arguments), the lock handed down."""
    os.execvpe(command[0], command, {**os.environ, HELD_LOCK_ENV: held})  # noqa: S606


if __name__ == "__main__":
    exit_with(main)
