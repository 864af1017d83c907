"""The operator commands scripts/*.sh run many times load neither Pulumi nor what they never use.

scripts/rotate.sh runs `python -m infra.stack_config get/set` and `-m infra.rotation_probe
unfinished` several times per rotation, scripts/setup-secure-redis.sh and teardown.sh
`-m infra.firewall`, scripts/pulumi-deploy.sh `-m policies.strictness`, and the tests start
them hundreds of times. `pulumi` and `pulumi_docker`
alone cost about half a CPU second per start; these commands only read a stack file, a
snapshot or names (infra/naming.py, infra/settings.py). Each command runs for real here, in a
fresh interpreter, and the test reads which packages it had loaded when it finished.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pytest

from infra.stack_config import get_setting
from policies import strictness
from tests.support.loaded_modules import run_and_list

PULUMI: Final = frozenset({"pulumi", "pulumi_docker", "grpc"})


def _run(tmp_path: Path, module: str, *args: str) -> tuple[str, set[str]]:
    """The command's stdout and the top-level packages it loaded; it must exit 0."""
    loaded = run_and_list(tmp_path, module, *args)
    assert loaded.code in (0, None), loaded.stderr
    return loaded.stdout, set(loaded.packages)


def test_stack_config_get__loads_no_pulumi_and_no_cryptography(tmp_path: Path) -> None:
    out, loaded = _run(tmp_path, "infra.stack_config", "get", "--stack", "dev", "redisPort")
    assert out.strip() == str(get_setting("dev", "redisPort"))
    assert not loaded & (PULUMI | {"cryptography", "docker"})


def test_rotation_probe_unfinished__loads_no_pulumi_no_docker_sdk_and_no_cryptography(
    tmp_path: Path,
) -> None:
    """scripts/rotate.sh runs `unfinished` several times per rotation; it reads a snapshot's
    JSON only, and `cryptography` alone cost about 0.1 s per start."""
    snapshot = tmp_path / "before.json"
    snapshot.write_text(
        json.dumps(
            {
                "previous_key_ids": [],
                "acl": {"app": ["a", "b"]},
                "redis_trusts": ["1"],
                "app_trusts": ["1"],
                "api_previous_tokens": 0,
            }
        )
    )
    out, loaded = _run(
        tmp_path,
        "infra.rotation_probe",
        "unfinished",
        "--stack",
        "dev",
        "--before",
        str(snapshot),
    )
    assert out == "passwords: ACL users with two passwords: app\n"
    assert not loaded & (PULUMI | {"docker", "cryptography"})


@pytest.mark.parametrize("module", ["infra.stack_config", "infra.rotation_probe", "infra.firewall"])
def test_help__loads_no_pulumi(tmp_path: Path, module: str) -> None:
    out, loaded = _run(tmp_path, module, "--help")
    assert f"{module}" in out
    assert not loaded & PULUMI


def test_policies_strictness__loads_no_pulumi(tmp_path: Path) -> None:
    out, loaded = _run(tmp_path, "policies.strictness", "--stack", "dev")
    assert out.strip() == str(strictness.config_file(strictness.of_stack("dev")))
    assert not loaded & PULUMI
