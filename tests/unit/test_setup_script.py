"""scripts/setup-secure-redis.sh refuses bad arguments before it changes anything.

The script runs for real; each case stops while parsing its arguments, before the bootstrap.
"""

from __future__ import annotations

import re
import subprocess

from infra.settings import REPO_ROOT


def setup(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "setup-secure-redis.sh"), *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_setup__two_stacks_are_refused_not_the_last_one_deployed() -> None:
    result = setup("dev", "prod")
    assert result.returncode == 1
    assert "one stack at a time ('dev' and 'prod' given)" in result.stderr
    assert "bootstrap" not in result.stdout + result.stderr


def test_setup__an_unknown_option_is_refused_with_the_usage() -> None:
    result = setup("--fast")
    assert result.returncode == 1
    assert "unknown option '--fast'" in result.stderr
    assert "usage: scripts/setup-secure-redis.sh [STACK] [--full]" in result.stderr


def test_setup__an_unknown_stack_lists_the_stacks_there_are() -> None:
    result = setup("staging-eu")
    assert result.returncode == 1
    assert "Pulumi.staging-eu.yaml does not exist (stacks: " in result.stderr
    # dev and prod, and any other stack file of this checkout (a user's third stack).
    listed = re.search(r"\(stacks: ([^)]*)\)", result.stderr)
    assert listed is not None, result.stderr
    assert {"dev", "prod"} <= set(listed.group(1).split()), result.stderr


def test_setup__help_prints_the_usage_and_changes_nothing() -> None:
    result = setup("--help")
    assert result.returncode == 0
    assert "scripts/setup-secure-redis.sh [STACK] [--full]" in result.stdout
    assert "bootstrap" in result.stdout, "the help lists the steps"
