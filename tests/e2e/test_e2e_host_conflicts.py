"""Two stacks on one engine: `up` refuses a uid block or host port another stack already holds.

docs/stack-settings.md ("Another stack"): a new stack needs a free `appHostPort` and a
`runtimeIdSlot` no other stack on the host uses. Before infra/applier/host_conflicts.py nothing
checked either: an `up` with another stack's slot deployed the whole stack under the same uids, and
a port
another stack publishes failed only as the app started, after every other object had been
created. Here the other stack is one container created (never started) with the labels, uid
and port binding a deployed stack's app has; the refused `up` is the real command.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import yaml

from infra.applier.engine import LocalApplier
from infra.naming import ROLE_LABEL, STACK_LABEL, Role, object_name
from infra.runtime_ids import MAX_SLOT, runtime_id, slot_of
from infra.settings import REPO_ROOT
from tests.support.tls_redis import free_port

pytestmark = pytest.mark.security("deployment")

BASE = "debian:bookworm-slim"
STATE_DIR = Path(".secure-redis") / "state"


@dataclass(frozen=True)
class OtherStack:
    name: str
    container: str
    slot: int
    port: int
    spare_slot: int
    """Another slot no stack on this engine holds."""


@pytest.fixture
def other_stack(docker_client: docker.DockerClient) -> Iterator[OtherStack]:
    """Another stack's app, as `docker inspect` shows a deployed one: its labels, its uid (in
    a slot no stack on this engine holds) and its published port."""
    if not docker_client.images.list(name=BASE):
        pytest.skip(f"{BASE} is not present; run scripts/bootstrap-base-image.sh")
    taken = {
        slot_of(h.uid) for h in LocalApplier(docker_client, say=lambda _m: None).held_by_stacks()
    }
    slot, spare_slot = [s for s in range(MAX_SLOT, 0, -1) if s not in taken][:2]
    name = f"hc{uuid.uuid4().hex[:8]}"
    port = free_port()
    uid = runtime_id(name, Role.APP, slot)
    container = docker_client.containers.create(
        BASE,
        ["true"],
        name=object_name(name, "app"),
        user=f"{uid}:{uid}",
        labels={STACK_LABEL: name, ROLE_LABEL: Role.APP.value},
        ports={"8080/tcp": ("127.0.0.1", port)},
        network_mode="none",
    )
    try:
        yield OtherStack(name, object_name(name, "app"), slot, port, spare_slot)
    finally:
        container.remove(force=True)


def _up(project: Path, stack: str, **settings: object) -> subprocess.CompletedProcess[str]:
    config = {"secure-redis:environment": "development"} | {
        f"secure-redis:{key}": value for key, value in settings.items()
    }
    (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    argv = [sys.executable, "-m", "infra.apply", "up", "--stack", stack]
    return subprocess.run(
        [*argv, "--project-dir", str(project)],
        cwd=REPO_ROOT, env={**os.environ}, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def _refusal(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused `up` writes (exit 2)."""
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    return line


def _nothing_of(client: docker.DockerClient, project: Path, stack: str) -> None:
    label = {"label": f"{STACK_LABEL}={stack}"}
    assert client.containers.list(all=True, filters=label) == []
    assert client.networks.list(filters=label) == []
    assert client.volumes.list(filters=label) == []
    assert not (project / STATE_DIR / f"{stack}.state").exists()


def test_up__a_runtime_id_slot_another_stack_uses_is_refused_before_any_change(
    other_stack: OtherStack, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack = f"hc{uuid.uuid4().hex[:8]}"
    done = _up(tmp_path, stack, appHostPort=free_port(), runtimeIdSlot=other_stack.slot)
    line = _refusal(done)
    assert line.startswith(
        f"apply: error: stack {stack}: runtimeIdSlot {other_stack.slot} is already used by "
        f"stack {other_stack.name} on this engine ({other_stack.container} runs as uid "
    ), line
    assert f"set secure-redis:runtimeIdSlot in Pulumi.{stack}.yaml" in line
    _nothing_of(docker_client, tmp_path, stack)


def test_up__an_app_host_port_another_stack_publishes_is_refused_before_any_change(
    other_stack: OtherStack, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack = f"hc{uuid.uuid4().hex[:8]}"
    done = _up(tmp_path, stack, appHostPort=other_stack.port, runtimeIdSlot=other_stack.spare_slot)
    line = _refusal(done)
    assert line == (
        f"apply: error: stack {stack}: appHostPort {other_stack.port} is already published by "
        f"{other_stack.container} of stack {other_stack.name}; set secure-redis:appHostPort in "
        f"Pulumi.{stack}.yaml to a free port; nothing was changed"
    )
    _nothing_of(docker_client, tmp_path, stack)


@pytest.fixture
def port_held_by_a_host_process() -> Iterator[int]:
    """A free port, then a program on this host (not a container) listening on it, as
    `python -m http.server PORT --bind 127.0.0.1` would."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(f"http.server did not listen on 127.0.0.1:{port}")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_up__an_app_host_port_a_host_process_listens_on_is_refused_before_any_change(
    other_stack: OtherStack,
    port_held_by_a_host_process: int,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """Before, the engine refused it only as the app started ("bind: address already in use",
    exit 3), after every other object had been created."""
    port = port_held_by_a_host_process
    stack = f"hc{uuid.uuid4().hex[:8]}"
    try:
        done = _up(tmp_path, stack, appHostPort=port, runtimeIdSlot=other_stack.spare_slot)
        assert _refusal(done) == (
            f"apply: error: stack {stack}: appHostPort {port} is already in use on this host by "
            f"a process that is not a stack's container (find it with `ss -ltnp 'sport = "
            f":{port}'`, or `docker ps --filter publish={port}` for a container); stop it, or "
            f"set secure-redis:appHostPort in Pulumi.{stack}.yaml to a free port; nothing was "
            "changed"
        )
        _nothing_of(docker_client, tmp_path, stack)
    finally:  # an up that went ahead (the behaviour this test refuses) leaves nothing behind
        LocalApplier(docker_client, say=lambda _m: None).down(stack, quiet=True)
