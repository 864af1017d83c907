"""Which stacks the e2e session verifies (tests/e2e/stacks.py `stack_selection`).

scripts/setup-secure-redis.sh deploys any stack with a Pulumi.<stack>.yaml and then verifies it
with `pytest tests/e2e --stack <stack>`; the selection must accept every such stack, not only
dev and prod, and refuse one without a stack file in one line that lists the stacks there are.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT
from tests.e2e.stacks import STACK_NAMES, stack_selection


def stack_files(root: Path, *names: str) -> Path:
    for name in names:
        (root / f"Pulumi.{name}.yaml").write_text("config:\n  secure-redis:environment: staging\n")
    return root


def test_nothing_chosen__dev_and_prod() -> None:
    assert stack_selection([]) == STACK_NAMES


def test_a_third_stack_with_its_stack_file_is_verified(tmp_path: Path) -> None:
    root = stack_files(tmp_path, "dev", "prod", "staging-eu")
    assert stack_selection(["staging-eu"], root) == ("staging-eu",)
    assert stack_selection(["staging-eu", "dev", "staging-eu"], root) == ("staging-eu", "dev")


def test_a_stack_without_its_file_is_refused_naming_the_stacks_there_are(tmp_path: Path) -> None:
    root = stack_files(tmp_path, "dev", "prod")
    with pytest.raises(ValueError, match=r"Pulumi\.qa\.yaml does not exist") as raised:
        stack_selection(["dev", "qa"], root)
    assert "(stacks: dev prod)" in str(raised.value)
    assert "'dev'" not in str(raised.value), "only the missing stack is named"


@pytest.mark.parametrize("bad", ["Dev", "../dev", "", "-x"])
def test_a_malformed_name_is_refused_before_any_file_is_looked_up(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="is not a stack name"):
        stack_selection([bad], stack_files(tmp_path, "dev"))


def test_pytest_with_an_unknown_stack__stops_with_one_usage_line() -> None:
    """`pytest tests/e2e --stack nostack` reported the refusal as one collection error per
    test file, each with its traceback (15 of them), instead of once."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/e2e", "--stack", "nostack", "--collect-only",
         "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "ERROR collecting" not in output
    refusals = [line for line in output.splitlines() if "no stack 'nostack'" in line]
    assert len(refusals) == 1, output
