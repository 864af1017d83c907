"""The argument parser of the package's commands (`python -m secure_cache`, the console script
`secure-cache`, `python -m secure_cache.redis_exporter`): argparse, with a wrong argument
reported on one line (argparse prints its whole usage above the error) and exit code 2; and
`say`, how every command of the project prints to stdout (infra/cli.py re-exports it: the app
image carries no infra/)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Final, NoReturn, TextIO

EXIT_USAGE: Final = 2


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
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def say(text: str, *, end: str = "\n", file: TextIO | None = None) -> None:
    """`text` and `end` on stdout (or `file`), flushed. A reader that goes away
    (`python -m infra.firewall show --stack S | head -1`) stops the output, never the command:
    stdout then goes to /dev/null (`reader_gone`) and the command runs on to its own exit
    status, so an up or a rotation pass is never stopped halfway by its reader.
    Before (docs pass of 2026-12-03, stack s54), `infra.firewall show`,
    `infra.engine_report`, `infra.stack_config get` and `policies.strictness` ended in a
    BrokenPipeError traceback and exit 1; `infra.wheelhouse`, `infra.rotation_probe`, the
    build lock's `--help`, `secure_cache.redis_exporter scrape`, scripts/*.py and
    `tests.e2e.stacks` did until 2026-12-03 (tests/unit/test_cli_reader_gone.py)."""
    out = sys.stdout if file is None else file
    try:
        out.write(text + end)
        out.flush()
    except BrokenPipeError:
        if out is sys.stdout:
            reader_gone()


def reader_gone() -> None:
    """After a BrokenPipeError on stdout: point it at /dev/null, so that what is still
    printed, and Python's flush at exit, go nowhere instead of raising again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


__all__ = ["EXIT_USAGE", "OneLineParser", "reader_gone", "say"]
