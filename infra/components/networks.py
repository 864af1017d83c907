"""The stack's two networks: an internal backend (Redis + app) and a frontend (app only)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.components.docker_objects import named_options, network_labels
from infra.naming import BRIDGE_NAME_OPTION, Role, bridge_interface, object_name


@dataclass(frozen=True)
class StackNetworksArgs:
    stack: str


class StackNetworks(pulumi.ComponentResource):
    """`secure-redis-S-backend` has no route out (internal); `-frontend` carries the app's port."""

    backend: docker.Network
    frontend: docker.Network
    backend_name: str
    frontend_name: str

    def __init__(
        self, name: str, args: StackNetworksArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-redis:infra:StackNetworks", name, None, opts)
        self.backend_name = object_name(args.stack, Role.BACKEND)
        self.frontend_name = object_name(args.stack, Role.FRONTEND)
        self.backend = docker.Network(
            f"{name}-backend",
            name=self.backend_name,
            driver="bridge",
            # Internal: no NAT, no default route. Redis can reach nothing and nothing outside
            # the stack can reach Redis; the app joins this network to talk to it.
            internal=True,
            attachable=False,
            ingress=False,
            # A fixed host interface: the host firewall's rules (infra/firewall.py) name it, so
            # they still hold after an `up` replaces this network.
            options={BRIDGE_NAME_OPTION: bridge_interface(args.stack, Role.BACKEND)},
            labels=network_labels(args.stack, Role.BACKEND),
            opts=named_options(self),
        )
        self.frontend = docker.Network(
            f"{name}-frontend",
            name=self.frontend_name,
            driver="bridge",
            internal=False,
            attachable=False,
            ingress=False,
            # Published ports on this bridge default to loopback even if a port forgets `ip`.
            options={
                "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
                BRIDGE_NAME_OPTION: bridge_interface(args.stack, Role.FRONTEND),
            },
            labels=network_labels(args.stack, Role.FRONTEND),
            opts=named_options(self),
        )
        self.register_outputs(
            {"backend_name": self.backend.name, "frontend_name": self.frontend.name}
        )


__all__ = ["StackNetworks", "StackNetworksArgs"]
