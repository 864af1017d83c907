"""scripts/rotate.sh's Pulumi CLI path, on the deployed stack, with a recording stand-in `pulumi`.

No Pulumi CLI can be installed here, so the one part that cannot exist is stood in for by
tests/support/pulumi_standin.py on PATH: it records every command rotate.sh gives it, edits
Pulumi.<stack>.yaml as `pulumi config set` does and, for `pulumi up`, runs the project's own
stand-ins for the engine (policy check, local applier). Everything else is real: the running
stack, the probe that waits for every consumer, Docker.

Checked: the exact commands, their order, the stack and the config keys rotate.sh runs when the
CLI is logged in; that it never falls back to the local applier then; and that it stops at a
failed `pulumi config set` or `pulumi up` without running the next step.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infra.stack_config import get_setting
from tests.e2e.commands import ROTATE_S, rotate_script
from tests.e2e.stacks import Stack
from tests.support import pulumi_standin

pytestmark = [
    pytest.mark.security("operations"),
    pytest.mark.fault,
    pytest.mark.usefixtures("stack_files_restored"),
    pytest.mark.one_stack("the commands rotate.sh gives the CLI do not depend on the stack"),
]

UP_FLAGS = ["--yes", "--non-interactive", "--skip-preview", "--policy-pack", "policies"]


@pytest.fixture(scope="module")
def stack(first_stack: Stack) -> Stack:
    """One stack: the commands rotate.sh gives the CLI do not depend on its settings."""
    return first_stack


def rotate_with_standin(
    tmp_path: Path, stack: Stack, kind: str, fail: str = ""
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """rotate.sh STACK KIND with the stand-in first on PATH; (result, commands but whoami)."""
    log = tmp_path / "pulumi-calls.jsonl"
    pulumi_standin.install(tmp_path / "bin")
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        pulumi_standin.LOG_ENV: str(log),
        pulumi_standin.FAIL_ENV: fail,
    }
    result = subprocess.run(
        rotate_script(stack, kind),
        capture_output=True,
        text=True,
        timeout=ROTATE_S,
        check=False,
        env=env,
    )
    calls = pulumi_standin.recorded(log)
    assert [c for c in calls if c["error"]] == [], "every flag is one the CLI documents"
    argvs = [list(c["argv"]) for c in calls]
    assert ["whoami", "--non-interactive"] in argvs, "rotate.sh asks whether the CLI is logged in"
    return result, [argv for argv in argvs if argv[:1] != ["whoami"]]


def config_set(stack: Stack, key: str, value: int) -> list[str]:
    return [
        "config",
        "set",
        "--stack",
        stack.name,
        f"secure-redis:{key}",
        str(value),
        "--non-interactive",
    ]


def up(stack: Stack) -> list[str]:
    return ["up", *UP_FLAGS, "--stack", stack.name]


def generation(stack: Stack, key: str) -> int:
    return int(get_setting(stack.name, key))


def test_rotate_certs__with_the_pulumi_cli_sets_the_generation_then_runs_pulumi_up(
    tmp_path: Path, stack: Stack
) -> None:
    before = generation(stack, "certRenewalGeneration")
    result, commands = rotate_with_standin(tmp_path, stack, "certs")
    assert result.returncode == 0, result.stderr[-2000:]
    assert commands == [config_set(stack, "certRenewalGeneration", before + 1), up(stack)]
    # rotate.sh's own progress lines (stdout) name the deployer.
    assert "rotate: up (renew every leaf certificate) with pulumi up" in result.stdout
    assert "with the local applier" not in result.stdout, "the CLI path never falls back"
    assert generation(stack, "certRenewalGeneration") == before + 1


def test_rotate_passwords__stops_at_a_failed_pulumi_up(tmp_path: Path, stack: Stack) -> None:
    before = generation(stack, "passwordRotationGeneration")
    result, commands = rotate_with_standin(tmp_path, stack, "passwords", fail="up:1")
    assert result.returncode == 1
    assert "pulumi up failed; the stack keeps what it had" in result.stderr
    # The ROTATE up failed: the SET up (the second) never runs.
    assert commands == [config_set(stack, "passwordRotationGeneration", before + 1), up(stack)]


def test_rotate_ca__stops_at_a_failed_pulumi_config_set(tmp_path: Path, stack: Stack) -> None:
    before = generation(stack, "caRolloverGeneration")
    result, commands = rotate_with_standin(tmp_path, stack, "ca", fail="config")
    assert result.returncode == 1
    assert "pulumi config set secure-redis:caRolloverGeneration failed" in result.stderr
    assert commands == [config_set(stack, "caRolloverGeneration", before + 1)], "no up after it"
    assert generation(stack, "caRolloverGeneration") == before


def test_rotate_data_key__with_the_pulumi_cli_runs_each_phase_in_order(
    tmp_path: Path, stack: Stack
) -> None:
    keep = max(1, generation(stack, "dataKeyKeepPrevious"))
    before = generation(stack, "dataKeyGeneration")
    result, commands = rotate_with_standin(tmp_path, stack, "data-key")
    assert result.returncode == 0, result.stderr[-2000:]
    assert commands == [
        config_set(stack, "dataKeyKeepPrevious", keep),
        config_set(stack, "dataKeyGeneration", before + 1),
        up(stack),  # new primary, the old key kept for reading; then the rotation pass
        config_set(stack, "dataKeyKeepPrevious", 0),
        up(stack),  # the old key retired
        config_set(stack, "dataKeyKeepPrevious", keep),
        up(stack),  # back to keeping one, which rewrites nothing
    ]
    assert result.stdout.index("rotation pass") < result.stdout.index("old key retired")
