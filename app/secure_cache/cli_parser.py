"""The argument parser of the package's commands (`python -m secure_cache`, the console script
`secure-cache`, `python -m secure_cache.redis_exporter`): argparse, with a wrong argument
reported on one line (argparse prints its whole usage above the error) and exit code 2."""

from __future__ import annotations

import argparse
from typing import Final, NoReturn

EXIT_USAGE: Final = 2


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


__all__ = ["EXIT_USAGE", "OneLineParser"]
