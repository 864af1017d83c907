"""infra/rotation_probe.py `Probe._served` against real containers that are not the stack's: a
container holding the app's name that the stack did not make is never asked what Redis serves
(its answer decides whether a CA is retired), and a container holding the short-lived probe's
name that the stack did not make is never removed.

Real Docker, the base image only (debian:bookworm-slim, scripts/bootstrap-base-image.sh); the
containers are created, never started, under a stack name no deploy uses."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import suppress

import docker
import pytest
from docker.errors import DockerException, NotFound

from infra.naming import ROLE_LABEL, STACK_LABEL, Role, object_name
from infra.rotation_probe import SERVED_PROBE, Probe, ProbeError

IMAGE = "debian:bookworm-slim"


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    try:
        engine = docker.from_env(timeout=60)
        engine.images.get(IMAGE)
    except (DockerException, NotFound):
        pytest.skip(f"needs the Docker engine and {IMAGE} (scripts/bootstrap-base-image.sh)")
    yield engine
    engine.close()


@pytest.fixture
def stack(client: docker.DockerClient) -> Iterator[str]:
    name = f"r13p{secrets.token_hex(3)}"
    yield name
    for role in ("app", SERVED_PROBE):
        with suppress(NotFound):
            client.containers.get(object_name(name, role)).remove(force=True)


def _create(client: docker.DockerClient, name: str, labels: dict[str, str]) -> None:
    client.containers.create(IMAGE, ["true"], name=name, labels=labels)


def test_served__an_app_the_stack_did_not_make_is_not_asked(
    client: docker.DockerClient, stack: str
) -> None:
    _create(client, object_name(stack, "app"), {})  # a look-alike: unlabelled

    with pytest.raises(ProbeError, match=r"not labelled io\.secure-redis\.stack="):
        Probe(stack, 6379)._served()
    with pytest.raises(NotFound):  # nothing was run in its image either
        client.containers.get(object_name(stack, SERVED_PROBE))


def test_served__a_probe_name_held_by_another_is_left_alone(
    client: docker.DockerClient, stack: str
) -> None:
    ours = {STACK_LABEL: stack, ROLE_LABEL: Role.APP.value}
    _create(client, object_name(stack, "app"), ours)  # the stack's app, stopped
    squatter = object_name(stack, SERVED_PROBE)
    _create(client, squatter, {STACK_LABEL: "someone-else", ROLE_LABEL: Role.APP.value})

    with pytest.raises(ProbeError, match="already exists and it is not labelled"):
        Probe(stack, 6379)._served()
    assert client.containers.get(squatter).labels[STACK_LABEL] == "someone-else"
