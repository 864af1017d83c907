"""A retired password or API token survives nowhere an operator or attacker can read.

`scripts/rotate.sh S passwords`, then `api-token` and `api-token-retire`, on the deployed
stack; then every old value is looked for in the local applier's state (each resource), in
every file of every volume of the stack (the `..<revision>` directories of the atomic swap
included), and in `docker inspect` and the logs of every container of it. Attack pass of
2026-12-03 on s87 (docs/attack-surface.md): every old ACL password and the old API token were
still in the applier's state after their retirement, as each password's `retired`, which only
the reload job's password has a use for (its second try, infra/components/reload.py); it is
the one old value allowed, in its own places only.

The values never leave this process: the volumes are read out whole, as the bytes on disk (the
engine's archive of a container made for it and never started, tests/e2e/archives.py), and
searched here, and a failure names the secret and the place, never the value.

A `fault` test: it rotates every password and the API token the other tests' clients hold
(the monitoring module's Prometheus scrapes with a copy of the token), so it runs after every
check of the undisturbed stacks.
"""

from __future__ import annotations

import json
from typing import Final

import docker
import pytest

from infra.applier.state import StackState, StateStore
from infra.naming import STACK_LABEL
from infra.settings import REPO_ROOT
from tests.e2e import appclient
from tests.e2e.archives import volume_files
from tests.e2e.commands import rotated
from tests.e2e.stacks import Stack

pytestmark = [
    pytest.mark.security("operations"),
    pytest.mark.fault,
    pytest.mark.usefixtures("stack_files_restored"),
]

# The password whose retired value has a consumer, and every place it is given to.
RELOAD_PASSWORD: Final = "secrets-reload-password"
RETIRED_FILE: Final = "reload.retired-password"


def _secrets(state: StackState) -> dict[str, str]:
    """Every generated password's and the API token's current value, by resource name."""
    return {
        r.name: str(r.outputs["value"])
        for r in state.resources.values()
        if r.type.endswith(":GeneratedPassword")
    }


def _haystacks(stack: Stack, client: docker.DockerClient, state: StackState) -> dict[str, bytes]:
    """What an operator or attacker with the host's Docker and the checkout can read, by place."""
    found = {
        f"applier state {r.name}": json.dumps(r.to_json()).encode()
        for r in state.resources.values()
    }
    label = {"label": f"{STACK_LABEL}={stack.name}"}
    for container in client.containers.list(all=True, filters=label):
        info = client.api.inspect_container(container.id)
        found[f"docker inspect {container.name}"] = json.dumps(info).encode()
        found[f"docker logs {container.name}"] = client.api.logs(container.id)
    volumes = sorted(v.name for v in client.volumes.list(filters=label))
    assert volumes, f"stack {stack.name} has no volumes"
    image = client.api.inspect_container(stack.redis)["Image"]
    for name, data in volume_files(client, volumes, image, "retired-secrets").items():
        found[f"volume file {name}"] = data
    return found


def _places(secret: str, haystacks: dict[str, bytes]) -> list[str]:
    needle = secret.encode()
    return sorted(where for where, text in haystacks.items() if needle in text)


@pytest.mark.one_stack(
    "which values a password keeps after its SET is one code path of the provider for every "
    "stack (infra/providers/secrets.py); no stack setting changes what is stored where"
)
def test_retired_secrets__no_rotated_password_or_api_token_survives_outside_its_use(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    store = StateStore(REPO_ROOT, stack.name)
    before = store.load()
    if before is None:
        pytest.skip(f"stack {stack.name} has no local applier state (deployed with pulumi up)")
    old = _secrets(before)
    assert "secrets-api-token" in old, sorted(old)
    assert RELOAD_PASSWORD in old, sorted(old)

    for kind in ("passwords", "api-token", "api-token-retire"):
        rotated(stack, kind)
    # The session's cached token (appclient) was the one just retired: the tests after this
    # one use the current token (test_e2e_rotation_load's HTTP load got 401 for every request
    # when no other token test ran in between, 2026-12-04).
    appclient.api_token(stack, refresh=True)

    after = store.load()
    assert after is not None
    current = _secrets(after)
    assert sorted(current) == sorted(old)
    assert [name for name in old if current[name] == old[name]] == [], "not all rotated"
    auth = {"Authorization": f"Bearer {old['secrets-api-token']}"}
    assert appclient.raw_call(stack, "GET", "/security-status", None, auth)[0] == 401

    haystacks = _haystacks(stack, docker_client, after)
    # Positive control: the same search finds each current value in the volume it is
    # delivered to, not only in the applier's state (a reader that left files out, as one
    # through a container's log did, tests/e2e/archives.py, fails here).
    for name, value in current.items():
        delivered = [p for p in _places(value, haystacks) if p.startswith("volume file ")]
        assert delivered, f"the search did not find the current {name} in any volume file"

    left = {
        name: places
        for name, value in old.items()
        if name != RELOAD_PASSWORD and (places := _places(value, haystacks))
    }
    assert left == {}, f"retired values still readable: {left}"
    # By design (docs/day2.md, "What a retirement leaves"): the reload job's own.
    reload_places = _places(old[RELOAD_PASSWORD], haystacks)
    outside = [p for p in reload_places if "reload" not in p]
    assert outside == [], f"the retired reload password outside the reload job's places: {outside}"
    assert any(p.endswith(f"/{RETIRED_FILE}") for p in reload_places), reload_places
