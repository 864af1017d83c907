"""Under `python -m infra.X` or `policies.X`, a Ctrl-C before the command's main begins ends the
process silently by SIGINT, as it ends a Unix tool, instead of a KeyboardInterrupt traceback
from whichever import it fell in. The command's main puts Python's handler back (infra/cli.py
`exit_with`; infra/apply.py installs its own). A SIGINT inherited ignored, or any other
handler, is left as it is; so is any other interpreter (pytest, the Pulumi program).

Imported first by infra/__init__.py, and with `_signal`, the C module, rather than `signal`:
that one loads enum and functools, 4.7 ms of the 7 ms infra/__init__.py took to get here
(`python -X importtime`), and scripts/rotate.sh interrupted as an `infra.apply up` started
printed the traceback from enum.py, under infra/interpreter.py's imports.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # typeshed has stubs for `signal` only
import os
import sys


def end_by_the_signal(signum: int, _frame: object = None) -> None:
    """End this process by `signum` with its default action, as a Unix tool ends on it, so the
    calling shell sees the signal (infra/cli.py `exit_with` too)."""
    _signal.signal(signum, _signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def running_module() -> str:
    """The module this interpreter was started to run (`python -m NAME`), or ""."""
    argv = sys.orig_argv
    return argv[argv.index("-m") + 1] if "-m" in argv[:-1] else ""


def quiet_while_starting() -> None:
    if not running_module().startswith(("infra.", "policies.")):
        return
    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, end_by_the_signal)


def started() -> None:
    """Python's own SIGINT handler again, if `quiet_while_starting` replaced it: from here a
    Ctrl-C is a KeyboardInterrupt the command's `finally` blocks see."""
    if _signal.getsignal(_signal.SIGINT) is end_by_the_signal:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)


__all__ = ["end_by_the_signal", "quiet_while_starting", "running_module", "started"]
