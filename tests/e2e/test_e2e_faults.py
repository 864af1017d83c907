"""Security model 6 (failure), on the running stack: Redis stops, Redis restarts, the data key
is rotated live, and dev and prod run side by side without reaching each other.

These tests disturb the stack (they restore it: Redis and the app end healthy), so they are
marked `fault` and run after everything else.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import docker
import pytest

from infra import rotation_probe
from tests.e2e import appclient
from tests.e2e.hosts import container_host
from tests.e2e.probes import (
    APP_MATERIAL,
    ProbeContainer,
    app_auth,
    app_image,
    consumer_probe,
    exec_probe,
    hardened,
    image_user,
    probe_labels,
    redis_tls,
    refused_client_certificate,
    run_once,
)
from tests.e2e.stacks import PROBE_LABEL, Stack

pytestmark = [pytest.mark.security("failure"), pytest.mark.fault]


def entries(tag: str, count: int) -> dict[str, bytes]:
    run = uuid.uuid4().hex[:8]
    return {f"e2e-{tag}-{run}-{i}": f"value-{tag}-{i}-{run}".encode() for i in range(count)}


def read_from_redis(stack: Stack, key: str) -> bytes | None:
    """A fresh process in the app container (no memory fallback of its own): Redis or nothing."""
    result = container_host(stack.app).run("python3 -m secure_cache get %s", key)
    if result.rc == 1:
        return None
    assert result.rc == 0, f"secure_cache get exited {result.rc}: {result.stderr[-300:]}"
    return str(result.stdout).encode()


def back_on_redis(stack: Stack, timeout_s: float = 90) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        status = appclient.status(stack)
        return status if status["backend"] == "redis" else None

    return appclient.wait_for(f"{stack.app} to use Redis again", ready, timeout_s)


def restart_app(stack: Stack, client: docker.DockerClient) -> None:
    client.api.restart(stack.app, timeout=10)
    appclient.wait_for(
        f"{stack.app} to answer /healthz", lambda: appclient.healthz(stack)[0] == 200
    )
    back_on_redis(stack)


def test_fault__redis_stopped_app_serves_from_memory_then_recovers(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    during = entries("outage", 3)
    docker_client.api.stop(stack.redis, timeout=30)
    try:
        for key, value in during.items():
            assert appclient.put(stack, key, value) == 204
        assert {k: appclient.get(stack, k) for k in during} == during
        status = appclient.status(stack)
        assert status["backend"] == "memory"
        assert status["fallback"]["active"] is True
        assert appclient.healthz(stack)[0] == 200, "the app keeps answering"
    finally:
        docker_client.api.start(stack.redis)
    status = back_on_redis(stack)
    assert status["counters"]["reconnects"] >= 1
    # What was written during the outage was replayed into Redis: a new process reads it there.
    assert {k: read_from_redis(stack, k) for k in during} == during


def test_fault__app_not_running__the_served_certificate_is_still_read_for_the_retire_guard(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """What the retire guard reads (infra/apply.py `_retire_refusal`) with the app container
    not running: the same CA as from inside the running app, from a short-lived copy of the
    app on the backend network, which is gone afterwards. Before, an app not running made
    every CA retire refuse (`unobserved_refusal`). The app is paused, not stopped: to the probe
    it is as much not running (a stopped app's retire was run on s80, docs/day2.md), and it comes
    back at once, with no restart and no health wait (the test takes a few seconds)."""
    probe = rotation_probe.Probe(stack.name, stack.settings.redis_port)
    # The image the app runs stands for the one its state records (infra/applier/state.py
    # `recorded_image`): a stack deployed with the Pulumi CLI has no local state.
    image = docker_client.containers.get(stack.app).attrs["Image"]
    from_inside = probe.served_issuer(image)
    assert from_inside is not None
    docker_client.api.pause(stack.app)
    try:
        assert probe.served_issuer(image) == from_inside
        copies = docker_client.containers.list(
            all=True, filters={"name": stack.object(rotation_probe.SERVED_PROBE)}
        )
        assert copies == []
    finally:
        docker_client.api.unpause(stack.app)
    assert appclient.healthz(stack)[0] == 200


def test_fault__redis_restart_keeps_persisted_entries_decryptable(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    stored = entries("persist", 5)
    for key, value in stored.items():
        assert appclient.put(stack, key, value) == 204
    docker_client.api.restart(stack.redis, timeout=30)
    appclient.wait_for(
        "Redis to serve again", lambda: read_from_redis(stack, next(iter(stored))), 90
    )
    assert {k: read_from_redis(stack, k) for k in stored} == stored
    back_on_redis(stack)
    assert {k: appclient.get(stack, k) for k in stored} == stored


_ROTATE = """
set -eu
umask 077
cd "$1"
python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode(), end="")' > /tmp/new
cp data.key /tmp/old
rm -f data.key data.previous-keys
cp /tmp/new data.key
cp /tmp/old data.previous-keys
chmod 0400 data.key data.previous-keys
"""
_RETIRE = """
set -eu
cd "$1"
rm -f data.previous-keys
: > data.previous-keys
chmod 0400 data.previous-keys
"""
# Back to the key the program gave the app (read from the rotation pass's volume, which
# edit_material never touches, through a readable copy mounted at /program), the test's key
# kept readable until the pass has moved the entries back.
_BACK = """
set -eu
umask 077
cd "$1"
cp data.key /tmp/test-key
rm -f data.key data.previous-keys
cp /program/data.key data.key
cp /tmp/test-key data.previous-keys
chmod 0400 data.key data.previous-keys
"""


def edit_material(
    stack: Stack, client: docker.DockerClient, script: str, program: str | None = None
) -> None:
    """What a deployment does on rotation, done on the app's material volume: a throwaway
    container as the app's uid, no network. The new key is generated inside; it never leaves.
    `program`: a volume mounted read-only at /program (a readable copy of other material)."""
    extra = [docker.types.Mount("/program", program, type="volume", read_only=True)]
    client.containers.run(
        app_image(client, stack),
        entrypoint=["sh", "-c", script, "edit-material", APP_MATERIAL],
        network_mode="none",
        mounts=[
            docker.types.Mount(APP_MATERIAL, stack.object("app-material"), type="volume"),
            *(extra if program else []),
        ],
        labels=probe_labels("rotate"),
        remove=True,
        **hardened(image_user(client, app_image(client, stack))),
    )


@dataclass(frozen=True)
class MaterialCopy:
    """Files of one of a stack's material volumes, copied by a container as the uid that owns
    the volume (0700/0400, infra/runtime_ids.py), running `image` (built for that uid)."""

    image: str
    volume: str
    files: str
    """Shell words, in the volume's directory (`*`: all, for a copy that is the only one)."""


_STAGING: Final = "/run/secure-redis-init"  # owned by the image's uid: an empty volume takes it


@contextmanager
def readable_copy(
    client: docker.DockerClient, purpose: str, copies: Sequence[MaterialCopy]
) -> Iterator[str]:
    """A throwaway volume holding `copies`, each file world-readable, for a test whose
    container runs as another uid than the files' owners; its name. The first copy owns the
    directory and opens it to the next copies (0777), or to readers only when it is the only
    one (0755). Removed afterwards."""
    volume = client.volumes.create(
        f"secure-redis-e2e-{purpose}-{uuid.uuid4().hex[:8]}", labels={PROBE_LABEL: purpose}
    )
    try:
        for i, part in enumerate(copies):
            opened = f" && chmod {'0777' if len(copies) > 1 else '0755'} ." if i == 0 else ""
            script = (
                f"cd /src && cp {part.files} {_STAGING}/ && "
                f"cd {_STAGING} && chmod 0444 {part.files}{opened}"
            )
            client.containers.run(
                part.image,
                entrypoint=["sh", "-c", script],
                network_mode="none",
                mounts=[
                    docker.types.Mount("/src", part.volume, type="volume", read_only=True),
                    docker.types.Mount(_STAGING, volume.name, type="volume"),
                ],
                labels=probe_labels(f"copy-{purpose}"),
                remove=True,
                **hardened(image_user(client, part.image)),
            )
        yield volume.name
    finally:
        volume.remove(force=True)


def rotation_pass(stack: Stack, client: docker.DockerClient) -> str:
    """Run the pass as the stack's rotation container does (its image, uid, environment and
    identity, on the backend network) with the data keys the app was given by edit_material,
    copied with the pass's identity into one readable volume. Returns the pass's report
    (stdout)."""
    spec = client.api.inspect_container(stack.rotation)
    image, user = spec["Image"], spec["Config"]["User"]
    copies = (
        MaterialCopy(
            app_image(client, stack), stack.object("app-material"), "data.key data.previous-keys"
        ),
        MaterialCopy(
            image,
            stack.object("rotation-material"),
            "ca.crt rotation.crt rotation.key redis.password",
        ),
    )
    with readable_copy(client, "rotation-material", copies) as volume:
        output: bytes = client.containers.run(
            image,
            entrypoint=spec["Config"]["Entrypoint"],
            command=spec["Config"]["Cmd"],
            environment=[e.replace(APP_MATERIAL, _STAGING) for e in spec["Config"]["Env"]],
            network=stack.backend,
            mounts=[docker.types.Mount(_STAGING, volume, type="volume", read_only=True)],
            labels=probe_labels("rotation-pass"),
            remove=True,
            **hardened(user, mem_limit="128m"),
        )
        return output.decode()


def test_fault__live_data_key_rotation_loses_no_entry(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    stored = entries("rotate", 20)
    for key, value in stored.items():
        assert appclient.put(stack, key, value) == 204
    old = appclient.status(stack)["encryption"]["primary_key_id"]

    # 1. New primary key; the old one becomes a previous (read-only) key.
    edit_material(stack, docker_client, _ROTATE)
    restart_app(stack, docker_client)
    keys = appclient.status(stack)["encryption"]
    assert keys["primary_key_id"] != old
    assert keys["previous_key_ids"] == [old]
    assert {k: appclient.get(stack, k) for k in stored} == stored

    # 2. The serving app's ACL user may not run the pass (no SCAN, no WATCH) ...
    refused = container_host(stack.app).run("python3 -m secure_cache rotate")
    assert refused.rc == 5, f"rotate as the app exited {refused.rc}: {refused.stderr[-300:]}"
    assert "no permissions to run the 'scan' command" in refused.stderr
    # ... the rotation pass's own identity re-encrypts every entry under the new key.
    report = json.loads(rotation_pass(stack, docker_client))
    assert report["complete"] is True
    assert report["remaining"] == 0
    assert report["migrated"] >= len(stored)

    # 3. The old key is retired: every entry is still readable with the new key alone.
    edit_material(stack, docker_client, _RETIRE)
    restart_app(stack, docker_client)
    assert appclient.status(stack)["encryption"]["previous_key_ids"] == []
    assert {k: appclient.get(stack, k) for k in stored} == stored
    assert appclient.status(stack)["counters"]["integrity_failures"] == 0

    # 4. Back the same way to the key the program gave the app, so the stack is left as the
    # program declares it. Otherwise the next `up` rewrites the program's key into the volume,
    # the app keeps this test's key as a previous one (it never drops the key it was writing
    # with), and rotate.sh then finds a data-key rotation half done (CI, 2026-11-30).
    program = MaterialCopy(
        docker_client.api.inspect_container(stack.rotation)["Image"],
        stack.object("rotation-material"),
        "data.key",
    )
    with readable_copy(docker_client, "program-key", [program]) as volume:
        edit_material(stack, docker_client, _BACK, program=volume)
    restart_app(stack, docker_client)
    assert appclient.status(stack)["encryption"]["primary_key_id"] == old
    assert json.loads(rotation_pass(stack, docker_client))["complete"] is True
    edit_material(stack, docker_client, _RETIRE)
    restart_app(stack, docker_client)
    assert appclient.status(stack)["encryption"]["previous_key_ids"] == []
    assert {k: appclient.get(stack, k) for k in stored} == stored


# -- dev and prod side by side ---------------------------------------------------------------


def address(client: docker.DockerClient, container: str, network: str) -> str:
    info = client.api.inspect_container(container)
    return str(info["NetworkSettings"]["Networks"][network]["IPAddress"])


@pytest.fixture(scope="module")
def dev_material_for_prod(
    both_stacks: tuple[Stack, Stack], docker_client: docker.DockerClient
) -> Iterator[str]:
    """A throwaway volume with copies of dev's app material that prod's app uid can read.
    Each stack's material belongs to its own app uid (0700/0400, infra/runtime_ids.py), so
    a probe running as prod's uid cannot read dev's volume: a container as dev's uid copies
    it here, world-readable, for these tests only. Removed afterwards."""
    dev, _prod = both_stacks
    copy = MaterialCopy(app_image(docker_client, dev), dev.object("app-material"), "*")
    with readable_copy(docker_client, "dev-material", [copy]) as volume:
        yield volume


@pytest.fixture(scope="module")
def cross_probe(
    both_stacks: tuple[Stack, Stack], docker_client: docker.DockerClient, dev_material_for_prod: str
) -> Iterator[ProbeContainer]:
    """On prod's backend network, holding dev's app material (at /etc/dev-cache) and prod's."""
    _dev, prod = both_stacks
    probe = ProbeContainer(
        docker_client,
        app_image(docker_client, prod),
        network=prod.backend,
        mounts={prod.object("app-material"): APP_MATERIAL, dev_material_for_prod: "/etc/dev-cache"},
        purpose="cross-stack",
    )
    yield probe
    probe.remove()


def connect_from_app(
    client: docker.DockerClient, src: Stack, dst: Stack, role: str, network: str, port: int
) -> tuple[str, dict[str, Any]]:
    """From inside `src`'s app container: a TCP connection to `dst`'s `role` container at its
    address on `dst`'s `network` (port 0: Redis' port)."""
    ip = address(client, dst.object(role), dst.object(network))
    result = exec_probe(
        container_host(src.app), src.app, "connect", host=ip, port=port or dst.settings.redis_port
    )
    return ip, result


# The app's API listens on its frontend address only (and loopback): from the backend network
# its port is closed even within its own stack (tests/e2e/test_e2e_attack_surface.py), so it
# is no positive control there; Redis is the backend's target.
TARGETS = pytest.mark.parametrize(
    ("role", "network", "port"),
    [("redis", "backend", 0), ("app", "frontend", 8080)],
)


@pytest.mark.parametrize("source", ["dev", "prod"])
@TARGETS
def test_fault__positive_control_each_app_reaches_its_own_stack(
    both_stacks: tuple[Stack, Stack],
    docker_client: docker.DockerClient,
    source: str,
    role: str,
    network: str,
    port: int,
) -> None:
    """The same probe, from the same app container, connects to the same targets of its own
    stack (with both deployed): the refusals across stacks below are the isolation's."""
    src = {s.name: s for s in both_stacks}[source]
    ip, result = connect_from_app(docker_client, src, src, role, network, port)
    assert result["connected"] is True, f"{src.app} did not reach {src.object(role)} at {ip}"


@pytest.mark.parametrize(("source", "target"), [("dev", "prod"), ("prod", "dev")])
@TARGETS
def test_fault__stacks_side_by_side_cannot_reach_each_other(
    both_stacks: tuple[Stack, Stack],
    docker_client: docker.DockerClient,
    source: str,
    target: str,
    role: str,
    network: str,
    port: int,
) -> None:
    stacks = {s.name: s for s in both_stacks}
    src, dst = stacks[source], stacks[target]
    ip, result = connect_from_app(docker_client, src, dst, role, network, port)
    assert result["connected"] is False, f"{src.app} reached {dst.object(role)} at {ip}"


def frontend_gateway(client: docker.DockerClient, stack: Stack) -> str:
    return str(client.api.inspect_network(stack.frontend)["IPAM"]["Config"][0]["Gateway"])


def test_fault__positive_control_a_container_reaches_a_listener_on_its_gateway(
    both_stacks: tuple[Stack, Stack], docker_client: docker.DockerClient
) -> None:
    """The technique of the next test works where no stack's firewall rules apply
    (infra/firewall.py drops everything from a stack's bridges to the host): this host
    listens on its address on a scratch bridge, and a container there connects to it."""
    dev, _prod = both_stacks
    name = f"secure-redis-e2e-scratch-{uuid.uuid4().hex[:8]}"
    network = docker_client.networks.create(name, driver="bridge", labels={PROBE_LABEL: "scratch"})
    try:
        gateway = str(docker_client.api.inspect_network(name)["IPAM"]["Config"][0]["Gateway"])
        with socket.create_server((gateway, 0)) as listener:
            port = listener.getsockname()[1]
            result = run_once(
                docker_client, app_image(docker_client, dev), name, "connect", host=gateway,
                port=port,
            )  # fmt: skip
    finally:
        network.remove()
    assert result["connected"] is True, f"a scratch container could not reach {gateway}:{port}"


def test_fault__other_stacks_app_port_is_not_reachable_from_a_container(
    both_stacks: tuple[Stack, Stack], docker_client: docker.DockerClient
) -> None:
    """prod's app port is published on the host's 127.0.0.1 only; dev's app, on its frontend
    bridge, cannot use the host's address on that bridge to get there."""
    dev, prod = both_stacks
    gateway = frontend_gateway(docker_client, dev)
    result = exec_probe(
        container_host(dev.app), dev.app, "connect", host=gateway, port=prod.settings.app_host_port
    )
    assert result["connected"] is False


@pytest.fixture(scope="module")
def dev_probe(
    both_stacks: tuple[Stack, Stack], docker_client: docker.DockerClient
) -> Iterator[ProbeContainer]:
    """Like `cross_probe`, but on dev's own backend network, holding dev's app material at the
    same /etc/dev-cache: the positive control of the cross-stack refusals."""
    dev, _prod = both_stacks
    with consumer_probe(
        docker_client, dev, "app", purpose="dev-own-stack", material_at="/etc/dev-cache"
    ) as probe:
        yield probe


def test_fault__positive_control_dev_material_opens_dev_redis(
    both_stacks: tuple[Stack, Stack], dev_probe: ProbeContainer
) -> None:
    """dev's certificate, CA and password, which prod refuses below, do open dev's own Redis
    (same probe image, same request)."""
    dev, _prod = both_stacks
    result = dev_probe.run(
        "tls",
        **redis_tls(
            dev,
            ca="/etc/dev-cache/ca.crt",
            cert="/etc/dev-cache/app.crt",
            key="/etc/dev-cache/app.key",
            commands=[app_auth("/etc/dev-cache"), ["PING"]],
        ),
    )
    assert result["error"] is None, f"dev's material failed against dev: {result['error']}"
    assert result["handshake"] is True, "dev's CA vouches for dev's Redis"
    assert result["replies"] == ["+OK", "+PONG"], "dev's certificate and password open dev"


def test_fault__dev_client_certificate_is_refused_by_prod_redis(
    both_stacks: tuple[Stack, Stack], cross_probe: ProbeContainer
) -> None:
    _dev, prod = both_stacks
    result = cross_probe.run(
        "tls",
        **redis_tls(
            prod,
            ca=f"{APP_MATERIAL}/ca.crt",
            cert="/etc/dev-cache/app.crt",
            key="/etc/dev-cache/app.key",
            commands=[["PING"]],
        ),
    )
    assert refused_client_certificate(result), f"not refused: {result['error']} {result['replies']}"


def test_fault__dev_ca_does_not_vouch_for_prod_redis(
    both_stacks: tuple[Stack, Stack], cross_probe: ProbeContainer
) -> None:
    _dev, prod = both_stacks
    result = cross_probe.run(
        "tls",
        **redis_tls(
            prod,
            ca="/etc/dev-cache/ca.crt",
            cert=f"{APP_MATERIAL}/app.crt",
            key=f"{APP_MATERIAL}/app.key",
        ),
    )
    assert result["handshake"] is False
    assert "CERTIFICATE_VERIFY_FAILED" in str(result["error"])


def test_fault__dev_password_is_refused_by_prod_redis(
    both_stacks: tuple[Stack, Stack], cross_probe: ProbeContainer
) -> None:
    _dev, prod = both_stacks
    prod_files = {
        "ca": f"{APP_MATERIAL}/ca.crt",
        "cert": f"{APP_MATERIAL}/app.crt",
        "key": f"{APP_MATERIAL}/app.key",
    }
    result = cross_probe.run(
        "tls",
        **redis_tls(
            prod,
            **prod_files,
            commands=[app_auth("/etc/dev-cache"), app_auth(APP_MATERIAL), ["PING"]],
        ),
    )
    assert result["replies"][0].startswith("-WRONGPASS"), "dev's password opened prod"
    assert result["replies"][1:] == ["+OK", "+PONG"], "positive control: prod's own password"


def test_fault__each_stack_has_its_own_ca(
    both_stacks: tuple[Stack, Stack],
) -> None:
    dev, prod = both_stacks
    dev_ca = container_host(dev.redis).file("/etc/secure-redis/ca.crt").content
    prod_ca = container_host(prod.redis).file("/etc/secure-redis/ca.crt").content
    assert dev_ca != prod_ca
