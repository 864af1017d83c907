"""The argument parser of the package's commands (`python -m secure_cache`, the console script
`secure-cache`, `python -m secure_cache.redis_exporter`): argparse, with a wrong argument
reported on one line (argparse prints its whole usage above the error) and exit code 2."""

from __future__ import annotations

import argparse
from typing import Any, Final, NoReturn

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


__all__ = ["EXIT_USAGE", "OneLineParser"]
