"""A privileged Redis with a host redis.conf, then `--appendonly yes --requirepass` on argv."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "xftxyz2001/ways",
    "path": "redis7.2.3.sh",
    "commit": "24531c8be2d4b2f07b8199117ec7b8fa5c756a95",
    "language": "shell (docker run)",
    "note": "--privileged=true -> privileged; -p -> ports; each -v ~/...:... -> volumes hostPath "
    "(~ written as /root); --restart -> restart; the command after the image -> command.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "ways"


def program() -> None:
    docker.Container(
        "redis",
        name="redis",
        image="redis:7.2.3",
        restart="unless-stopped",
        privileged=True,
        ports=[docker.ContainerPortArgs(internal=6379, external=6379)],
        volumes=[
            docker.ContainerVolumeArgs(host_path="/root/redis7.2.3/data", container_path="/data"),
            docker.ContainerVolumeArgs(
                host_path="/root/redis7.2.3/redis.conf", container_path="/etc/redis/redis.conf"
            ),
        ],
        command=[
            "redis-server",
            "/etc/redis/redis.conf",
            "--appendonly",
            "yes",
            "--requirepass",
            "123456",
        ],
    )
