"""A Python tutorial's nginx container: untagged image, port 80 on a host port Docker picks."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "mkennedy85/pulumi-tutorials",
    "path": "lab22-docker-ngnix/__main__.py",
    "commit": "42c7e06e5ca1f4c477d43c3f87062d132a78bb64",
    "language": "Python (pulumi-docker v3 SDK)",
    "note": "RemoteImage nginx (no tag: latest) kept locally; Container with image=image.latest "
    "(v3's pulled image ID; pulumi-docker 4 names it image_id, used here) and ports "
    "[{internal: 80}]: no external port, so Docker publishes 80 on a host port it picks, "
    "on every interface (the README shows 0.0.0.0:49164->80/tcp).",
}
DEPLOYS_REDIS: Final = False
STACK: Final = "dev"
PROJECT: Final = "pul-dock"


def program() -> None:
    image = docker.RemoteImage("nginx-image", name="nginx", keep_locally=True)
    docker.Container("nginx", image=image.image_id, ports=[docker.ContainerPortArgs(internal=80)])
