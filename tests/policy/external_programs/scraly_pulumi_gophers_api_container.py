"""Gophers API: a pulled :latest image run by its repo digest on a per-stack network."""

from __future__ import annotations

from typing import Final

import pulumi
import pulumi_docker as docker

SOURCE: Final = {
    "repository": "scraly/pulumi-gophers",
    "path": "main.go, Pulumi.dev.yaml",
    "commit": "11ba41bb29585d48d4168b6e578de024fc059a93",
    "language": "Go (pulumi-docker v3 SDK)",
    "note": "Translated line by line: two RemoteImages scraly/<name>:latest (the watcher is "
    "pulled but its container is commented out in the source), a Network named "
    "services-<stack>, and the API container named gophers-api-<stack>, image RepoDigest, "
    "port gophersAPIPort (8080 in Pulumi.dev.yaml, read with RequireFloat64) published on "
    "every interface, an alias on the network. Stack dev, the one config file.",
}
DEPLOYS_REDIS: Final = False
STACK: Final = "dev"
PROJECT: Final = "pulumi-gophers"

_API_PORT: Final = 8080  # Pulumi.dev.yaml pulumi-gophers:gophersAPIPort


def program() -> None:
    stack = pulumi.get_stack()
    api_image = docker.RemoteImage("gophers-api-image", name="scraly/gophers-api:latest")
    docker.RemoteImage("gophers-api-watcher-image", name="scraly/gophers-api-watcher:latest")
    network = docker.Network("network", name=f"services-{stack}")
    docker.Container(
        "gophers-api",
        name=f"gophers-api-{stack}",
        image=api_image.repo_digest,
        ports=[docker.ContainerPortArgs(internal=_API_PORT, external=_API_PORT)],
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(
                name=network.name, aliases=[f"gophers-api-{stack}"]
            )
        ],
    )
