"""What README.md tells a new user to run exists and explains itself.

Each `scripts/*.sh` answers `-h`/`--help` with its usage on stdout and exit 0, and does nothing
else: the scripts run from a copy of scripts/ in a temporary directory (no virtualenv, no
stack files, as in tests/unit/test_script_arguments.py), so one that went on past `--help`
could reach neither a real stack nor the checkout's files. Every `scripts/...` path and every
`python -m` command the README and docs/ name exists, and each command answers `--help`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT

pytestmark = pytest.mark.unit

SCRIPTS = REPO_ROOT / "scripts"
DOCS = (REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")))
LIBRARY = "lib.sh"  # sourced by the others, never run
RUNNABLE = sorted(p.name for p in SCRIPTS.glob("*.sh") if p.name != LIBRARY)
# `python -m infra` is the Pulumi program itself (it refuses to run outside an engine, exit 2,
# README "Exit codes") and `pulumi.policy` is Pulumi's own policy host: neither is a command.
NOT_COMMANDS = {"infra", "pulumi.policy"}


def _documented(pattern: str) -> set[str]:
    return {m for doc in DOCS for m in re.findall(pattern, doc.read_text(encoding="utf-8"))}


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    shutil.copytree(SCRIPTS, tmp_path / "scripts")
    return tmp_path


@pytest.mark.parametrize("option", ["-h", "--help"])
@pytest.mark.parametrize("script", RUNNABLE)
def test_script_help__prints_its_usage_and_does_nothing_else(
    sandbox: Path, script: str, option: str
) -> None:
    done = subprocess.run(
        [str(sandbox / "scripts" / script), option],
        capture_output=True, text=True, timeout=30, check=False, cwd=sandbox,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "nothing but the usage: no step ran"
    assert f"scripts/{script}" in done.stdout, "the usage shows how to call the script"
    assert "set -euo pipefail" not in done.stdout, "the usage ends where the code starts"


@pytest.mark.parametrize(
    ("script", "argv"),
    [
        ("bootstrap.sh", ["--x"]),
        ("bootstrap-base-image.sh", ["x"]),
        ("build-app-image.sh", ["--tag"]),  # bash's own `${2:?}` text, with a line number, before
        ("build-app-image.sh", ["--label"]),
        ("build-app-image.sh", ["--x"]),
        ("check-debian-python.sh", ["a", "b"]),
        ("lock.sh", ["x"]),
        ("pulumi-deploy.sh", []),
        ("rotate.sh", ["dev"]),
        ("setup-secure-redis.sh", ["--x"]),
        ("status.sh", ["a", "b"]),
        ("teardown.sh", ["a", "b"]),
    ],
)
def test_script_wrong_arguments__one_error_line_nothing_done(
    sandbox: Path, script: str, argv: list[str]
) -> None:
    done = subprocess.run(
        [str(sandbox / "scripts" / script), *argv],
        capture_output=True, text=True, timeout=30, check=False, cwd=sandbox,
    )  # fmt: skip
    assert done.returncode in (1, 2), done.stderr
    (line,) = done.stderr.splitlines()
    assert line.split(": ", 2)[1] == "error", "the `component: error: ...` line README names"
    assert "virtualenv" not in line


def test_lib_sh__is_a_library_not_a_command() -> None:
    """Run by hand, a sourced file without a shebang ran under sh and failed on bash syntax."""
    assert not os.access(SCRIPTS / LIBRARY, os.X_OK)


@pytest.mark.parametrize("path", sorted(_documented(r"\bscripts/[A-Za-z0-9_.-]+\.(?:sh|py)\b")))
def test_every_script_the_docs_name__exists(path: str) -> None:
    assert (REPO_ROOT / path).is_file()


@pytest.mark.parametrize(
    "module", sorted(_documented(r"python -m ([A-Za-z_][A-Za-z0-9_.]*)") - NOT_COMMANDS)
)
def test_every_command_the_docs_name__answers_help(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    assert f"python -m {module}" in done.stdout, "the usage names the command as it is run"


@pytest.mark.parametrize(
    "module", sorted(_documented(r"python -m ([A-Za-z_][A-Za-z0-9_.]*)") - NOT_COMMANDS)
)
def test_every_command_the_docs_name__a_wrong_argument_is_one_line(module: str) -> None:
    """argparse printed its whole usage (up to four lines) above the error."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--no-such-option"],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "error:" in done.stderr


@pytest.mark.parametrize("option", ["--help", "--no-such-option"])
def test_preview__answers_its_arguments_before_loading_the_program(option: str) -> None:
    """infra/preview.py parses first: `--help` or a typo loaded Pulumi's SDK and the program
    (1.1 s of CPU, measured) before argparse answered."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "infra.preview", option],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode in (0, 2), done.stderr[-2000:]
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "infra.cli" in modules, "positive control: -X importtime lists imports"
    assert not {m for m in modules if m.split(".")[0] == "pulumi"}
    assert "infra.render" not in modules


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SECURE_REDIS_FUZZ_SCALE", "abc"), ("SECURE_REDIS_FUZZ_SCALE", "0"),
     ("SECURE_REDIS_FUZZ", "Explore")],
)  # fmt: skip
def test_fuzz_settings_readme_names__a_bad_value_is_one_line_not_a_traceback(
    variable: str, value: str
) -> None:
    """README: `SECURE_REDIS_FUZZ=explore`, `SECURE_REDIS_FUZZ_SCALE=N`. A typo ran the suite
    as usual (`Explore`) or stopped its collection with a ValueError traceback (`abc`)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/unit/test_fuzz_entry_points.py"],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO_ROOT,
        env={**os.environ, variable: value},
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode not in (0, 5), output
    assert "Traceback" not in output
    assert f"{variable}={value!r}" in output, output


@pytest.mark.parametrize(
    "argv",
    [["-m"], ["-x", "-m"], ["-m", "-x"], ["-k"], ["tests/e2e", "--stack"]],
)
def test_test_sh_an_option_without_its_value__one_line_before_any_bootstrap(
    sandbox: Path, argv: list[str]
) -> None:
    """`scripts/test.sh -m` ran the whole bootstrap (virtualenvs, system packages, the base
    image, the wheelhouse) before pytest said "-m: expected one argument"."""
    ran = sandbox / "bootstrap-ran"
    for stage in ("bootstrap.sh", "bootstrap-base-image.sh", "build-app-image.sh"):
        stub = sandbox / "scripts" / stage
        stub.write_text(f"#!/bin/bash\ntouch {ran}\nexit 1\n")
    done = subprocess.run(
        [str(sandbox / "scripts" / "test.sh"), *argv],
        capture_output=True, text=True, timeout=30, check=False, cwd=sandbox,
    )  # fmt: skip
    assert not ran.exists(), "nothing is bootstrapped for arguments pytest would refuse"
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    option = next(a for a in reversed(argv) if a in ("-m", "-k", "--stack"))
    assert line.startswith(f"test: error: {option} needs "), line
    assert "usage: scripts/test.sh" in line
