"""Throwaway probe containers: attackers and clients placed on the stack's own networks.

A probe runs the app image's Python with `inside_probe.py` (standard library only), as the
app's uid, with a read-only root filesystem and no capabilities. It is labelled
`io.secure-redis.e2e-probe` (never with a stack label, so it is not mistaken for part of a
stack) and removed after use. The suite's Docker client records the ID of each probe it
creates (record_probes): the label is for finding probes, the recorded ID for trusting one.
Probes only ever talk to the stack's containers over the project's own Docker networks.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import docker
import testinfra
from docker.types import Mount

from infra.naming import ROLE_LABEL, STACK_LABEL
from tests.e2e.stacks import PROBE_LABEL, Stack

PROBE_SOURCE: Final = (Path(__file__).parent / "inside_probe.py").read_text()
APP_MATERIAL: Final = "/etc/secure-cache"


def app_image(client: docker.DockerClient, stack: Stack) -> str:
    return str(client.api.inspect_container(stack.app)["Image"])


def probe_labels(purpose: str) -> dict[str, str]:
    """A probe runs a stack's image, whose labels it inherits; it overrides the stack label so
    nothing (teardown, the declaration checks) takes it for part of the stack."""
    return {PROBE_LABEL: purpose, STACK_LABEL: "e2e-probe", ROLE_LABEL: "probe"}


def probe_record(basetemp: Path) -> Path:
    """Where this run records the IDs of the probes it creates: one directory for the whole
    run, shared by pytest-xdist's workers (each has its own basetemp under one root)."""
    root = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    record = root / "e2e-probes"
    record.mkdir(mode=0o700, exist_ok=True)
    return record


def record_probes(client: docker.DockerClient, record: Path) -> None:
    """Make `client` record in `record` the ID of every probe-labelled container it creates.
    The label alone proves nothing (anyone who runs a container can set it, and `docker
    inspect` shows it), but the engine assigns the ID: a container is this run's probe only
    if this run created it (tests/e2e/test_e2e_declaration.py)."""
    create = client.api.create_container

    def create_and_record(*args: Any, **kwargs: Any) -> Any:
        created = create(*args, **kwargs)
        if PROBE_LABEL in (kwargs.get("labels") or {}):
            (record / str(created["Id"])).touch()
        return created

    client.api.create_container = create_and_record


def started_probes(record: Path) -> frozenset[str]:
    """The IDs of the probes this run created (record_probes)."""
    return frozenset(entry.name for entry in record.iterdir())


def image_user(client: docker.DockerClient, image: str) -> str:
    """The `uid:gid` an image runs as: for the app image, the stack's app uid."""
    return str(client.images.get(image).attrs["Config"]["User"])


def hardened(user: str, **extra: Any) -> dict[str, Any]:
    """Run options every probe shares: the same confinement as the app itself, as `user`
    (the app's uid, so it may read the app's material)."""
    return {
        "user": user,
        "read_only": True,
        "tmpfs": {"/tmp": "rw,nosuid,nodev,size=8m"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "mem_limit": "64m",
        **extra,
    }


def request_argv(action: str, **params: Any) -> list[str]:
    return ["python3", "-c", PROBE_SOURCE, json.dumps({"action": action, **params})]


def parse(output: str, where: str) -> dict[str, Any]:
    try:
        return dict(json.loads(output.strip().splitlines()[-1]))
    except (ValueError, IndexError) as exc:
        raise AssertionError(f"probe in {where} printed no JSON result: {output[-500:]!r}") from exc


def exec_probe(target: Any, where: str, action: str, /, **params: Any) -> dict[str, Any]:
    """Run one probe in an existing container through testinfra's docker backend."""
    argv = request_argv(action, **params)
    result = target.run(" ".join(["%s"] * len(argv)), *argv)
    if result.rc != 0:
        raise AssertionError(f"probe {action} failed in {where}: {result.stderr[-800:]}")
    return parse(result.stdout, where)


class ProbeContainer:
    """A long-lived probe on one network, with app material volumes mounted read-only."""

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        network: str,
        mounts: dict[str, str],
        purpose: str,
    ) -> None:
        self.client = client
        self.name = f"secure-redis-e2e-probe-{purpose}-{uuid.uuid4().hex[:8]}"
        self.container = client.containers.run(
            image,
            entrypoint=["sleep", "infinity"],
            name=self.name,
            detach=True,
            network=network,
            labels=probe_labels(purpose),
            mounts=[
                Mount(target, volume, type="volume", read_only=True)
                for volume, target in mounts.items()
            ],
            **hardened(image_user(client, image)),
        )
        self.host = testinfra.get_host(f"docker://{self.name}")

    def run(self, action: str, /, **params: Any) -> dict[str, Any]:
        return exec_probe(self.host, self.name, action, **params)

    def remove(self) -> None:
        self.container.remove(force=True)


@contextmanager
def consumer_probe(
    client: docker.DockerClient,
    stack: Stack,
    consumer: str,
    *,
    purpose: str,
    material_at: str = APP_MATERIAL,
) -> Iterator[ProbeContainer]:
    """A probe on `stack`'s backend network as one of its containers of the app image
    (`consumer`: app, rotation): that container's image, hence its uid, with its material
    volume read-only at `material_at`. Removed afterwards."""
    probe = ProbeContainer(
        client,
        str(client.api.inspect_container(stack.object(consumer))["Image"]),
        network=stack.backend,
        mounts={stack.object(f"{consumer}-material"): material_at},
        purpose=purpose,
    )
    try:
        yield probe
    finally:
        probe.remove()


def run_once(
    client: docker.DockerClient, image: str, network: str, action: str, /, **params: Any
) -> dict[str, Any]:
    """A one-shot probe container on `network` (e.g. an unrelated scratch network)."""
    output = client.containers.run(
        image,
        entrypoint=request_argv(action, **params)[:1],
        command=request_argv(action, **params)[1:],
        network=network,
        # Names the engine does not know would be forwarded to this host's resolvers; a dead
        # upstream keeps every lookup on the project's own networks.
        dns=["127.0.0.1"],
        dns_opt=["timeout:1", "attempts:1"],
        labels=probe_labels("one-shot"),
        remove=True,
        stdout=True,
        stderr=True,
        **hardened(image_user(client, image)),
    )
    return parse(output.decode(errors="replace"), f"one-shot probe on {network}")


def redis_tls(stack: Stack, **params: Any) -> dict[str, Any]:
    """Parameters of a TLS probe against the stack's Redis, as the app connects to it."""
    return {
        "host": "redis",
        "port": stack.settings.redis_port,
        "server_name": "redis",
        **params,
    }


# How a TLS 1.3 server's refusal of the client certificate reaches the client: its alert, or,
# when the server closes first, an EOF in the middle of the protocol. Either way: no reply.
CLIENT_CERT_REFUSED = ("CERTIFICATE_REQUIRED", "UNKNOWN_CA", "BAD_CERTIFICATE", "SSLEOFError")


def refused_client_certificate(result: dict[str, Any]) -> bool:
    return result["replies"] == [] and any(r in str(result["error"]) for r in CLIENT_CERT_REFUSED)


def client_files(user: str, material: str = APP_MATERIAL) -> dict[str, str]:
    """An identity's TLS files, as its material volume holds them (<user>.crt/.key)."""
    return {
        "ca": f"{material}/ca.crt",
        "cert": f"{material}/{user}.crt",
        "key": f"{material}/{user}.key",
    }


def client_auth(user: str, material: str = APP_MATERIAL) -> list[Any]:
    return ["AUTH", user, {"file": f"{material}/redis.password"}]


def app_client_files(material: str = APP_MATERIAL) -> dict[str, str]:
    return client_files("app", material)


def app_auth(material: str = APP_MATERIAL) -> list[Any]:
    return client_auth("app", material)


__all__ = [
    "APP_MATERIAL",
    "CLIENT_CERT_REFUSED",
    "PROBE_SOURCE",
    "ProbeContainer",
    "app_auth",
    "app_client_files",
    "app_image",
    "client_auth",
    "client_files",
    "exec_probe",
    "hardened",
    "image_user",
    "probe_labels",
    "probe_record",
    "record_probes",
    "redis_tls",
    "refused_client_certificate",
    "run_once",
    "started_probes",
]
