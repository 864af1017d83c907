"""A stand-in for the `pulumi` CLI that also does what the CLI would do to this repository, for
the one part of scripts/rotate.sh that cannot run here (no Pulumi CLI can be installed).

Every invocation first goes through the recording stand-in of the policy tests
(tests/policy/pulumi_standin/pulumi): it checks the flags against the CLI's own command reference
and logs `{"argv", "error"}` as a JSON line to $PULUMI_STANDIN_LOG. Then this one acts:

    whoami --non-interactive      prints a user: the CLI is "logged in"
    config set --stack S secure-redis:KEY VALUE --non-interactive
                                  writes the value into Pulumi.S.yaml (infra/stack_config.py
                                  edits the file the way `pulumi config set` does)
    up ... --policy-pack policies --stack S
                                  checks the program against the policy pack, then deploys it:
                                  the project's own stand-ins for the engine do both
                                  (`python -m policies.check`, `python -m infra.apply up`)

$PULUMI_STANDIN_FAIL names one invocation to fail instead, as `config` or `up:N` (the Nth up,
counting from 1): it exits 255 with an error line, as the CLI does on a failed update.
Anything else exits 2: a command rotate.sh is not expected to run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

LOG_ENV: Final = "PULUMI_STANDIN_LOG"
FAIL_ENV: Final = "PULUMI_STANDIN_FAIL"
ROOT: Final = Path(__file__).resolve().parents[2]
RECORDER: Final = ROOT / "tests" / "policy" / "pulumi_standin" / "pulumi"
_NAMESPACE: Final = "secure-redis:"


def install(bin_dir: Path) -> Path:
    """Write the `pulumi` executable into `bin_dir` (put that first on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "pulumi"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    exe.chmod(0o755)
    return exe


def recorded(log: Path) -> list[dict[str, Any]]:
    """Every invocation so far, in order: {"argv": [...], "error": "" or why it is invalid}."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def _stack(argv: Sequence[str]) -> str:
    return argv[list(argv).index("--stack") + 1]


def _fails(what: str, log: Path) -> bool:
    wanted = os.environ.get(FAIL_ENV, "")
    if what == "config":
        return wanted == "config"
    ups = sum(1 for call in recorded(log) if call["argv"][:1] == ["up"])
    return wanted == f"up:{ups}"


def _python(*argv: str) -> int:
    # close_fds=False: scripts/rotate.sh hands its stack lock down as an inherited descriptor
    # (infra/applier/state.py, HELD_LOCK_ENV); closed here, the run's own `config set` and
    # `up` were refused as if another command held the lock.
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, check=False, close_fds=False
    ).returncode


def _act(argv: Sequence[str], log: Path) -> int:
    """What the real CLI would do to this repository (after the recorder accepted argv)."""
    if list(argv[:2]) == ["config", "set"]:
        if _fails("config", log):
            print("error: [stand-in] config set failed", file=sys.stderr)
            return 255
        key, value = argv[4].removeprefix(_NAMESPACE), argv[5]
        return _python("-m", "infra.stack_config", "set", "--stack", _stack(argv), key, value)
    if _fails("up", log):
        print("error: [stand-in] update failed", file=sys.stderr)
        return 255
    stack = _stack(argv)
    return _python("-m", "policies.check", "--stack", stack) or _python(
        "-m", "infra.apply", "up", "--stack", stack
    )


def main(argv: Sequence[str]) -> int:
    checked = subprocess.run([sys.executable, str(RECORDER), *argv], check=False)
    if checked.returncode != 0:
        return checked.returncode  # an undocumented command or flag; the recorder said which
    if list(argv[:1]) == ["whoami"]:
        return 0  # the recorder printed the user
    if list(argv[:2]) == ["config", "set"] or list(argv[:1]) == ["up"]:
        return _act(argv, Path(os.environ[LOG_ENV]))
    print(f"[stand-in] unexpected pulumi command: {' '.join(argv)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
