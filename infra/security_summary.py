"""The stack's `securitySummary` output, read from what the program declared.

Every container and network the program declares is recorded as it is constructed (a stack
transformation: Pulumi's hook that sees every resource of the stack), and the summary is
computed from those resources' own properties once the engine has them. A container added
later is in the summary without a change here, and a declaration that loosens one (a published
port, a writable root filesystem, a kept capability) shows in it at once. The facts are read
back from the resources, never restated: the summary cannot say "no port" while one is declared.

Under `pulumi up` the properties are the provider's; under the render (infra/render.py) they
are the inputs echoed back, as the engine would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pulumi
import pulumi_docker as docker

_NO_NEW_PRIVILEGES = "no-new-privileges:true"
# The docker.Container properties `container_facts` reads, by their Python names.
_READ = (
    "name",
    "user",
    "read_only",
    "privileged",
    "capabilities",
    "security_opts",
    "ports",
    "networks_advanced",
    "must_run",
    "memory",
)


@dataclass(frozen=True)
class ContainerFacts:
    """What one container's declaration says about its confinement and exposure."""

    name: str
    user: str
    read_only_root: bool
    privileged: bool
    capabilities_dropped: tuple[str, ...]
    capabilities_added: tuple[str, ...]
    no_new_privileges: bool
    published_ports: tuple[str, ...]
    """"ip:external->internal/protocol"; the ip "" means every host interface."""
    networks: tuple[str, ...]
    one_shot: bool
    """Runs once to completion (mustRun false): an initialiser, a reload job or the rotation
    pass (declared stopped, started by scripts/rotate.sh)."""
    memory_mb: int | None

    @property
    def runs_as_root(self) -> bool:
        return self.user.split(":", 1)[0] in ("", "0", "root")

    @property
    def keeps_capabilities(self) -> bool:
        return self.capabilities_dropped != ("ALL",) or bool(self.capabilities_added)

    def record(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "readOnlyRootFilesystem": self.read_only_root,
            "privileged": self.privileged,
            "capabilitiesDropped": list(self.capabilities_dropped),
            "capabilitiesAdded": list(self.capabilities_added),
            "noNewPrivileges": self.no_new_privileges,
            "publishedPorts": list(self.published_ports),
            "networks": list(self.networks),
            "oneShot": self.one_shot,
            "memoryMb": self.memory_mb,
        }


@dataclass(frozen=True)
class RedisListener:
    """Redis's listeners as its argv sets them (argv overrides the config file, and every
    judged setting is on argv: infra/components/redis.py, redis_command)."""

    plaintext_port: int
    tls_port: int
    tls_protocols: tuple[str, ...]
    client_certificates_required: bool


class DeclaredResources:
    """Records every container and network the stack declares from `watch()` on."""

    def __init__(self) -> None:
        self.containers: list[docker.Container] = []
        self.networks: list[docker.Network] = []

    def watch(self) -> None:
        """Call before the program declares its first resource."""
        pulumi.runtime.register_stack_transformation(self._record)

    def _record(
        self, args: pulumi.ResourceTransformationArgs
    ) -> pulumi.ResourceTransformationResult | None:
        if isinstance(args.resource, docker.Container):
            self.containers.append(args.resource)
        elif isinstance(args.resource, docker.Network):
            self.networks.append(args.resource)
        return None  # observed, not changed


def container_facts(values: Mapping[str, Any]) -> ContainerFacts:
    """From a container's resolved properties, keyed as pulumi-docker's Container names them.

    Nested values are read as mappings (pulumi-docker's output types are dicts, and the render
    hands plain ones); every nested key read here is one word, the same in either casing."""
    caps = values.get("capabilities") or {}
    return ContainerFacts(
        name=str(values["name"]),
        user=values.get("user") or "",
        read_only_root=bool(values.get("read_only")),
        privileged=bool(values.get("privileged")),
        capabilities_dropped=tuple(sorted(caps.get("drops") or ())),
        capabilities_added=tuple(sorted(caps.get("adds") or ())),
        no_new_privileges=_NO_NEW_PRIVILEGES in (values.get("security_opts") or ()),
        published_ports=tuple(
            f"{p.get('ip') or ''}:{p.get('external')}->{p['internal']}/{p.get('protocol') or 'tcp'}"
            for p in values.get("ports") or ()
        ),
        networks=tuple(str(n["name"]) for n in values.get("networks_advanced") or ()),
        # The provider's default for must_run is true.
        one_shot=values.get("must_run") is False,
        memory_mb=values.get("memory"),
    )


def redis_listener(argv: Sequence[str]) -> RedisListener:
    """Redis's defaults where argv says nothing: plaintext on 6379, TLS off, client
    certificates required once TLS is on."""
    options: dict[str, str] = {}
    for flag, value in pairwise(argv):
        if flag.startswith("--"):
            options[flag[2:]] = value
    return RedisListener(
        plaintext_port=int(options.get("port", "6379")),
        tls_port=int(options.get("tls-port", "0")),
        tls_protocols=tuple(options.get("tls-protocols", "").split()),
        client_certificates_required=options.get("tls-auth-clients", "yes") == "yes",
    )


def summarize(
    containers: Sequence[ContainerFacts],
    internal_networks: Mapping[str, bool],
    redis: RedisListener,
) -> dict[str, Any]:
    """The summary: per container, per network, and the exceptions across all of them."""
    ordered = sorted(containers, key=lambda c: c.name)
    return {
        "redis": {
            "plaintextPort": redis.plaintext_port,
            "tlsPort": redis.tls_port,
            "tlsProtocols": list(redis.tls_protocols),
            "clientCertificatesRequired": redis.client_certificates_required,
        },
        "containers": {c.name: c.record() for c in ordered},
        "internalNetworks": dict(sorted(internal_networks.items())),
        # The exceptions, by container name: what a reader checks first.
        "publishedPorts": {c.name: list(c.published_ports) for c in ordered if c.published_ports},
        "writableRootFilesystems": [c.name for c in ordered if not c.read_only_root],
        "privileged": [c.name for c in ordered if c.privileged],
        "capabilitiesKept": [c.name for c in ordered if c.keeps_capabilities],
        "withoutNoNewPrivileges": [c.name for c in ordered if not c.no_new_privileges],
        "runningAsRoot": [c.name for c in ordered if c.runs_as_root],
    }


def security_summary(
    declared: DeclaredResources, redis_container: docker.Container
) -> pulumi.Output[dict[str, Any]]:
    facts = [
        pulumi.Output.all(**{name: getattr(c, name) for name in _READ}).apply(container_facts)
        for c in declared.containers
    ]
    internal = [
        pulumi.Output.all(n.name, n.internal).apply(lambda v: (str(v[0]), bool(v[1])))
        for n in declared.networks
    ]
    return pulumi.Output.all(
        pulumi.Output.all(*facts),
        pulumi.Output.all(*internal),
        redis_container.command.apply(lambda argv: redis_listener(argv or ())),
    ).apply(lambda parts: summarize(parts[0], dict(parts[1]), parts[2]))


__all__ = [
    "ContainerFacts",
    "DeclaredResources",
    "RedisListener",
    "container_facts",
    "redis_listener",
    "security_summary",
    "summarize",
]
