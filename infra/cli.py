"""The argument parser of the project's commands (`python -m infra.apply`, `infra.preview`,
`infra.firewall`, `infra.stack_config`, `infra.engine_report`, `policies.check`,
`policies.strictness`): argparse, with a wrong argument reported on one line that points at
`--help` (argparse prints its whole usage above the error) and exit code 2, as argparse's own.
The app's commands have their own (app/secure_cache/cli_parser.py): the app image carries no
infra/."""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


__all__ = ["OneLineParser"]
