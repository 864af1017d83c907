"""The argument parser of the project's commands (`python -m infra.apply`, `infra.preview`,
`infra.firewall`, `infra.stack_config`, `infra.engine_report`, `policies.check`,
`policies.strictness`): argparse, with a wrong argument reported on one line that points at
`--help` (argparse prints its whole usage above the error) and exit code 2, as argparse's own;
and every later failure in the same form, `prog: error: what; how to fix` (`report`).
The app's commands have their own (app/secure_cache/cli_parser.py): the app image carries no
infra/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn


class _StoreOnce(argparse._StoreAction):  # argparse's default "store" action
    """An option given twice with two values is refused, not "the last one wins": a history
    line with `--stack other` appended would otherwise act on the other stack. The values
    are not shown (one may carry a password, as a URL can)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given: dict[str, Any] | None = getattr(parser, "given_once", None)
        if option_string is not None and given is not None:
            if self.dest in given and given[self.dest] != values:
                parser.error(
                    f"{'/'.join(self.option_strings)} is given twice with different values; "
                    "give it once"
                )
            given[self.dest] = values
        super().__call__(parser, namespace, values, option_string)


class OneLineParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)
        self.given_once: dict[str, Any] = {}

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self.given_once = {}
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")

    def report(self, message: str, *, level: str = "error") -> None:
        """One line on stderr naming the program, for a failure after the arguments were read
        (the message says what is wrong and how to fix it)."""
        print(f"{self.prog}: {level}: {one_line(message)}", file=sys.stderr)


def one_line(message: str) -> str:
    """`message` as one printable line: a newline or an escape sequence that came with an
    input (a policy config naming `"x\\u001b[2J"`) is shown escaped, never sent to the
    terminal raw (as app/secure_cache/errors.py does for the app's messages)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


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


__all__ = ["OneLineParser", "one_line", "project_dir"]
