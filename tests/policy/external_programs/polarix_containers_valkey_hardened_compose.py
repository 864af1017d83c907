"""A hardened Valkey compose sample: non-root, read-only, no capabilities, no-new-privileges."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "Polarix-Containers/valkey",
    "path": "README.md",
    "commit": "06696a62477e5ab8c61b5c5a05bfa4fa07862fd7",
    "language": "docker compose (in Markdown)",
    "note": "The sample service: user, read_only, security_opt (Docker's preferred '=' spelling), "
    "cap_drop and restart as written; ./valkey:/data:Z -> volumes hostPath (the :Z relabel "
    "-> selinuxRelabel Z); healthcheck test/interval/timeout -> healthcheck. Compose puts the "
    "service on its project's default network, a user-defined bridge named <project>_default "
    "with the service name as alias: declared here as that network (project 'valkey').",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "valkey"


def program() -> None:
    network = docker.Network("default", name="valkey_default")
    docker.Container(
        "valkey",
        name="valkey",
        image="ghcr.io/polarix-containers/valkey:9",
        restart="unless-stopped",
        volumes=[
            docker.ContainerVolumeArgs(
                host_path="/srv/valkey/valkey", container_path="/data", selinux_relabel="Z"
            )
        ],
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD-SHELL", "valkey-cli ping | grep PONG"], interval="15s", timeout="5s"
        ),
        user="200010:200010",
        read_only=True,
        security_opts=["no-new-privileges=true"],
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["valkey"])
        ],
    )
