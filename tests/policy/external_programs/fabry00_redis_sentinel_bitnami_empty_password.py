"""Bitnami's Redis Sentinel image on the host network with ALLOW_EMPTY_PASSWORD=yes."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "fabry00/redis-sentinel",
    "path": "docker/deploy-sentinel-3.sh",
    "commit": "e9e764a882185e821b828410fc64bc2faa236cfb",
    "language": "shell (docker run)",
    "note": "--net=host -> network_mode host; -e -> envs; --rm -> rm. The commented-out variant "
    "(publishing 26379 instead of the host network) is left out.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "redis-sentinel"


def program() -> None:
    docker.Container(
        "redis-sentinel",
        name="redis-sentinel",
        image="bitnami/redis-sentinel:latest",
        network_mode="host",
        rm=True,
        envs=[
            "ALLOW_EMPTY_PASSWORD=yes",
            "REDIS_REPLICATION_MODE=slave",
            "REDIS_MASTER_HOST=192.168.122.105",
            "REDIS_MASTER_PORT_NUMBER=6379",
            "REDIS_SENTINEL_ANNOUNCE_IP=192.168.122.105",
        ],
    )
