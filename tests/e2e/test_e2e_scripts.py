"""The setup and teardown scripts' own behaviour around a deployment (the deployment itself is
what the rest of this suite verifies)."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest

from infra.settings import REPO_ROOT

pytestmark = pytest.mark.security("deployment")


def script(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_teardown__of_a_stack_with_nothing_deployed_says_so_and_succeeds(
    docker_client: object,
) -> None:
    name = f"e2e-absent-{uuid.uuid4().hex[:8]}"
    result = script("teardown.sh", name)
    assert result.returncode == 0, result.stderr
    assert "nothing to remove" in result.stdout
    # ... and leaves no lock file for that name (infra/apply.py `_nothing_to_down`).
    assert not (REPO_ROOT / ".secure-redis" / "state" / f"{name}.lock").exists()
    # A mistyped name is said to be no stack of this checkout, with the ones there are.
    assert f"teardown: warning: no Pulumi.{name}.yaml in this checkout (stacks: " in result.stderr
    listed = re.search(r"\(stacks: ([^)]*)\)", result.stderr)
    assert listed is not None, result.stderr
    assert {"dev", "prod"} <= set(listed.group(1).split()), result.stderr


def test_teardown__refuses_a_malformed_stack_name() -> None:
    result = script("teardown.sh", "../etc")
    assert result.returncode == 1
    assert "is not a stack name" in result.stderr


def test_setup__unknown_stack_stops_before_changing_anything() -> None:
    result = script("setup-secure-redis.sh", "no-such-stack")
    assert result.returncode == 1
    assert "Pulumi.no-such-stack.yaml does not exist" in result.stderr
    # It lists the stacks there are: dev and prod, and any other stack file of this checkout.
    listed = re.search(r"\(stacks: ([^)]*)\)", result.stderr)
    assert listed is not None, result.stderr
    assert {"dev", "prod"} <= set(listed.group(1).split()), result.stderr
