"""A Python program's nginx container: a tag pulled and run, port 80 published as 8080."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "d3vanshhhh/pulumi-docker-demo",
    "path": "__main__.py",
    "commit": "eba3982d0c40be232840d03c1d00043768459b52",
    "language": "Python (pulumi-docker 4)",
    "note": "As written: RemoteImage nginx:alpine, and a Container whose image is the "
    "RemoteImage's name (the tag, not the pulled image's ID) publishing 80 as 8080 with no "
    "address (every interface). No network, user, limits or health check.",
}
DEPLOYS_REDIS: Final = False
STACK: Final = "dev"
PROJECT: Final = "pulumi-docker-demo"


def program() -> None:
    image = docker.RemoteImage("nginx-image", name="nginx:alpine")
    docker.Container(
        "nginx-container",
        image=image.name,
        ports=[docker.ContainerPortArgs(internal=80, external=8080)],
    )
