"""Hostile arguments to the stack scripts: one line each, nothing acted on.

Every script runs from a copy of scripts/ in a temporary directory, so ROOT is that directory:
no virtualenv, no stack files. Whatever an argument makes a script do, it can reach neither
Docker nor a real stack there; a script that got past its argument checks stops at "no
virtualenv", which these tests tell apart from the refusal they expect.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT

pytestmark = pytest.mark.unit

ESCAPE = "x\x1b[31mRED\x1b[0m"  # an ANSI colour sequence: would recolour the user's terminal


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "scripts", tmp_path / "scripts")
    return tmp_path


def _run(sandbox: Path, script: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(sandbox / "scripts" / script), *argv],
        capture_output=True, text=True, timeout=30, check=False, cwd=sandbox,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("script", "argv", "code"),
    [
        pytest.param("teardown.sh", [""], 1, id="teardown"),
        pytest.param("setup-secure-redis.sh", [""], 1, id="setup"),
        pytest.param("setup-secure-redis.sh", ["--full", ""], 1, id="setup-full"),
        pytest.param("status.sh", [""], 2, id="status"),
        pytest.param("rotate.sh", ["", "certs"], 1, id="rotate"),
        pytest.param("pulumi-deploy.sh", [""], 1, id="pulumi-deploy"),
    ],
)
def test_empty_stack_argument__is_refused_not_read_as_dev(
    sandbox: Path, script: str, argv: list[str], code: int
) -> None:
    """`teardown.sh "$STACK"` with STACK unset must not tear down dev (only no argument
    means dev, as each script's usage says)."""
    done = _run(sandbox, script, *argv)
    assert done.returncode == code, done.stderr
    assert "'' is not a stack name" in done.stderr
    assert "virtualenv" not in done.stderr


@pytest.mark.parametrize(
    ("script", "argv"),
    [
        pytest.param("teardown.sh", ["{}"], id="teardown"),
        pytest.param("setup-secure-redis.sh", ["{}"], id="setup"),
        pytest.param("setup-secure-redis.sh", ["qa", "{}"], id="setup-second-stack"),
        pytest.param("setup-secure-redis.sh", ["--{}"], id="setup-option"),
        pytest.param("status.sh", ["{}"], id="status"),
        pytest.param("rotate.sh", ["{}", "certs"], id="rotate-stack"),
        pytest.param("rotate.sh", ["qa", "{}"], id="rotate-kind"),
        pytest.param("pulumi-deploy.sh", ["{}"], id="pulumi-deploy"),
    ],
)
@pytest.mark.parametrize("argument", ["a\nb", ESCAPE], ids=["newline", "ansi-escape"])
def test_control_characters_in_an_argument__one_line_never_sent_raw(
    sandbox: Path, script: str, argv: list[str], argument: str
) -> None:
    done = _run(sandbox, script, *[a.replace("{}", argument) for a in argv])
    assert done.returncode in (1, 2), done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "\x1b" not in done.stderr
    assert "virtualenv" not in done.stderr
