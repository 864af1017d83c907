"""`docker run -dit --rm --net=host --name=redis redis`: the official image on the host network."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "naimabdrahman/dock",
    "path": "run-dock-redis.sh",
    "commit": "1184994e2704b9a51c2d564a20a4f42fb7f4c523",
    "language": "shell (docker run)",
    "note": "--net=host -> network_mode host; --rm/-dit have no pulumi-docker counterpart "
    "(rm=True is the nearest and is kept); the image's default command runs redis-server.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "dock"


def program() -> None:
    docker.Container("redis", name="redis", image="redis", network_mode="host", rm=True)
