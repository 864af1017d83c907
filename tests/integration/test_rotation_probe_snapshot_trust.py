"""infra/rotation_probe.py `Probe.snapshot` against real containers that are not the stack's:
scripts/rotate.sh judges every step by a snapshot (its `guard` decides from it whether an up
may retire a CA), so a container holding the name of the stack's Redis or app that the stack
did not make is never asked: NotTrusted, nothing run in it (`docker inspect`'s ExecIDs stays
empty), nothing removed. What the stack made is told by its labels, and, when the local
applier's state records the containers' images (`recorded`), by those images too.

Real Docker, the base image only (debian:bookworm-slim, scripts/bootstrap-base-image.sh);
the containers run `sleep` with no network, under a stack name no deploy uses, and are removed
afterwards."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Iterator
from contextlib import suppress

import docker
import pytest
from docker.errors import NotFound

from infra.naming import ROLE_LABEL, STACK_LABEL, Role, object_name
from infra.rotation_probe import NotTrusted, Probe, ProbeError, Recorded
from tests.support.base_image_engine import ELSEWHERE, IMAGE, base_image_engine


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    yield from base_image_engine()


@pytest.fixture
def stack(client: docker.DockerClient) -> Iterator[str]:
    name = f"g14s{secrets.token_hex(3)}"
    yield name
    for role in ("redis", "app"):
        with suppress(NotFound):
            client.containers.get(object_name(name, role)).remove(force=True)


def _run(client: docker.DockerClient, stack: str, role: Role, labels: dict[str, str]) -> None:
    """A running container holding the name of `stack`'s `role`, with `labels`."""
    client.containers.run(
        IMAGE,
        ["sleep", "300"],
        name=object_name(stack, role.value),
        labels=labels,
        network_mode="none",
        detach=True,
    )


def _ours(stack: str, role: Role) -> dict[str, str]:
    return {STACK_LABEL: stack, ROLE_LABEL: role.value}


def _execs(client: docker.DockerClient, stack: str, role: Role) -> list[str]:
    """The commands exec'd in the container since it was made (none: it was never asked
    anything), from the engine's events: `docker inspect`'s ExecIDs forgets finished ones."""
    container = client.containers.get(object_name(stack, role.value))
    events = client.events(
        since=_created(container.attrs["Created"]),
        until=int(time.time()) + 1,
        filters={"container": container.id, "event": "exec_create"},
        decode=True,
    )
    return [str(e.get("Action")) for e in events]


def _created(stamp: str) -> int:
    """A `docker inspect` time (RFC 3339, nanoseconds) as whole seconds, rounded down."""
    return int(dt.datetime.fromisoformat(stamp[:19]).replace(tzinfo=dt.UTC).timestamp())


def _image_id(client: docker.DockerClient) -> str:
    return str(client.images.get(IMAGE).id)


def test_snapshot__a_redis_the_stack_did_not_make_is_not_asked(
    client: docker.DockerClient, stack: str
) -> None:
    """Under `pulumi up` (no local state) the labels decide: an unlabelled Redis look-alike
    is neither asked nor removed, and the line names the way on."""
    _run(client, stack, Role.REDIS, {})
    _run(client, stack, Role.APP, _ours(stack, Role.APP))

    with pytest.raises(NotTrusted) as refused:
        Probe(stack, 6379).snapshot()
    text = str(refused.value)
    redis = object_name(stack, "redis")
    assert text.startswith(f"{redis}: it is not labelled {STACK_LABEL}={stack} and ")
    assert "left alone (nothing was run in it, nothing removed)" in text
    assert "the probe changed nothing" in text
    assert f"`docker inspect {redis}`" in text
    assert f"`docker rm -f {redis}`" in text
    assert f"`pulumi up --refresh --stack {stack}`" in text
    assert _execs(client, stack, Role.REDIS) == []
    assert _execs(client, stack, Role.APP) == []
    assert client.containers.get(redis).status == "running"  # left alone


def test_snapshot__an_app_of_another_stack_is_not_asked_and_neither_is_redis(
    client: docker.DockerClient, stack: str
) -> None:
    """Both are checked before anything is asked: Redis's files are not read either."""
    _run(client, stack, Role.REDIS, _ours(stack, Role.REDIS))
    _run(client, stack, Role.APP, {STACK_LABEL: "someone-else", ROLE_LABEL: Role.APP.value})

    with pytest.raises(NotTrusted, match=rf"^{object_name(stack, 'app')}: it is not labelled"):
        Probe(stack, 6379).snapshot()
    assert _execs(client, stack, Role.REDIS) == []
    assert _execs(client, stack, Role.APP) == []


def test_snapshot__with_the_applier_state__a_redis_of_another_image_is_not_asked(
    client: docker.DockerClient, stack: str
) -> None:
    """The labels are right, the image is not the one the local applier's state records:
    a look-alike (labels can be put on any container)."""
    _run(client, stack, Role.REDIS, _ours(stack, Role.REDIS))
    _run(client, stack, Role.APP, _ours(stack, Role.APP))
    recorded = {Role.REDIS: ELSEWHERE, Role.APP: _image_id(client)}

    with pytest.raises(NotTrusted) as refused:
        Probe(stack, 6379, recorded=Recorded(images=recorded, containers={})).snapshot()
    text = str(refused.value)
    short = _image_id(client).removeprefix("sha256:")[:12]
    assert f"it runs image {short}, not 000000000000" in text
    assert "state records for its redis" in text
    assert f"`python -m infra.apply up --stack {stack}`" in text
    assert "pulumi up" not in text  # the local applier deployed it
    assert _execs(client, stack, Role.REDIS) == []
    assert _execs(client, stack, Role.APP) == []


def test_snapshot__with_the_applier_state__no_image_recorded_for_the_app__not_asked(
    client: docker.DockerClient, stack: str
) -> None:
    _run(client, stack, Role.REDIS, _ours(stack, Role.REDIS))
    _run(client, stack, Role.APP, _ours(stack, Role.APP))
    recorded = {Role.REDIS: _image_id(client), Role.APP: None}

    with pytest.raises(NotTrusted, match="state records no image for its app"):
        Probe(stack, 6379, recorded=Recorded(images=recorded, containers={})).snapshot()
    assert _execs(client, stack, Role.REDIS) == []
    assert _execs(client, stack, Role.APP) == []


def test_round_trip__an_app_the_stack_did_not_make_gets_no_request(
    client: docker.DockerClient, stack: str
) -> None:
    """`wait` makes a round trip before each snapshot: it must not ask a look-alike either,
    or the snapshot's refusal after ("nothing was run in it") would not hold."""
    _run(client, stack, Role.APP, {STACK_LABEL: stack, ROLE_LABEL: Role.REDIS.value})

    assert Probe(stack, 6379).round_trip() is False
    assert _execs(client, stack, Role.APP) == []


def test_served_issuer__a_redis_the_stack_did_not_make_is_not_asked(
    client: docker.DockerClient, stack: str
) -> None:
    """The retire guard (infra/apply.py `_retire_refusal`) reads the CA bundle from Redis's
    volume beside what Redis serves: a look-alike's bundle could clear any retire."""
    _run(client, stack, Role.REDIS, {})
    _run(client, stack, Role.APP, _ours(stack, Role.APP))

    with pytest.raises(NotTrusted, match=rf"^{object_name(stack, 'redis')}: it is not labelled"):
        Probe(stack, 6379).served_issuer(_image_id(client))
    assert _execs(client, stack, Role.REDIS) == []
    assert _execs(client, stack, Role.APP) == []


def test_snapshot__the_stacks_own_containers_are_asked(
    client: docker.DockerClient, stack: str
) -> None:
    """Labelled as the stack's and running the recorded images: trusted, and asked (these
    hold none of Redis's files, so the snapshot then fails as an unobservable stack does)."""
    _run(client, stack, Role.REDIS, _ours(stack, Role.REDIS))
    _run(client, stack, Role.APP, _ours(stack, Role.APP))
    image = _image_id(client)

    both = Recorded(images={Role.REDIS: image, Role.APP: image}, containers={})
    for recorded in (None, both):
        with pytest.raises(ProbeError) as failed:
            Probe(stack, 6379, recorded=recorded).snapshot()
        assert not isinstance(failed.value, NotTrusted), failed.value
    assert len(_execs(client, stack, Role.REDIS)) == 2


def _id(client: docker.DockerClient, stack: str, role: Role) -> str:
    return str(client.containers.get(object_name(stack, role.value)).id)


def _look_alike(client: docker.DockerClient, stack: str, role: Role) -> str:
    """The stack's `role` container replaced by a look-alike: the same labels and image
    (and it could copy the volumes): the ID of the one the state recorded, now gone."""
    recorded = _id(client, stack, role)
    client.containers.get(object_name(stack, role.value)).remove(force=True)
    _run(client, stack, role, _ours(stack, role))
    return recorded


@pytest.mark.parametrize("role", [Role.REDIS, Role.APP])
def test_snapshot__with_the_applier_state__a_look_alike_of_the_recorded_image_is_not_asked(
    client: docker.DockerClient, stack: str, role: Role
) -> None:
    """Right labels, right image, another container than the one the state records: not
    asked, not removed; the state read again (as it is now) records the same, so it is
    refused all the same."""
    _run(client, stack, Role.REDIS, _ours(stack, Role.REDIS))
    _run(client, stack, Role.APP, _ours(stack, Role.APP))
    image = _image_id(client)
    images = {Role.REDIS: image, Role.APP: image}
    containers = {
        Role.REDIS: _id(client, stack, Role.REDIS),
        Role.APP: _id(client, stack, Role.APP),
    }
    containers[role] = _look_alike(client, stack, role)
    look_alike = _id(client, stack, role)
    reads: list[int] = []

    def reread() -> Recorded:
        reads.append(1)
        return Recorded(images=images, containers=dict(containers))

    recorded = Recorded(images=images, containers=dict(containers))
    probe = Probe(stack, 6379, recorded=recorded, reread=reread)
    with pytest.raises(NotTrusted) as refused:
        probe.snapshot()
    text = str(refused.value)
    name = object_name(stack, role.value)
    assert text.startswith(
        f"{name}: it is container {look_alike[:12]}, not {containers[role][:12]}, the one "
        f"the stack's state records for its {role.value}"
    )
    assert "left alone (nothing was run in it, nothing removed)" in text
    assert f"`docker rm -f {name}`" in text
    assert f"`python -m infra.apply up --stack {stack}`" in text
    assert reads == [1], "judged by the state as it is at the moment, read again once"
    assert _execs(client, stack, Role.REDIS) == []
    assert _execs(client, stack, Role.APP) == []
    assert client.containers.get(name).id == look_alike  # left alone
    assert client.containers.get(name).status == "running"


def test_snapshot__with_the_applier_state__a_container_an_up_replaced_meanwhile_is_asked(
    client: docker.DockerClient, stack: str
) -> None:
    """The probe read the state before an up replaced the app (a new ID, which that up
    recorded): the new app is the stack's own, told by the state read again, and asked."""
    _run(client, stack, Role.REDIS, _ours(stack, Role.REDIS))
    _run(client, stack, Role.APP, _ours(stack, Role.APP))
    image = _image_id(client)
    images = {Role.REDIS: image, Role.APP: image}
    redis = _id(client, stack, Role.REDIS)
    before = {Role.REDIS: redis, Role.APP: _look_alike(client, stack, Role.APP)}
    now = {Role.REDIS: redis, Role.APP: _id(client, stack, Role.APP)}

    probe = Probe(
        stack,
        6379,
        recorded=Recorded(images=images, containers=before),
        reread=lambda: Recorded(images=images, containers=now),
    )
    with pytest.raises(ProbeError) as failed:  # asked: these hold none of Redis's files
        probe.snapshot()
    assert not isinstance(failed.value, NotTrusted), failed.value
    assert len(_execs(client, stack, Role.REDIS)) == 1
