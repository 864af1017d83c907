"""A command run with a Python that lacks the project's packages is refused in one line.

Found following README as a new operator (docs pass, stack u10): `python3 -m infra.apply plan
--stack u10` with the system's interpreter ended in a ModuleNotFoundError traceback ('pulumi'
from infra/render.py; 'grpc' for policies.check, 'dill' for infra.preview). `-S` gives the
same interpreter without its site-packages: the project's code, none of its packages.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.interpreter import missing_modules, the_command_again

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv",
    [
        ["infra.apply", "plan", "--stack", "dev"],
        ["infra.preview", "--stack", "dev"],
        ["policies.check", "--stack", "dev"],
        ["infra.stack_config", "get", "--stack", "dev", "appMemoryMb"],
    ],
    ids=lambda argv: argv[0],
)
def test_without_the_project_packages__one_line_naming_the_virtualenv_command(
    argv: list[str],
) -> None:
    done = subprocess.run(
        [sys.executable, "-S", "-m", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONSAFEPATH": ""},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"{argv[0]}: error: "), done.stderr
    assert f"`.venv/bin/python -m {' '.join(argv)}`" in done.stderr, done.stderr
    assert done.stdout == ""


def test_the_virtualenv_has_them_all() -> None:
    assert missing_modules() == []


def test_the_command_again__quotes_what_a_shell_would_split() -> None:
    argv = ["python3", "-m", "infra.apply", "up", "--stack", "a b"]
    assert the_command_again(argv) == ".venv/bin/python -m infra.apply up --stack 'a b'"
