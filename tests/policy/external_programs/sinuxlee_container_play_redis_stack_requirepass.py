"""redis-stack with `--requirepass` after the image, publishing 6379 and RedisInsight's 8001."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "SinuxLee/container-play",
    "path": "redis/docker/standalone_stack.sh",
    "commit": "8bf51af6fdfdf8928e5c9377c6b9531b0f17af8b",
    "language": "shell (docker run)",
    "note": "-p -> ports; -v $PWD/redis-stack:/data -> volumes hostPath ($PWD written as the "
    "script's directory); --hostname -> hostname; the options after the image -> command.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "container-play"


def program() -> None:
    docker.Container(
        "redis-stack",
        name="redis-stack",
        hostname="redis-stack",
        image="redis/redis-stack:7.4.0-v8",
        ports=[
            docker.ContainerPortArgs(internal=6379, external=6379),
            docker.ContainerPortArgs(internal=8001, external=8001),
        ],
        volumes=[
            docker.ContainerVolumeArgs(
                host_path="/srv/container-play/redis/docker/redis-stack", container_path="/data"
            )
        ],
        command=["--requirepass", "Admin123"],
    )
