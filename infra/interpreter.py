"""Refuse, in one line, an interpreter that lacks the project's packages.

README's commands read `python -m infra.apply ...`: run with a Python other than the
checkout's `.venv/bin/python` (the system's `python3`, say), they used to end in a
`ModuleNotFoundError` traceback from deep inside the program (`No module named 'pulumi'`,
`'grpc'`, `'dill'`). `infra/__init__.py` and `policies/__init__.py` call this first. It only
looks the modules up (`importlib.util.find_spec`, no import), so the operator commands that
never load Pulumi stay as light as `tests/unit/test_operator_imports.py` keeps them.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from typing import Final

from infra.quiet_start import running_module

# Top-level modules of pyproject.toml's dependencies that infra/ and policies/ import.
PROJECT_MODULES: Final = (
    "pulumi",
    "pulumi_docker",
    "pulumi_policy",
    "cryptography",
    "redis",
    "yaml",
    "docker",
    "jsonschema",
)
EXIT_USAGE: Final = 2  # README "Exit codes": bad input, nothing done


def missing_modules() -> list[str]:
    return [name for name in PROJECT_MODULES if importlib.util.find_spec(name) is None]


def the_command_again(argv: list[str]) -> str:
    """The command as typed, with the virtualenv's interpreter and without the other one's
    options (`python3 -I -m M ARGS` -> `.venv/bin/python -m M ARGS`)."""
    rest = argv[argv.index("-m") :] if "-m" in argv[:-1] else argv[1:]
    return shlex.join([".venv/bin/python", *rest])


def require_project_packages(package: str) -> None:
    missing = missing_modules()
    if not missing:
        return
    argv = sys.orig_argv
    # `python -m policies.check` names itself, not the package whose import found the gap.
    name = running_module() or package
    print(
        f"{name}: error: {sys.executable} does not have the project's packages "
        f"(no {', '.join(missing)}); run it with the checkout's virtualenv: "
        f"`{the_command_again(argv)}` (or `. .venv/bin/activate` first; "
        "`scripts/bootstrap.sh --python` makes .venv)",
        file=sys.stderr,
    )
    raise SystemExit(EXIT_USAGE)


__all__ = ["PROJECT_MODULES", "missing_modules", "require_project_packages", "the_command_again"]
