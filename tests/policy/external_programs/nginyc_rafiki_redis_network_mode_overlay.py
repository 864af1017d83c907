"""Rafiki's Redis: `docker run --network $DOCKER_NETWORK` onto the attachable overlay network its
start script creates, with 6379 published on 6380 of every interface."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "nginyc/rafiki",
    "path": "scripts/start_redis.sh",
    "commit": "0207abb492abb87f1b515f6d82d7e3c625d8dccb",
    "language": "shell (docker run)",
    "note": "Values from .env.sh (same commit): REDIS_HOST singaauto_redis, DOCKER_NETWORK "
    "singaauto, REDIS_EXT_PORT 6380, REDIS_PORT 6379, IMAGE_REDIS redis:5.0.3-alpine3.8. The "
    "network comes from scripts/create_docker_swarm.sh: `docker network create singaauto -d "
    "overlay --attachable --scope=swarm` -> docker.Network (pulumi-docker has no scope input; "
    "an overlay network is swarm-scoped). `--network NAME` is the container's network mode "
    "(HostConfig.NetworkMode), so network_mode=network.name; --rm -> rm. The official "
    "image's defaults: plaintext, no password, protected mode off.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "rafiki"


def program() -> None:
    network = docker.Network("singaauto", name="singaauto", driver="overlay", attachable=True)
    docker.Container(
        "redis",
        name="singaauto_redis",
        image="redis:5.0.3-alpine3.8",
        network_mode=network.name,
        ports=[docker.ContainerPortArgs(internal=6379, external=6380)],
        rm=True,
    )
