"""The local applier against the real engine, on small hand-written stacks: uploads behave as
pulumi-docker's do (so they fail where the provider would), attach checks the exit code, and
`down` removes everything labelled as the stack's. Uses the local debian:bookworm-slim only.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import APIError, NotFound

from infra.applier.diff import MISSING, docker_changes
from infra.applier.engine import INCOMPLETE, LocalApplier, reading_only
from infra.applier.errors import ApplyError, NothingChanged
from infra.applier.plan import Plan, plan_stack
from infra.applier.state import ResourceState, StackState
from infra.changes import Op
from infra.components.material import INIT_SCRIPT
from infra.docker_exec import exec_run
from infra.naming import MATERIAL_LABEL, STACK_LABEL
from infra.pulumi_names import CONTAINER, IMAGE, NETWORK, VOLUME
from infra.render import RenderedResource
from infra.settings import REPO_ROOT
from tests.support.resources import declared

pytestmark = pytest.mark.security("deployment")

BASE = "debian:bookworm-slim"


@pytest.fixture
def scratch(docker_client: docker.DockerClient) -> Iterator[tuple[str, LocalApplier]]:
    """A throwaway stack name, and an applier; everything labelled with it is removed after."""
    if not docker_client.images.list(name=BASE):
        pytest.skip(f"{BASE} is not present; run scripts/bootstrap-base-image.sh")
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    messages: list[str] = []
    applier = LocalApplier(docker_client, say=messages.append, poll_interval_s=0.2)
    yield name, applier
    applier.down(name, quiet=True)


def resource(type_: str, name: str, props: dict[str, Any]) -> RenderedResource:
    return declared(type_, name, props)


def container(stack: str, **props: Any) -> RenderedResource:
    base = {
        "name": f"{stack}-c",
        "image": BASE,
        "labels": [{"label": STACK_LABEL, "value": stack}],
        "networkMode": "none",
    }
    return resource(CONTAINER, "c", {**base, **props})


def apply(applier: LocalApplier, stack: str, *resources: RenderedResource) -> None:
    applier.up(plan_stack(stack, list(resources), root=Path("/")))


def logs(client: docker.DockerClient, name: str) -> str:
    return str(client.containers.get(name).logs().decode())


@pytest.fixture
def planner() -> Iterator[LocalApplier]:
    """What `python -m infra.apply plan` asks the engine with (infra/apply.py `_plan`): the
    up's own code through a client that refuses every request but a read (engine.py
    `reading_only`), so a plan that tried to change anything fails the test."""
    client = reading_only(docker.from_env(timeout=300))
    yield LocalApplier(client, say=lambda _message: None)
    client.close()


def planned(
    planner: LocalApplier, plan: Plan, state: StackState
) -> list[tuple[Op, tuple[str, ...]]]:
    """The Docker objects' changes a plan shows (and the up then applies), and the refusal
    before the first change it notes; each planned object's (op, reasons)."""
    changes = planner.changes(plan, state)
    planner.refuse_before_change(plan, state, changes)
    return [(c.op, c.reasons) for c in changes]


def test_applier__upload_into_read_only_rootfs_fails_like_the_provider(
    scratch: tuple[str, LocalApplier],
) -> None:
    stack, applier = scratch
    ro = container(
        stack, readOnly=True, command=["true"], uploads=[{"file": "/etc/x.conf", "content": "x"}]
    )
    with pytest.raises(ApplyError, match=r"uploading /etc/x\.conf failed \(.*read-only"):
        apply(applier, stack, ro)


def test_applier__uploads_default_to_0644_root_and_honour_permissions_and_owner(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    stack, applier = scratch
    files = ["/run/t/plain.txt", "/run/t/key.pem", "/run/t/tool.sh"]
    uploads = [
        {"file": files[0], "content": "hello"},
        {"file": files[1], "content": "k", "permissions": "0400", "owner": "999", "group": "998"},
        {"file": files[2], "content": "#!/bin/sh", "executable": True},
    ]
    one_shot = container(
        stack,
        command=["stat", "-c", "%a %u %g %s %n", *files],
        uploads=uploads,
        attach=True,
        mustRun=False,
    )
    apply(applier, stack, one_shot)
    assert logs(docker_client, f"{stack}-c").splitlines() == [
        f"644 0 0 5 {files[0]}",
        f"400 999 998 1 {files[1]}",
        f"744 0 0 9 {files[2]}",
    ]


def test_applier__attach_fails_on_a_non_zero_exit_code(scratch: tuple[str, LocalApplier]) -> None:
    stack, applier = scratch
    failing = container(
        stack, command=["sh", "-c", "echo boom; exit 3"], attach=True, mustRun=False
    )
    with pytest.raises(ApplyError, match=r"exited with code 3; its last log lines:\nboom"):
        apply(applier, stack, failing)


def test_applier__a_container_whose_step_failed_is_in_the_state_and_the_next_up_replaces_it(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """A failed (or interrupted) container step left a container the state did not know, and
    the next up refused it, naming `down`, which loses every volume's data."""
    stack, applier = scratch
    state = StackState(stack)
    failing = container(stack, command=["sh", "-c", "exit 3"], attach=True, mustRun=False)
    with pytest.raises(ApplyError, match="exited with code 3"):
        applier.up(plan_stack(stack, [failing], root=Path("/")), state)
    (urn, recorded), *_ = [(u, r) for u, r in state.resources.items() if r.type == CONTAINER]
    assert recorded.outputs.get(INCOMPLETE) is True
    assert recorded.id == docker_client.api.inspect_container(f"{stack}-c")["Id"]
    fixed = container(stack, command=["true"], attach=True, mustRun=False)
    applier.up(plan_stack(stack, [fixed], root=Path("/")), state)
    assert INCOMPLETE not in state.resources[urn].outputs
    assert docker_client.api.inspect_container(f"{stack}-c")["Id"] == state.resources[urn].id
    assert state.resources[urn].id != recorded.id, "the unfinished one was replaced"


def test_applier__a_name_the_engine_refused_is_never_taken_for_the_stacks_container(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """The stack's container removed behind the state's back and its name taken by a container
    of something else: the up that recreates it is refused before it changes anything (since
    2026-12-03; the engine's name conflict part-way before), and so is the next, which must not
    remove the other container as one of the stack's."""
    stack, applier = scratch
    state = StackState(stack)
    plan = plan_stack(stack, [container(stack, command=["true"], attach=True, mustRun=False)],
                      root=Path("/"))  # fmt: skip
    applier.up(plan, state)
    docker_client.api.remove_container(f"{stack}-c", force=True)
    other = docker_client.containers.create(BASE, ["true"], name=f"{stack}-c", network_mode="none")
    try:
        for _ in range(2):
            with pytest.raises(ApplyError, match=f"is not labelled {STACK_LABEL}={stack}"):
                applier.up(plan, state)
        assert docker_client.api.inspect_container(f"{stack}-c")["Id"] == other.id
    finally:
        with contextlib.suppress(NotFound):  # gone when an up removed it
            docker_client.api.remove_container(other.id, force=True)


def test_applier__an_up_interrupted_before_its_create_never_removes_anothers_container(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """The up is interrupted once the state holds the name and before the engine answers the
    create, and meanwhile a container of something else took the name: the next up finds an
    unfinished container by that name, and it is not the stack's (no stack label), so it is
    left alone and the up refused."""
    stack, applier = scratch
    state = StackState(stack)
    plan = plan_stack(stack, [container(stack, command=["true"], attach=True, mustRun=False)],
                      root=Path("/"))  # fmt: skip
    applier.up(plan, state)
    docker_client.api.remove_container(f"{stack}-c", force=True)
    taken: list[Any] = []

    def at_the_name(saved: StackState) -> None:
        if any(
            r.outputs.get(INCOMPLETE) and r.id == f"{stack}-c" for r in saved.resources.values()
        ):
            taken.append(
                docker_client.containers.create(
                    BASE, ["true"], name=f"{stack}-c", network_mode="none"
                )
            )
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            applier.up(plan, state, checkpoint=at_the_name)
        with pytest.raises(ApplyError, match="docker refused the container"):
            applier.up(plan, state)
        (other,) = taken
        assert docker_client.api.inspect_container(f"{stack}-c")["Id"] == other.id
    finally:
        for other in taken:
            with contextlib.suppress(NotFound):  # gone when an up removed it
                docker_client.api.remove_container(other.id, force=True)


def test_applier__an_up_interrupted_right_after_a_create_converges_on_the_next(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """Ctrl-C (KeyboardInterrupt; infra/apply.py turns SIGTERM into one) just before or just
    after the engine created a container: the state already records it, so the next up
    replaces it (on deployed d2six, SIGTERM 3 s into an up did this to redis-init)."""
    stack, applier = scratch
    state = StackState(stack)
    job = container(stack, command=["true"], attach=True, mustRun=False)
    plan = plan_stack(stack, [job], root=Path("/"))

    def interrupt(when: str) -> Callable[[StackState], None]:
        """Ctrl-C at the save that records the container by its name (before the engine
        creates it) or by its ID (the engine created it)."""

        def checkpoint(saved: StackState) -> None:
            for r in saved.resources.values():
                if r.outputs.get(INCOMPLETE) and (r.id == f"{stack}-c") == (when == "name"):
                    raise KeyboardInterrupt

        return checkpoint

    for when in ("name", "id"):
        with pytest.raises(KeyboardInterrupt):
            applier.up(plan, state, checkpoint=interrupt(when))
    applier.up(plan, state)
    (only,) = state.resources.values()
    assert INCOMPLETE not in only.outputs
    found = docker_client.api.inspect_container(f"{stack}-c")
    assert (found["Id"], found["State"]["ExitCode"]) == (only.id, 0)


def test_applier__must_run_container_that_exits_is_an_error(
    scratch: tuple[str, LocalApplier],
) -> None:
    stack, applier = scratch
    with pytest.raises(ApplyError, match="is not running"):
        apply(applier, stack, container(stack, command=["true"]))


def test_applier__wait_reports_healthy(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    stack, applier = scratch
    healthy = container(
        stack,
        command=["sleep", "60"],
        healthcheck={"tests": ["CMD", "true"], "interval": "1s", "retries": 2},
        wait=True,
        waitTimeout=30,
    )
    apply(applier, stack, healthy)
    state = docker_client.api.inspect_container(f"{stack}-c")["State"]
    assert state["Health"]["Status"] == "healthy"


def test_applier__down_removes_every_labelled_object_then_finds_nothing(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    stack, applier = scratch
    label = [{"label": STACK_LABEL, "value": stack}]
    apply(
        applier,
        stack,
        resource(NETWORK, "n", {"name": f"{stack}-n", "labels": label}),
        resource(VOLUME, "v", {"name": f"{stack}-v", "labels": label}),
        container(
            stack,
            networkMode=None,
            networksAdvanced=[{"name": f"{stack}-n", "aliases": ["svc"]}],
            mounts=[{"type": "volume", "source": f"{stack}-v", "target": "/data"}],
            command=["sleep", "60"],
        ),
    )
    found = applier.find(stack)
    assert (found.containers, found.networks, found.volumes) == (
        [f"{stack}-c"],
        [f"{stack}-n"],
        [f"{stack}-v"],
    )
    removed = applier.down(stack)
    assert removed.containers == [f"{stack}-c"]
    assert applier.find(stack).empty()
    assert applier.down(stack).empty(), "a second down finds nothing to remove"


def test_applier__a_stack_container_the_state_does_not_know_is_refused_with_docker_rm(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """The way on keeps the data: remove that container alone, not the stack (`down`)."""
    stack, applier = scratch
    docker_client.containers.create(BASE, ["true"], name=f"{stack}-c", labels={STACK_LABEL: stack})
    job = container(stack, command=["true"], attach=True, mustRun=False)
    with pytest.raises(ApplyError, match="state does not know it") as refused:
        applier.up(plan_stack(stack, [job], root=Path("/")), StackState(stack))
    assert f"`docker rm -f {stack}-c` (its volumes and their data are kept)" in str(refused.value)
    assert "down" not in str(refused.value)


def test_applier__up_refuses_to_replace_an_unlabelled_object_with_the_same_name(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    stack, applier = scratch
    foreign = docker_client.networks.create(f"{stack}-n")  # not labelled as the stack's
    try:
        with pytest.raises(ApplyError, match="already exists and is not labelled"):
            apply(
                applier,
                stack,
                resource(
                    NETWORK,
                    "n",
                    {"name": f"{stack}-n", "labels": [{"label": STACK_LABEL, "value": stack}]},
                ),
            )
    finally:
        foreign.remove()


def _shared_name(client: docker.DockerClient, name: str, **labels: str) -> Any:
    """A network under a name one already has, as a client that does not ask the engine to
    check (the API's CheckDuplicate is off by default on Docker 20.10) creates it."""
    return client.networks.create(name, labels=labels or None, check_duplicate=False)


def test_applier__a_network_name_two_networks_share_is_refused_naming_both(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """Before 2026-12-03 the up failed on the engine's own "2 matches found based on name:
    network ... is ambiguous" (a docker APIError, no ID, no way on)."""
    stack, applier = scratch
    name = f"{stack}-n"
    first = _shared_name(docker_client, name)
    second = _shared_name(docker_client, name, **{STACK_LABEL: "someone-else"})
    label = [{"label": STACK_LABEL, "value": stack}]
    try:
        with pytest.raises(ApplyError, match=f"2 networks are named {name}") as refused:
            apply(applier, stack, resource(NETWORK, "n", {"name": name, "labels": label}))
        message = str(refused.value)
        assert f"{first.id[:12]} (no {STACK_LABEL} label)" in message
        assert f"{second.id[:12]} ({STACK_LABEL}=someone-else)" not in message
        assert f"{second.id[:12]} (labelled {STACK_LABEL}=someone-else)" in message
        removal = message.split("`docker network rm ", 1)[1].split("`", 1)[0]
        assert sorted(removal.split()) == sorted([first.id[:12], second.id[:12]])
        assert "the up then creates the stack's own" in message
        assert "nothing was changed" in message
        assert len(docker_client.networks.list(names=[name])) == 2  # neither touched
    finally:
        first.remove()
        second.remove()


def test_applier__a_network_sharing_the_stacks_network_name_is_refused_before_any_change(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """A deployed stack, then another network under its network's name: a replaced container
    was removed and its successor refused to start ("network ... is ambiguous"), leaving the
    stack without it. Now the up changes nothing and names which one to remove."""
    stack, applier = scratch
    name = f"{stack}-n"
    label = [{"label": STACK_LABEL, "value": stack}]
    network = resource(NETWORK, "n", {"name": name, "labels": label})

    def job(word: str) -> RenderedResource:
        return container(
            stack,
            command=["sh", "-c", "sleep 300", word],
            networkMode=None,
            networksAdvanced=[{"name": name}],
        )

    state = StackState(stack)
    applier.up(plan_stack(stack, [network, job("one")], root=Path("/")), state)
    ours = docker_client.networks.list(names=[name])[0]
    running = docker_client.containers.get(f"{stack}-c").id
    intruder = _shared_name(docker_client, name)
    try:
        with pytest.raises(ApplyError, match=f"2 networks are named {name}") as refused:
            applier.up(plan_stack(stack, [network, job("two")], root=Path("/")), state)
        message = str(refused.value)
        assert f"{ours.id[:12]} (the stack's, the one its state records)" in message
        assert f"`docker network rm {intruder.id[:12]}`; keep {ours.id[:12]}" in message
        assert docker_client.containers.get(f"{stack}-c").id == running  # not replaced
    finally:
        intruder.remove()
    applier.up(plan_stack(stack, [network, job("two")], root=Path("/")), state)
    assert docker_client.containers.get(f"{stack}-c").status == "running"


def image(tmp_path: Path, stack: str, tag: str, *, labelled: bool = True) -> RenderedResource:
    context = tmp_path / tag.replace(":", "-")
    context.mkdir()
    label = "ARG SECURE_REDIS_STACK=unset\nLABEL io.secure-redis.stack=$SECURE_REDIS_STACK\n"
    # A content change per tag, as a changed build context would make.
    body = f"FROM {BASE}\nLABEL e2e.build={tag}\n{label if labelled else ''}"
    (context / "Dockerfile").write_text(body)
    props = {
        "imageName": f"{stack}-img:{tag}",
        "skipPush": True,
        "build": {"context": str(context), "args": {"SECURE_REDIS_STACK": stack}},
    }
    return resource(IMAGE, f"img-{tag}", props)


def test_applier__builds_the_declared_tags_and_down_removes_every_stack_image(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack, applier = scratch
    apply(applier, stack, image(tmp_path, stack, "one"))
    assert applier.find(stack).images == [f"{stack}-img:one"]
    # A changed context: the new tag is built; the old image stays as build cache until down.
    apply(applier, stack, image(tmp_path, stack, "two"))
    assert sorted(applier.find(stack).images) == [f"{stack}-img:one", f"{stack}-img:two"]
    labels = docker_client.api.inspect_image(f"{stack}-img:two")["Config"]["Labels"]
    assert labels[STACK_LABEL] == stack
    applier.down(stack)
    assert applier.find(stack).images == []


def _parents(client: docker.DockerClient, image_id: str) -> list[str]:
    """The untagged images an image was built on (the legacy builder's one per step), newest
    first, down to the first tagged one (the base)."""
    chain: list[str] = []
    while parent := client.api.inspect_image(image_id).get("Parent"):
        if client.api.inspect_image(parent).get("RepoTags"):
            break
        chain.append(parent)
        image_id = parent
    return chain


def test_down__removes_the_stacks_images_but_not_the_parents_a_concurrent_build_uses(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """The untagged images a stack's image was built on are build cache every build of the same
    Dockerfile steps shares (another stack's, scripts/build-app-image.sh --cache-only): a build
    that found one in its cache goes on from it. `down` removed them with the stack's image
    (the engine prunes a removed image's untagged parents that have no other child), so a
    build running beside it could lose the image its next step starts from. Now `down` removes
    the stack's images only (`docker rmi --no-prune`), and their parents only while no build
    holds the build lock: with one holding it (shared, as every build does), the parents
    stay, and the next build of another stack goes on from them (every step but its own label
    from the cache)."""
    stack, applier = scratch
    applier.build_lock = tmp_path / "builds.lock"
    apply(applier, stack, image(tmp_path, stack, "parents"))
    built = str(docker_client.api.inspect_image(f"{stack}-img:parents")["Id"])
    parents = _parents(docker_client, built)
    assert len(parents) >= 2, "the legacy builder keeps an image per step"
    other = f"{stack}-b"
    running = subprocess.Popen(  # the build beside the down: `flock -s LOCK docker build ...`
        ["flock", "-s", str(applier.build_lock), "sleep", "300"], start_new_session=True
    )
    try:
        _wait_for_holder(applier.build_lock)
        applier.down(stack)
        assert applier.find(stack).images == []
        with pytest.raises(NotFound):
            docker_client.api.inspect_image(built)
        gone = [p for p in parents if not _image_exists(docker_client, p)]
        assert gone == [], f"down removed {len(gone)} of the {len(parents)} parents"
        # The same steps for another stack (the context's Dockerfile, another stack label).
        props = {
            "imageName": f"{other}-img:parents",
            "skipPush": True,
            "build": {"context": str(tmp_path / "parents"), "args": {"SECURE_REDIS_STACK": other}},
        }
        apply(applier, other, resource(IMAGE, "img-parents", props))
        theirs = str(docker_client.api.inspect_image(f"{other}-img:parents")["Id"])
        assert _parents(docker_client, theirs) == parents  # built on the very same cache
    finally:
        running.kill()
        running.wait(timeout=30)
        applier.down(other, quiet=True)
        for parent in parents:  # this test's own cache (its label is this test's alone)
            with contextlib.suppress(NotFound, APIError):
                docker_client.api.remove_image(parent, noprune=True)


def _image_exists(client: docker.DockerClient, image_id: str) -> bool:
    try:
        client.api.inspect_image(image_id)
    except NotFound:
        return False
    return True


def _two_stage_image(context: Path, stack: str, build: str) -> RenderedResource:
    """An image whose parents are partly shared by every stack (before the stack's ARG) and
    partly its own (after it), as app/Dockerfile's are (its uid ARG is a slot's)."""
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(
        f"FROM {BASE}\nLABEL e2e.build={build}\nLABEL e2e.shared=yes\n"
        "ARG SECURE_REDIS_STACK=unset\nLABEL e2e.own=$SECURE_REDIS_STACK\n"
        "LABEL e2e.own2=$SECURE_REDIS_STACK\nLABEL io.secure-redis.stack=$SECURE_REDIS_STACK\n"
    )
    props = {
        "imageName": f"{stack}-img:two-stage",
        "skipPush": True,
        "build": {"context": str(context), "args": {"SECURE_REDIS_STACK": stack}},
    }
    return resource(IMAGE, "img-two-stage", props)


def test_down__removes_the_untagged_parents_only_its_images_had_and_says_what_it_freed(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """`down` (`docker rmi --no-prune`) left every untagged parent of the stack's images as a
    dangling image (on s98: 38 images, 55 MB). Now, while holding the image-build lock
    exclusively (no build runs), it also removes the parents its images were the last child
    of; those another stack's image still has as a parent stay, and so does the base."""
    if not docker_client.images.list(name=BASE):
        pytest.skip(f"{BASE} is not present; run scripts/bootstrap-base-image.sh")
    build = uuid.uuid4().hex[:8]
    ours, theirs = f"e2e-{build}-a", f"e2e-{build}-b"
    messages: list[str] = []
    applier = LocalApplier(docker_client, say=messages.append, build_lock=tmp_path / "builds.lock")
    context = tmp_path / "ctx"
    chains: dict[str, list[str]] = {}
    try:
        for stack in (ours, theirs):
            apply(applier, stack, _two_stage_image(context, stack, build))
            built = str(docker_client.api.inspect_image(f"{stack}-img:two-stage")["Id"])
            chains[stack] = _parents(docker_client, built)
        shared = [p for p in chains[ours] if p in chains[theirs]]
        own = [p for p in chains[ours] if p not in chains[theirs]]
        assert len(shared) >= 2, (shared, own)
        assert len(own) >= 2, (shared, own)
        messages.clear()
        applier.down(ours)
        assert [p for p in own if _image_exists(docker_client, p)] == [], "own parents left"
        assert all(_image_exists(docker_client, p) for p in chains[theirs])
        assert any(f"{len(own)} untagged parent images" in m and "MB" in m for m in messages), (
            messages
        )
        applier.down(theirs)
        assert [p for p in chains[theirs] if _image_exists(docker_client, p)] == []
        assert docker_client.images.list(name=BASE)
    finally:
        for stack in (ours, theirs):
            applier.down(stack, quiet=True)
        for parent in {p for chain in chains.values() for p in chain}:
            with contextlib.suppress(NotFound, APIError):
                docker_client.api.remove_image(parent, noprune=True)


def test_down__keeps_the_parents_while_an_image_build_holds_the_build_lock(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """A build that found a parent in its cache goes on from it: while any build holds the
    lock (shared, as scripts/build-app-image.sh and the applier's builds take it), `down`
    removes no parent and says how to reclaim them later."""
    if not docker_client.images.list(name=BASE):
        pytest.skip(f"{BASE} is not present; run scripts/bootstrap-base-image.sh")
    build = uuid.uuid4().hex[:8]
    stack = f"e2e-{build}-a"
    lock = tmp_path / "builds.lock"
    messages: list[str] = []
    applier = LocalApplier(docker_client, say=messages.append, build_lock=lock)
    parents: list[str] = []
    try:
        apply(applier, stack, _two_stage_image(tmp_path / "ctx", stack, build))
        built = str(docker_client.api.inspect_image(f"{stack}-img:two-stage")["Id"])
        parents = _parents(docker_client, built)
        holder = subprocess.Popen(  # a build elsewhere: `flock -s LOCK docker build ...`
            ["flock", "-s", str(lock), "sleep", "300"], start_new_session=True
        )
        try:
            _wait_for_holder(lock)
            applier.down(stack)
        finally:
            holder.kill()
            holder.wait(timeout=30)
        assert all(_image_exists(docker_client, p) for p in parents)
        assert any("an image build is running" in m for m in messages), messages
    finally:
        applier.down(stack, quiet=True)
        for parent in parents:
            with contextlib.suppress(NotFound, APIError):
                docker_client.api.remove_image(parent, noprune=True)


def _wait_for_holder(lock: Path) -> None:
    """Until `flock -s` holds `lock` (an exclusive try fails), polled without a deadline of
    its own: the test's timeout bounds it."""
    while True:
        free = subprocess.run(["flock", "-n", "-x", str(lock), "true"], check=False)
        if free.returncode != 0:
            return
        threading.Event().wait(0.05)


def test_applier__image_without_the_stack_label_is_refused_and_not_left_behind(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack, applier = scratch
    with pytest.raises(ApplyError, match=f"has no label {STACK_LABEL}={stack}"):
        apply(applier, stack, image(tmp_path, stack, "bare", labelled=False))
    assert not docker_client.images.list(name=f"{stack}-img")


def test_applier__a_rebuild_into_the_same_image_keeps_its_container_running(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """The same build context at another path (a checkout moved or cloned elsewhere) changes
    the image's declaration and rebuilds it, into the same image ID: its container is kept,
    as the engine keeps a container whose image input (the repoDigest) did not change. A
    changed context gives another image, and the container is replaced."""
    stack, applier = scratch
    state = StackState(stack)

    def deploy(context: Path, content: str) -> str:
        context.mkdir(exist_ok=True)
        (context / "Dockerfile").write_text(
            f"FROM {BASE}\nLABEL e2e.content={content}\n"
            "ARG SECURE_REDIS_STACK=unset\nLABEL io.secure-redis.stack=$SECURE_REDIS_STACK\n"
        )
        digest = "sha256:" + "0" * 64  # the render's placeholder for the built image's ID
        built = declared(
            IMAGE,
            "img",
            {
                "imageName": f"{stack}-img:{content}",
                "skipPush": True,
                "build": {"context": str(context), "args": {"SECURE_REDIS_STACK": stack}},
            },
            outputs={"repoDigest": digest},
        )
        running = container(stack, image=digest, command=["sleep", "600"])
        applied = applier.up(plan_stack(stack, [built, running], root=Path("/")), state)
        cid = str(docker_client.api.inspect_container(f"{stack}-c")["Id"])
        kept.append(bool(applied.kept))
        return cid

    kept: list[bool] = []

    first = deploy(tmp_path / "checkout-a", "one")
    assert deploy(tmp_path / "checkout-b", "one") == first, "same image: container replaced"
    assert docker_client.api.inspect_container(first)["State"]["Running"]
    changed = deploy(tmp_path / "checkout-b", "two")
    assert changed != first, "another image: the container must run it"
    image = docker_client.api.inspect_container(changed)["Image"]
    assert docker_client.api.inspect_image(image)["Config"]["Labels"]["e2e.content"] == "two"
    assert kept == [False, True, False], "up reports the container it kept, and only that one"


def rebuilt(tmp_path: Path, stack: str, content: str, generation: str) -> list[RenderedResource]:
    """An image of `content` and a container running it (its environment `generation`)."""
    context = tmp_path / content
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(
        f"FROM {BASE}\nLABEL e2e.content={content}\n"
        "ARG SECURE_REDIS_STACK=unset\nLABEL io.secure-redis.stack=$SECURE_REDIS_STACK\n"
    )
    digest = "sha256:" + "0" * 64  # the render's placeholder for the built image's ID
    props = {
        "imageName": f"{stack}-img:{content}",
        "skipPush": True,
        "build": {"context": str(context), "args": {"SECURE_REDIS_STACK": stack}},
    }
    return [
        declared(IMAGE, "img", props, outputs={"repoDigest": digest}),
        container(stack, image=digest, command=["sleep", "600"], envs=[f"G={generation}"]),
    ]


def running_id(client: docker.DockerClient, name: str) -> str | None:
    """The ID of the container `name` when it runs, else None."""
    try:
        found = client.api.inspect_container(name)
    except NotFound:
        return None
    return str(found["Id"]) if found["State"]["Running"] else None


def assert_state_matches_engine(client: docker.DockerClient, stack: str, state: StackState) -> None:
    """Every container the state records is on the engine under that ID, finished, and every
    container of the stack's on the engine is recorded."""
    recorded = {r.id for r in state.resources.values() if r.type == CONTAINER}
    label = {"label": f"{STACK_LABEL}={stack}"}
    assert recorded == {c.id for c in client.containers.list(all=True, filters=label)}
    assert not [r for r in state.resources.values() if r.outputs.get(INCOMPLETE)]


def test_applier__a_container_replaced_with_its_image_runs_until_the_image_is_built(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """A container replaced for a changed setting by the up that also rebuilds its image keeps
    running through the build and is removed just before its successor is created. Before,
    every replaced container was removed before the first step: the stack's app was down for
    its image's whole build (20-60 s here)."""
    stack, _applier = scratch
    seen: list[tuple[str, str | None]] = []

    def say(message: str) -> None:
        if message.startswith(("building image", "removing container")):
            seen.append((message.split(maxsplit=1)[0], running_id(docker_client, f"{stack}-c")))

    applier = LocalApplier(docker_client, say=say, poll_interval_s=0.2)
    state = StackState(stack)
    applier.up(plan_stack(stack, rebuilt(tmp_path, stack, "one", "1"), root=Path("/")), state)
    old = running_id(docker_client, f"{stack}-c")
    assert old is not None
    seen.clear()
    applier.up(plan_stack(stack, rebuilt(tmp_path, stack, "two", "2"), root=Path("/")), state)
    assert seen == [("building", old), ("removing", old)], "removed before its image was built"
    successor = docker_client.containers.get(f"{stack}-c")
    assert successor.id != old
    assert "G=2" in successor.attrs["Config"]["Env"]
    image = docker_client.api.inspect_image(successor.attrs["Image"])
    assert image["Config"]["Labels"]["e2e.content"] == "two"
    assert_state_matches_engine(docker_client, stack, state)


def test_applier__a_replacement_interrupted_during_the_build_or_after_the_removal_converges(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """Ctrl-C while the replaced container's image builds: the old container still runs and
    the state still records it; Ctrl-C once its step removed it (at the save that forgets
    it): neither the engine nor the state has it. Each time the state matches the engine, and
    the next up finishes the replacement."""
    stack, applier = scratch
    state = StackState(stack)
    applier.up(plan_stack(stack, rebuilt(tmp_path, stack, "one", "1"), root=Path("/")), state)
    old = running_id(docker_client, f"{stack}-c")
    changed = plan_stack(stack, rebuilt(tmp_path, stack, "two", "2"), root=Path("/"))

    def ctrl_c_at_the_build(message: str) -> None:
        if message.startswith("building image"):
            raise KeyboardInterrupt

    building = LocalApplier(docker_client, say=ctrl_c_at_the_build, poll_interval_s=0.2)
    with pytest.raises(KeyboardInterrupt):
        building.up(changed, state)
    assert running_id(docker_client, f"{stack}-c") == old, "removed before its image was built"
    assert state.resources["urn:c"].id == old
    assert_state_matches_engine(docker_client, stack, state)

    def ctrl_c_once_forgotten(saved: StackState) -> None:
        if "urn:c" not in saved.resources:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        applier.up(changed, state, checkpoint=ctrl_c_once_forgotten)
    assert "urn:c" not in state.resources
    assert_state_matches_engine(docker_client, stack, state)

    applier.up(changed, state)
    successor = docker_client.containers.get(f"{stack}-c")
    assert (successor.id, successor.attrs["State"]["Running"]) == (
        state.resources["urn:c"].id,
        True,
    )
    assert "G=2" in successor.attrs["Config"]["Env"]
    assert_state_matches_engine(docker_client, stack, state)


def test_applier__a_memory_change_updates_the_running_container_in_place(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """pulumi-docker changes memory, memorySwap and the restart policy on the running container
    (infra/applier/diff.py IN_PLACE), and so does the applier: the same container, never
    stopped, what it holds in memory kept, with the new limits in force."""
    stack, applier = scratch
    state = StackState(stack)

    def limited(memory_mb: int, retries: int) -> RenderedResource:
        return container(
            stack,
            command=["sh", "-c", "echo kept > /dev/shm/mark && exec sleep 600"],
            memory=memory_mb,
            memorySwap=memory_mb,
            restart="on-failure",
            maxRetryCount=retries,
        )

    applier.up(plan_stack(stack, [limited(64, 5)], root=Path("/")), state)
    before = docker_client.api.inspect_container(f"{stack}-c")
    changed = plan_stack(stack, [limited(96, 3)], root=Path("/"))
    (change,) = docker_changes(changed, state.resources)
    assert (change.op, change.reasons) == (Op.UPDATE, ("maxRetryCount", "memory", "memorySwap"))
    applier.up(changed, state)
    after = docker_client.api.inspect_container(f"{stack}-c")
    assert after["Id"] == before["Id"] == state.resources[change.urn].id
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert after["State"]["Pid"] == before["State"]["Pid"], "the process was restarted"
    host = after["HostConfig"]
    assert (host["Memory"], host["MemorySwap"]) == (96 * 1024 * 1024, 96 * 1024 * 1024)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    kept = exec_run(docker_client.containers.get(f"{stack}-c"), ["cat", "/dev/shm/mark"])
    assert kept.output.decode().strip() == "kept"
    again = docker_changes(changed, state.resources, applier.missing(changed, state))
    assert [c.op for c in again] == [Op.SAME], "the state records the new declaration"


def test_applier__a_replaced_container_with_destroy_grace_seconds_is_stopped_before_removal(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """pulumi-docker stops a container declaring `destroyGraceSeconds` (SIGTERM, then that
    long) before it removes it, and so does the applier: a replaced app finishes the requests
    it is serving instead of being killed mid-answer. The old container's SIGTERM handler
    leaves a mark on the volume its successor mounts."""
    stack, applier = scratch
    label = [{"label": STACK_LABEL, "value": stack}]
    trap = "trap 'echo stopped > /data/mark; exit 0' TERM; while :; do sleep 0.1; done"

    def declaration(generation: str) -> list[RenderedResource]:
        return [
            resource(VOLUME, "v", {"name": f"{stack}-v", "labels": label}),
            container(
                stack,
                command=["sh", "-c", trap],
                envs=[f"GENERATION={generation}"],
                mounts=[{"type": "volume", "source": f"{stack}-v", "target": "/data"}],
                destroyGraceSeconds=10,
            ),
        ]

    state = StackState(stack)
    applier.up(plan_stack(stack, declaration("1"), root=Path("/")), state)
    applier.up(plan_stack(stack, declaration("2"), root=Path("/")), state)
    successor = docker_client.containers.get(f"{stack}-c")
    assert successor.attrs["Config"]["Env"][0] == "GENERATION=2"
    mark = exec_run(successor, ["cat", "/data/mark"])
    assert (mark.exit_code, mark.output.decode().strip()) == (0, "stopped"), (
        "the replaced container was killed without its SIGTERM"
    )


def job(stack: str, name: str, script: str, deps: tuple[str, ...] = ()) -> RenderedResource:
    """A run-to-completion container of `stack` running `script`, with the volume {stack}-v
    at /data."""
    props = {
        "name": f"{stack}-{name}",
        "image": BASE,
        "labels": [{"label": STACK_LABEL, "value": stack}],
        "networkMode": "none",
        "mounts": [{"type": "volume", "source": f"{stack}-v", "target": "/data"}],
        "command": ["sh", "-c", script],
        "attach": True,
        "mustRun": False,
    }
    return declared(CONTAINER, name, props, deps=deps)


def test_applier__independent_steps_run_at_once_and_dependents_after(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """As Pulumi's engine does (infra/applier/schedule.py): two run-to-completion containers
    that need nothing of each other run at the same time (each waits for the other's mark on
    a shared volume, so one run alone times out and exits 1); a third that declares a
    dependency on both starts only after they finished (it finds both their marks)."""
    stack, applier = scratch
    label = [{"label": STACK_LABEL, "value": stack}]

    def meets(me: str, other: str) -> str:
        return (
            f"touch /data/{me}; i=0; until [ -e /data/{other} ]; do "
            f"i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1; done; touch /data/{me}-done"
        )

    apply(
        applier,
        stack,
        resource(VOLUME, "v", {"name": f"{stack}-v", "labels": label}),
        job(stack, "left", meets("left", "right")),
        job(stack, "right", meets("right", "left")),
        job(
            stack,
            "after",
            "test -e /data/left-done && test -e /data/right-done",
            deps=("left", "right"),
        ),
    )
    for name in ("left", "right", "after"):
        state = docker_client.api.inspect_container(f"{stack}-{name}")["State"]
        assert state["ExitCode"] == 0, name


def test_applier__an_interrupt_stops_the_steps_in_flight_and_the_next_up_finishes_them(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """Ctrl-C while one step waits for its container (run to completion) and another ends: the
    up stops waiting at once (the container is still running when it returns), the state
    records the waiting one as unfinished, and the next up replaces it and finishes."""
    stack, applier = scratch
    label = [{"label": STACK_LABEL, "value": stack}]
    resources = [
        resource(VOLUME, "v", {"name": f"{stack}-v", "labels": label}),
        job(stack, "waiting", "touch /data/started; until [ -e /data/go ]; do sleep 0.1; done"),
        job(stack, "quick", "until [ -e /data/started ]; do sleep 0.1; done"),
    ]
    plan = plan_stack(stack, resources, root=Path("/"))
    state = StackState(stack)

    def interrupt_once_quick_is_done(saved: StackState) -> None:
        quick = saved.resources.get("urn:quick")
        if quick is not None and INCOMPLETE not in quick.outputs:
            raise KeyboardInterrupt

    outcome: list[BaseException] = []

    def interrupted_up() -> None:
        try:
            applier.up(plan, state, checkpoint=interrupt_once_quick_is_done)
        except BaseException as exc:  # asserted below, KeyboardInterrupt included
            outcome.append(exc)

    runner = threading.Thread(target=interrupted_up, daemon=True)
    runner.start()
    runner.join(timeout=120)  # a bound against a hang, not a measurement
    assert not runner.is_alive(), "the interrupted up kept waiting for its container"
    assert [type(exc) for exc in outcome] == [KeyboardInterrupt]
    waiting = docker_client.containers.get(f"{stack}-waiting")
    assert waiting.attrs["State"]["Running"], "the up waited for the container to end"
    assert state.resources["urn:waiting"].outputs.get(INCOMPLETE)
    assert exec_run(waiting, ["touch", "/data/go"]).exit_code == 0
    applier.up(plan, state)
    assert not [r for r in state.resources.values() if r.outputs.get(INCOMPLETE)]
    finished = docker_client.api.inspect_container(f"{stack}-waiting")
    assert (finished["Id"], finished["State"]["ExitCode"]) == (state.resources["urn:waiting"].id, 0)


def test_applier__an_interrupt_does_not_wait_for_a_silent_build(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """Ctrl-C while a build runs a step that prints nothing for two minutes: `up` (in a
    process of its own, as `python -m infra.apply up` runs) ends while that step still runs
    instead of waiting for the build's next line (before, it ended only after the step), and
    the engine drops the build whose client went away, so no image is left."""
    stack, _applier = scratch
    context = tmp_path / "slow"
    context.mkdir()
    # The label last, as the stack's Dockerfiles have it: the silent step's build container
    # is not the stack's (down would race the engine removing it). The stack's name in the
    # step makes it new to the engine's build cache: a cached step prints at once (a second
    # run on one engine built the image in 0.4 s and the interrupt came too late).
    (context / "Dockerfile").write_text(
        f"FROM {BASE}\nRUN : {stack} && sleep 120\nARG SECURE_REDIS_STACK=unset\n"
        "LABEL io.secure-redis.stack=$SECURE_REDIS_STACK\n"
    )
    script = textwrap.dedent(
        """
        import signal, sys, threading
        from pathlib import Path

        import docker

        from infra.applier.engine import LocalApplier
        from infra.applier.plan import Plan, plan_stack
        from infra.pulumi_names import IMAGE
        from tests.support.resources import declared

        stack, context = sys.argv[1], sys.argv[2]
        main = threading.main_thread().ident

        def ctrl_c():
            signal.pthread_kill(main, signal.SIGINT)

        def say(message):
            print(message, flush=True)
            if "sleep 120" in message:
                # Once the step's container runs (its "Running in" line follows at once),
                # the build prints nothing for two minutes: Ctrl-C then.
                threading.Timer(5, ctrl_c).start()

        build = {"context": context, "args": {"SECURE_REDIS_STACK": stack}}
        props = {"imageName": f"{stack}-img:slow", "skipPush": True, "build": build}
        plan = plan_stack(stack, [declared(IMAGE, "img-slow", props)], root=Path("/"))
        client = docker.from_env()
        try:
            LocalApplier(client, say=say).up(plan)
        except KeyboardInterrupt:
            silent = [
                c for c in client.containers.list(filters={"status": "running"})
                if "sleep 120" in " ".join(c.attrs["Config"]["Cmd"] or ())
            ]
            print(f"interrupted while the silent step ran: {bool(silent)}", flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, stack, str(context)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a bound against a hang, not a measurement
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "interrupted while the silent step ran: True"
    assert not docker_client.images.list(name=f"{stack}-img"), "the build was not dropped"


def test_down__stops_a_container_with_destroy_grace_seconds_before_removing_it(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """`pulumi destroy` deletes a container declaring `destroyGraceSeconds` as the provider
    does (its stop signal, then that grace, then the removal); `down` removed it at once, so
    the app never logged its graceful stop. Its output is read as it happens: the container,
    and its log with it, is gone when down returns."""
    stack, applier = scratch
    trap = "trap 'echo stopped-gracefully; exit 0' TERM; echo serving; while :; do sleep 0.1; done"
    state = StackState(stack)
    applier.up(
        plan_stack(
            stack,
            [container(stack, command=["sh", "-c", trap], destroyGraceSeconds=10)],
            root=Path("/"),
        ),
        state,
    )
    stream = docker_client.api.logs(f"{stack}-c", stream=True, follow=True)
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.extend(stream), daemon=True)
    reader.start()
    removed = applier.down(stack, recorded=state, quiet=True)
    reader.join(timeout=30)
    assert removed.containers == [f"{stack}-c"]
    assert b"stopped-gracefully" in b"".join(output), b"".join(output)


class _CuttableEngine:
    """A unix socket that passes every byte to and from the Docker engine's own until `cut`:
    then every connection through it ends, as when the engine goes away mid-up (a restart of
    the engine, a remote engine's network)."""

    def __init__(self, path: Path, engine: str) -> None:
        self.path, self.engine = path, engine
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # cut
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.engine)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()


def test_applier__the_engine_going_away_mid_build_is_an_apply_error_naming_the_image(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """The engine's connection ends while an image builds: the up fails with an ApplyError
    naming the image and what was raised, which `python -m infra.apply up` prints as its one
    line and exit 3. Before, the read of the build's output raised urllib3's ProtocolError,
    which no step turned into an ApplyError: the command ended in a traceback."""
    stack, _applier = scratch
    engine = str(docker_client.api.base_url)
    if engine != "http+docker://localhost":
        pytest.skip("needs the engine's local unix socket")
    proxy = _CuttableEngine(tmp_path / "engine.sock", "/var/run/docker.sock")
    context = tmp_path / "slow"
    context.mkdir()
    # The stack's name in the step: new to the engine's build cache, so it runs (and is
    # running when the connection is cut).
    (context / "Dockerfile").write_text(
        f"FROM {BASE}\nRUN : {stack} && sleep 60\nARG SECURE_REDIS_STACK=unset\n"
        "LABEL io.secure-redis.stack=$SECURE_REDIS_STACK\n"
    )

    def say(message: str) -> None:
        if "sleep 60" in message:
            proxy.cut()

    client = docker.DockerClient(base_url=f"unix://{proxy.path}", timeout=120)
    build = {"context": str(context), "args": {"SECURE_REDIS_STACK": stack}}
    props = {"imageName": f"{stack}-img:slow", "skipPush": True, "build": build}
    plan = plan_stack(stack, [resource(IMAGE, "img-slow", props)], root=Path("/"))
    try:
        with pytest.raises(ApplyError) as failed:
            LocalApplier(client, say=say).up(plan)
    finally:
        proxy.cut()
    message = str(failed.value)
    assert message.startswith(f"image {stack}-img:slow: "), message
    assert "\n" not in message


@pytest.mark.parametrize("kind", [NETWORK, VOLUME], ids=["network", "volume"])
def test_applier__an_interrupt_between_creating_a_network_or_volume_and_recording_it(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, kind: str
) -> None:
    """A second Ctrl-C (or SIGTERM) after the engine created a network or volume and before
    the state recorded it as done: the state saved until then records it by name as
    unfinished, so the next up takes it on (before, the state did not know it and the next
    up refused it as an object of the stack's the state does not know, naming down, which
    loses the data)."""
    stack, applier = scratch
    name = f"{stack}-o"
    label = [{"label": STACK_LABEL, "value": stack}]
    plan = plan_stack(stack, [resource(kind, "o", {"name": name, "labels": label})],
                      root=Path("/"))  # fmt: skip

    def found() -> list[Any]:
        if kind == NETWORK:
            return list(docker_client.networks.list(names=[name]))
        return [v for v in docker_client.volumes.list(filters={"name": name}) if v.name == name]

    saved: list[StackState] = [StackState(stack)]

    def interrupt_at_done(state: StackState) -> None:
        done = state.resources.get("urn:o")
        if done is not None and INCOMPLETE not in done.outputs:
            raise KeyboardInterrupt  # the save that would record it done: never made
        saved.append(StackState(stack, dict(state.resources)))

    with pytest.raises(KeyboardInterrupt):
        applier.up(plan, StackState(stack), checkpoint=interrupt_at_done)
    assert found(), "the engine had not created it when the interrupt came"
    state = saved[-1]  # what the state file holds
    applier.up(plan, state)
    assert INCOMPLETE not in state.resources["urn:o"].outputs
    assert len(found()) == 1


def test_applier__an_unfinished_network_held_by_another_is_refused_and_left_alone(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """The state records a network as unfinished (an up interrupted before the engine answered
    its create) and a network not labelled as the stack's holds the name: never removed."""
    stack, applier = scratch
    label = [{"label": STACK_LABEL, "value": stack}]
    plan = plan_stack(
        stack, [resource(NETWORK, "n", {"name": f"{stack}-n", "labels": label})], root=Path("/")
    )
    state = StackState(stack)

    def interrupt_at_the_name(saved: StackState) -> None:
        if any(r.outputs.get(INCOMPLETE) for r in saved.resources.values()):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        applier.up(plan, state, checkpoint=interrupt_at_the_name)
    assert not docker_client.networks.list(names=[f"{stack}-n"])
    foreign = docker_client.networks.create(f"{stack}-n")  # not labelled as the stack's
    try:
        with pytest.raises(ApplyError, match="already exists and is not labelled"):
            applier.up(plan, state)
        assert [n.id for n in docker_client.networks.list(names=[f"{stack}-n"])] == [foreign.id]
    finally:
        foreign.remove()


def test_applier__a_container_changed_behind_its_back_is_set_back_by_the_next_up(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, planner: LocalApplier
) -> None:
    """Drift the state cannot see (attack pass of 2026-12-03, infra/applier/drift.py): what
    `docker update` changed is updated back in place (same container, never stopped); a
    network joined by hand, a rename, or a container removed and made again by hand under the
    same name and labels with a capability added, is replaced by the declared one. Each `up`
    says what drifted, by field name; the plan before it says the same, changing nothing
    (`planner`), and nothing once the up has set it back. One made again without the stack's
    label is refused by the up before any change, and the plan says so."""
    stack, applier = scratch
    label = [{"label": STACK_LABEL, "value": stack}]
    network = resource(NETWORK, "n", {"name": f"{stack}-n", "labels": label})
    limited = container(
        stack,
        command=["sleep", "600"],
        memory=64,
        memorySwap=64,
        restart="on-failure",
        maxRetryCount=5,
        networkMode=None,
        networksAdvanced=[{"name": f"{stack}-n"}],
        capabilities={"drops": ["ALL"]},
    )
    plan = plan_stack(stack, [network, limited], root=Path("/"))
    state = StackState(stack)
    messages: list[str] = []
    applier.say = messages.append
    applier.up(plan, state)
    name = f"{stack}-c"
    first = docker_client.api.inspect_container(name)

    docker_client.api.update_container(
        name, mem_limit="128m", memswap_limit="128m", restart_policy={"Name": "always"}
    )
    assert planned(planner, plan, state) == [
        (Op.SAME, ()),
        (
            Op.UPDATE,
            (
                "changed on the engine since the last up: HostConfig.Memory, "
                "HostConfig.MemorySwap, HostConfig.RestartPolicy",
            ),
        ),
    ]
    planned_host = docker_client.api.inspect_container(name)["HostConfig"]
    assert planned_host["Memory"] == 128 << 20, "the plan changed the container"
    (change,) = [c for c in applier.changes(plan, state) if c.op is not Op.SAME]
    assert change.op is Op.UPDATE
    applier.up(plan, state)
    host = docker_client.api.inspect_container(name)
    assert host["Id"] == first["Id"]
    assert host["State"]["Pid"] == first["State"]["Pid"]
    assert (host["HostConfig"]["Memory"], host["HostConfig"]["MemorySwap"]) == (64 << 20,) * 2
    assert host["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}

    assert planned(planner, plan, state) == [(Op.SAME, ())] * 2
    docker_client.networks.get("bridge").connect(name)
    assert planned(planner, plan, state)[1] == (
        Op.REPLACE,
        ("changed on the engine since the last up: NetworkSettings.Networks",),
    )
    assert docker_client.api.inspect_container(name)["Id"] == first["Id"]
    applier.up(plan, state)
    networks = docker_client.api.inspect_container(name)["NetworkSettings"]["Networks"]
    assert set(networks) == {f"{stack}-n"}
    assert planned(planner, plan, state) == [(Op.SAME, ())] * 2

    renamed = f"{stack}-renamed"
    docker_client.api.rename(name, renamed)
    assert planned(planner, plan, state)[1] == (
        Op.REPLACE,
        ("changed on the engine since the last up: Name",),
    )
    # Still on the stack's network under another name, it is the stack's own (the up replaces
    # it), not a stranger the up would leave there.
    assert planner.strangers(plan, state) == []
    applier.up(plan, state)
    assert docker_client.api.inspect_container(name)["Id"] == state.resources["urn:c"].id
    with pytest.raises(NotFound):
        docker_client.api.inspect_container(renamed)
    assert planned(planner, plan, state) == [(Op.SAME, ())] * 2

    docker_client.api.remove_container(name, force=True)
    impostor = docker_client.containers.run(
        BASE, ["sleep", "600"], name=name, labels={STACK_LABEL: stack},
        cap_add=["NET_RAW"], network=f"{stack}-n", detach=True,
    )  # fmt: skip
    assert planned(planner, plan, state)[1] == (
        Op.REPLACE,
        (
            MISSING,
            f"changed on the engine since the last up: Id: {name} is container "
            f"{impostor.id[:12]}, not the one the last up made",
        ),
    )
    assert docker_client.api.inspect_container(name)["Id"] == impostor.id
    applier.up(plan, state)
    now = docker_client.api.inspect_container(name)
    assert now["Id"] != impostor.id
    assert now["Id"] == state.resources["urn:c"].id
    assert not now["HostConfig"]["CapAdd"]
    assert any(f"removing container {name} ({impostor.id[:12]})" in m for m in messages), messages
    assert planned(planner, plan, state) == [(Op.SAME, ())] * 2

    # Made again by hand without the stack's label: the up refuses before its first change,
    # and the plan says so (infra/apply.py notes it).
    docker_client.api.remove_container(name, force=True)
    foreign = docker_client.containers.run(BASE, ["sleep", "600"], name=name, detach=True)
    with pytest.raises(NothingChanged, match=f"{foreign.id[:12]}.* is not labelled"):
        planned(planner, plan, state)
    foreign.remove(force=True)
    applier.up(plan, state)
    assert planned(planner, plan, state) == [(Op.SAME, ())] * 2


def test_applier__up_names_a_container_attached_to_the_stacks_network_by_hand(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, planner: LocalApplier
) -> None:
    """A container the stack does not declare, run on its network by hand, is named by every
    up (it reaches the stack's containers there), and by the plan before it; both leave it
    alone: not the stack's."""
    stack, applier = scratch
    label = [{"label": STACK_LABEL, "value": stack}]
    plan = plan_stack(
        stack, [resource(NETWORK, "n", {"name": f"{stack}-n", "labels": label})], root=Path("/")
    )
    state = StackState(stack)
    applier.up(plan, state)
    assert applier.strangers(plan) == []
    stranger = docker_client.containers.run(
        BASE, ["sleep", "600"], name=f"{stack}-stranger", network=f"{stack}-n", detach=True
    )
    try:
        (line,) = applier.strangers(plan)
        assert (
            f"network {stack}-n has a container the stack does not declare: {stack}-stranger"
            in (line)
        )
        assert f"docker network disconnect {stack}-n" in line
        assert planner.strangers(plan) == [line]  # the plan names it too, and leaves it
        assert planned(planner, plan, state) == [(Op.SAME, ())]
        assert docker_client.api.inspect_container(stranger.id)["State"]["Running"]
    finally:
        stranger.remove(force=True)
    assert planner.strangers(plan) == []


def test_applier__a_declared_tag_moved_to_another_image_is_built_again(
    scratch: tuple[str, LocalApplier],
    docker_client: docker.DockerClient,
    tmp_path: Path,
    planner: LocalApplier,
) -> None:
    """`docker tag <other image> <declared imageName>` (attack pass of 2026-12-03): anything
    that runs the tag runs the other image. The next up builds the tag again, saying why; the
    plan before it says so, and moves no tag."""
    stack, applier = scratch
    plan = plan_stack(stack, [image(tmp_path, stack, "one")], root=Path("/"))
    state = StackState(stack)
    applier.up(plan, state)
    built = docker_client.api.inspect_image(f"{stack}-img:one")["Id"]
    docker_client.api.tag(BASE, f"{stack}-img", "one")
    assert planned(planner, plan, state) == [
        (
            Op.REPLACE,
            (f"changed on the engine since the last up: tag {stack}-img:one names another image",),
        )
    ]
    assert docker_client.api.inspect_image(f"{stack}-img:one")["Id"] != built
    applier.up(plan, state)
    assert docker_client.api.inspect_image(f"{stack}-img:one")["Id"] == built
    assert planned(planner, plan, state) == [(Op.SAME, ())]


def test_applier__a_material_file_changed_in_its_volume_is_written_again(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient, planner: LocalApplier
) -> None:
    """A file replaced or its mode changed inside a material volume (attack pass of
    2026-12-03: a line added to Redis's users.acl, server.key made 0644, the volume's own
    directory 0755) shows in no
    container's configuration; the next up compares the volume with the initialiser's
    uploads, names each difference (never content) and runs the initialiser again. The plan
    before it names the same, only reading the volume."""
    stack, applier = scratch
    label = [{"label": STACK_LABEL, "value": stack}]
    init = container(
        stack,
        command=["sh", "-c", INIT_SCRIPT, "sh", "/run/stage", "/mat", "rev1"],
        labels=[*label, {"label": MATERIAL_LABEL, "value": "rev1"}],
        mounts=[{"type": "volume", "source": f"{stack}-v", "target": "/mat"}],
        uploads=[
            {
                "file": "/run/stage/users.acl",
                "content": "user default off\n",
                "permissions": "0444",
            },
            {"file": "/run/stage/server.key", "content": "KEY\n", "permissions": "0400"},
        ],
        attach=True,
        mustRun=False,
    )
    volume = resource(VOLUME, "v", {"name": f"{stack}-v", "labels": label})
    plan = plan_stack(stack, [volume, init], root=Path("/"))
    state = StackState(stack)
    applier.up(plan, state)
    assert [(c.op, c.reasons) for c in applier.changes(plan, state)] == [(Op.SAME, ())] * 2
    tamper = (
        "chmod 755 /mat && chmod 644 /mat/..data/server.key && chmod u+w /mat/..data/users.acl"
        " && echo 'user default on nopass +@all' >> /mat/..data/users.acl && touch /mat/..rev1/x"
    )
    docker_client.containers.run(
        BASE, ["sh", "-c", tamper], remove=True, network_mode="none",
        volumes={f"{stack}-v": {"bind": "/mat", "mode": "rw"}},
    )  # fmt: skip
    drifted = (
        Op.REPLACE,
        (
            "changed on the engine since the last up: material volume directory (mode), "
            "material server.key (mode), material users.acl (content), material users.acl "
            "(mode), material x (not declared)",
        ),
    )
    assert planned(planner, plan, state) == [(Op.SAME, ()), drifted]
    # Read through the exited initialiser, never re-run by the plan: the same drift after it.
    (change,) = [c for c in applier.changes(plan, state) if c.op is not Op.SAME]
    assert (change.op, change.reasons) == drifted
    assert "nopass" not in " ".join(change.reasons)
    applier.up(plan, state)
    assert planned(planner, plan, state) == [(Op.SAME, ())] * 2
    mode = docker_client.containers.run(
        BASE, ["stat", "-c", "%a", "/mat"], remove=True, network_mode="none",
        volumes={f"{stack}-v": {"bind": "/mat", "mode": "ro"}},
    )  # fmt: skip
    assert mode.strip() == b"700"


def test_applier__an_unfinished_network_no_longer_declared_is_removed_by_id_beside_its_namesake(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """The state records a network as unfinished, by its name (an up interrupted after the
    engine created it), the program no longer declares it, and another network has the same
    name: the up failed on the engine's raw "network ... is ambiguous". Now the stack's own
    (labelled as the stack's) is removed by its ID and the other is left, named."""
    stack, applier = scratch
    name = f"{stack}-n"
    label = [{"label": STACK_LABEL, "value": stack}]
    plan = plan_stack(stack, [resource(NETWORK, "n", {"name": name, "labels": label})],
                      root=Path("/"))  # fmt: skip
    saved: list[StackState] = [StackState(stack)]

    def interrupt_at_done(state: StackState) -> None:
        done = state.resources.get("urn:n")
        if done is not None and INCOMPLETE not in done.outputs:
            raise KeyboardInterrupt
        saved.append(StackState(stack, dict(state.resources)))

    with pytest.raises(KeyboardInterrupt):
        applier.up(plan, StackState(stack), checkpoint=interrupt_at_done)
    state = saved[-1]
    assert state.resources["urn:n"].outputs.get(INCOMPLETE)
    ours = docker_client.networks.list(names=[name])[0]
    intruder = _shared_name(docker_client, name)
    try:
        applier.up(
            plan_stack(stack, [container(stack, command=["sleep", "300"])], root=Path("/")), state
        )
        left = [n.id for n in docker_client.networks.list(names=[name]) if n.name == name]
        assert left == [intruder.id]
        assert "urn:n" not in state.resources
        assert not _network_exists(docker_client, ours.id)
    finally:
        intruder.remove()


def test_applier__two_unfinished_candidates_labelled_as_the_stacks_are_refused_by_id(
    scratch: tuple[str, LocalApplier], docker_client: docker.DockerClient
) -> None:
    """Two networks labelled as the stack's share the unfinished record's name: which one the
    interrupted up made, the state cannot say. Nothing is removed; the message names both
    IDs and the command that settles it."""
    stack, applier = scratch
    name = f"{stack}-n"
    label = {STACK_LABEL: stack}
    first = _shared_name(docker_client, name, **label)
    second = _shared_name(docker_client, name, **label)
    state = StackState(
        stack,
        {"urn:n": ResourceState(NETWORK, name, name, {"name": name}, {INCOMPLETE: True})},
    )
    try:
        with pytest.raises(ApplyError) as refused:
            applier.up(
                plan_stack(stack, [container(stack, command=["sleep", "300"])], root=Path("/")),
                state,
            )
        message = str(refused.value)
        assert "ambiguous" not in message
        assert first.id[:12] in message
        assert second.id[:12] in message
        assert f"docker network rm {first.id[:12]}" in message or (
            f"docker network rm {second.id[:12]}" in message
        )
        assert len(docker_client.networks.list(names=[name])) == 2
    finally:
        first.remove()
        second.remove()


def _network_exists(client: docker.DockerClient, network_id: str) -> bool:
    try:
        client.networks.get(network_id)
    except NotFound:
        return False
    return True
