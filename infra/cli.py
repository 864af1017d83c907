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
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def report(self, message: str, *, level: str = "error") -> None:
        """One line on stderr naming the program, for a failure after the arguments were read
        (the message says what is wrong and how to fix it)."""
        print(f"{self.prog}: {level}: {message}", file=sys.stderr)


__all__ = ["OneLineParser"]
