"""infra/rotation_probe.py `Probe._served` against real containers that are not the stack's: a
container holding the app's name that the stack did not make is never asked what Redis serves
(its answer decides whether a CA is retired), and a container holding the short-lived probe's
name that the stack did not make is never removed. What the stack made is told by its labels
and by the image its state records for the app: labels can be put on any container.

Real Docker, the base image only (debian:bookworm-slim, scripts/bootstrap-base-image.sh, and an
image made from it here with one more label, no network); the containers are created, never
started, under a stack name no deploy uses."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from contextlib import suppress

import docker
import pytest
from docker.errors import DockerException, NotFound

from infra.naming import ROLE_LABEL, STACK_LABEL, Role, object_name
from infra.rotation_probe import SERVED_PROBE, NotTrusted, Probe, ProbeError, Recorded
from tests.support.base_image_engine import ELSEWHERE, IMAGE, base_image_engine
from tests.support.image_builds import image_build


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    yield from base_image_engine()


@pytest.fixture
def stack(client: docker.DockerClient) -> Iterator[str]:
    name = f"r13p{secrets.token_hex(3)}"
    yield name
    for role in ("app", SERVED_PROBE):
        with suppress(NotFound):
            client.containers.get(object_name(name, role)).remove(force=True)


@pytest.fixture
def other_image(client: docker.DockerClient) -> Iterator[str]:
    """The ID of an image other than IMAGE (IMAGE and a label), removed afterwards."""
    dockerfile = io.BytesIO(f"FROM {IMAGE}\nLABEL io.secure-redis.test=probe\n".encode())
    with image_build():
        image, _ = client.images.build(fileobj=dockerfile, rm=True, pull=False)
    yield str(image.id)
    with suppress(DockerException):
        client.images.remove(str(image.id), force=True)


def _create(
    client: docker.DockerClient, name: str, labels: dict[str, str], image: str = IMAGE
) -> None:
    client.containers.create(image, ["true"], name=name, labels=labels)


def _image_id(client: docker.DockerClient) -> str:
    return str(client.images.get(IMAGE).id)


def test_served__an_app_the_stack_did_not_make_is_not_asked(
    client: docker.DockerClient, stack: str
) -> None:
    _create(client, object_name(stack, "app"), {})  # a look-alike: unlabelled

    with pytest.raises(ProbeError, match=r"not labelled io\.secure-redis\.stack="):
        Probe(stack, 6379)._served(_image_id(client))
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
        Probe(stack, 6379)._served(_image_id(client))
    assert client.containers.get(squatter).labels[STACK_LABEL] == "someone-else"


def test_served__an_app_labelled_as_the_stacks_but_of_another_image_is_not_asked(
    client: docker.DockerClient, stack: str
) -> None:
    """The labels are right, the image is not the one the state records: a look-alike
    (anyone who may use the engine can label a container), never asked, never removed."""
    app = object_name(stack, "app")
    _create(client, app, {STACK_LABEL: stack, ROLE_LABEL: Role.APP.value})

    with pytest.raises(NotTrusted) as refused:
        Probe(stack, 6379)._served(ELSEWHERE)
    text = str(refused.value)
    assert f"runs image {_image_id(client).removeprefix('sha256:')[:12]}, not 000000000000" in text
    assert "nothing was changed" in text
    assert f"docker rm -f {app}" in text
    assert f"docker stop {object_name(stack, 'redis')}" in text
    with pytest.raises(NotFound):  # nothing was run in its image
        client.containers.get(object_name(stack, SERVED_PROBE))
    assert client.containers.get(app).attrs["Image"] == _image_id(client)  # left alone


def test_served__no_image_recorded_for_the_app__it_is_not_asked(
    client: docker.DockerClient, stack: str
) -> None:
    _create(client, object_name(stack, "app"), {STACK_LABEL: stack, ROLE_LABEL: Role.APP.value})

    with pytest.raises(NotTrusted, match="state records no image for its app"):
        Probe(stack, 6379)._served(None)
    with pytest.raises(NotFound):
        client.containers.get(object_name(stack, SERVED_PROBE))


def test_served__a_probe_labelled_as_the_stacks_but_of_another_image_is_left_alone(
    client: docker.DockerClient, stack: str, other_image: str
) -> None:
    """The stack's app (stopped, of the recorded image) passes; a container holding the
    probe's name with the stack's labels but another image is not one an interrupted probe
    left, and is not removed."""
    ours = {STACK_LABEL: stack, ROLE_LABEL: Role.APP.value}
    _create(client, object_name(stack, "app"), ours)
    squatter = object_name(stack, SERVED_PROBE)
    _create(client, squatter, ours, image=other_image)

    with pytest.raises(NotTrusted, match=r"already exists and it runs image \w{12}, not "):
        Probe(stack, 6379)._served(_image_id(client))
    assert client.containers.get(squatter).attrs["Image"] == other_image


def test_served__an_app_of_the_recorded_image_but_not_the_recorded_container_is_not_asked(
    client: docker.DockerClient, stack: str
) -> None:
    """The retire guard (infra/apply.py `_retire_refusal`): the state records the app's
    container ID; a look-alike with the stack's labels and the recorded image (whose volumes
    `_beside` would copy) is not that container: never asked, never removed, nothing run."""
    app = object_name(stack, "app")
    ours = {STACK_LABEL: stack, ROLE_LABEL: Role.APP.value}
    _create(client, app, ours)
    recorded = str(client.containers.get(app).id)
    client.containers.get(app).remove(force=True)
    _create(client, app, ours)  # the look-alike
    look_alike = str(client.containers.get(app).id)

    probe = Probe(stack, 6379, recorded=Recorded(images={}, containers={Role.APP: recorded}))
    with pytest.raises(NotTrusted) as refused:
        probe._served(_image_id(client))
    text = str(refused.value)
    assert text.startswith(f"{app}: it is container {look_alike[:12]}, not {recorded[:12]}, ")
    assert "nothing was changed" in text
    assert f"docker rm -f {app}" in text
    assert f"docker stop {object_name(stack, 'redis')}" in text
    with pytest.raises(NotFound):  # nothing was run in its image
        client.containers.get(object_name(stack, SERVED_PROBE))
    assert client.containers.get(app).id == look_alike  # left alone


def test_served__the_recorded_app_passes__the_probe_s_own_leftover_is_judged_by_its_image(
    client: docker.DockerClient, stack: str, other_image: str
) -> None:
    """The recorded app (stopped) passes the ID check; a container holding the short-lived
    probe's name is never the recorded one (each probe makes its own), so it is judged by
    its labels and image only: here another image, left alone."""
    ours = {STACK_LABEL: stack, ROLE_LABEL: Role.APP.value}
    app = object_name(stack, "app")
    _create(client, app, ours)
    squatter = object_name(stack, SERVED_PROBE)
    _create(client, squatter, ours, image=other_image)

    mine = Recorded(images={}, containers={Role.APP: str(client.containers.get(app).id)})
    probe = Probe(stack, 6379, recorded=mine)
    with pytest.raises(NotTrusted, match=rf"^{squatter}: it already exists and it runs image "):
        probe._served(_image_id(client))
    assert client.containers.get(squatter).attrs["Image"] == other_image
