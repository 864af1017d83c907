"""The argument parser of the project's commands (`python -m infra.apply`, `infra.preview`,
`infra.firewall`, `infra.stack_config`, `infra.engine_report`, `policies.check`,
`policies.strictness`): argparse, with a wrong argument reported on one line that points at
`--help` (argparse prints its whole usage above the error) and exit code 2, as argparse's own;
and every later failure in the same form, `prog: error: what; how to fix` (`report`); and
`say`/`reader_gone` (secure_cache.cli_parser's), the one way every command prints to stdout.

It is the app's parser (app/secure_cache/cli_parser.py: one line, exit 2, an option given twice
with two values refused) with this error line and `report`. The dependency goes this way only:
the app image carries no infra/, while every interpreter that runs infra/ (the checkout's
virtualenvs, which the Pulumi program and the policy pack also use) has app/ on sys.path
(scripts/bootstrap.sh writes both directories into its `secure-redis.pth`). Importing
`secure_cache.cli_parser` loads argparse only: the package's own names load lazily
(app/secure_cache/__init__.py).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from infra.quiet_start import end_by_the_signal, started
from secure_cache.cli_parser import EXIT_USAGE, reader_gone, say
from secure_cache.cli_parser import OneLineParser as _AppParser
from secure_cache.errors import one_line


class OneLineParser(_AppParser):
    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n"
        )

    def report(self, message: str, *, level: str = "error") -> None:
        """One line on stderr naming the program, for a failure after the arguments were read
        (the message says what is wrong and how to fix it). Escaped (`printable`): a newline
        or an escape sequence that came with an input (a policy config naming
        `"x\\u001b[2J"`) is never sent to the terminal raw."""
        print(f"{self.prog}: {level}: {printable(message)}", file=sys.stderr)


def exit_with(main: Callable[[], int | None]) -> NoReturn:
    """`sys.exit(main())` for a command the scripts run, with Ctrl-C ending it as it ends a
    Unix tool: silently (after `main`'s own `finally` blocks ran) and by SIGINT itself, so the
    calling script's shell sees an interrupt and its trap says the one line with the way on
    (scripts/lib.sh, on_interrupt). A KeyboardInterrupt printed a 37-line traceback in the
    middle of scripts/rotate.sh, and an exit code of its own would have read to the script as
    the command failing ("the local applier failed")."""
    started()
    try:
        code = main()
    except KeyboardInterrupt:
        with contextlib.suppress(OSError, ValueError):  # output the reader may have left
            sys.stdout.flush()
        end_by_the_signal(signal.SIGINT)
        code = 128 + signal.SIGINT  # only where SIGINT is blocked: the shell's own code for it
    sys.exit(code)


def project_dir(text: str) -> Path:
    """A --project-dir value. An empty one (`--project-dir "$DIR"` with DIR unset) was the
    current directory, where leaving the option out means this checkout; a file was "no
    Pulumi.S.yaml in it"."""
    if not text:
        raise argparse.ArgumentTypeError(
            "is empty; give the checkout's directory, or leave the option out for this one"
        )
    if not text.isprintable():
        # Every line that names the directory sent an escape sequence in it to the terminal
        # raw, and a name that is not UTF-8 ended `apply down` in UnicodeEncodeError where
        # stdout is strict UTF-8 (an en_US.UTF-8 locale).
        raise argparse.ArgumentTypeError(
            f"{text[:200]!r} holds a control character or bytes that are not UTF-8; rename "
            "the checkout's directory, or leave the option out when the command is that "
            "checkout's own (it means that checkout then)"
        )
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a directory; give the checkout that holds Pulumi.<stack>.yaml"
        )
    return path


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` a container wrote (an exec's output, its log) with every character that is not
    printable written as its escape (`\\x1b`), newlines kept when `keep_newlines`: the
    operator's terminal shows it, where a taken-over container's escapes would set a title,
    clear the screen or write the clipboard (attack pass of 2026-12-03,
    docs/attack-surface.md). The app's escaping (secure_cache.errors `one_line`);
    scripts/status.sh does the same for its warnings."""
    if keep_newlines:
        return "\n".join(one_line(line) for line in text.split("\n"))
    return one_line(text)


__all__ = ["OneLineParser", "exit_with", "printable", "project_dir", "reader_gone", "say"]
