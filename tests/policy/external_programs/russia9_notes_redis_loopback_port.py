"""Compose notes: the official image publishing 6379 on 127.0.0.1 only, a named volume."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "Russia9/notes",
    "path": "src/docker/docker-compose/redis.md",
    "commit": "3cd41ffa32beb48f5c6f18dc5e11f14863076f99",
    "language": "docker compose (in Markdown)",
    "note": 'ports "127.0.0.1:6379:6379" -> ports with ip 127.0.0.1; the top-level volume '
    "redis_data -> a docker.Volume the container mounts at /var/lib/redis; restart -> restart. "
    "Compose puts the service on its project network, a plain bridge; written here as Docker's "
    "default bridge, as the note declares no network.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "notes"


def program() -> None:
    data = docker.Volume("redis_data", name="redis_data")
    docker.Container(
        "redis",
        image="redis:7.2.4",
        restart="always",
        ports=[docker.ContainerPortArgs(internal=6379, external=6379, ip="127.0.0.1")],
        volumes=[
            docker.ContainerVolumeArgs(volume_name=data.name, container_path="/var/lib/redis")
        ],
    )
