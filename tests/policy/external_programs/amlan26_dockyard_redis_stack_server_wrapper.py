"""redis-stack-server run through its wrapper script with a literal password on argv, 6379
published on every interface, a named volume at /data (the wrapper keeps data elsewhere)."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "amlan26/Dockyard",
    "path": "Redis-Stack-Docker/compose.yml",
    "commit": "5b6cdf052f5f4e8abff4bc8b7ee89286d5f99a50",
    "language": "docker compose",
    "note": "command (a string) -> command split into words; ports 6379:6379 -> ports (no ip: "
    "every interface); the top-level volume redis_data -> a docker.Volume mounted at /data; "
    "restart -> restart; container_name -> name. Compose puts the service on its project "
    "network, a plain bridge: declared here as <project>_default (project 'redis-stack-docker').",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "redis-stack-docker"


def program() -> None:
    network = docker.Network("default", name="redis-stack-docker_default")
    data = docker.Volume("redis_data", name="redis-stack-docker_redis_data")
    docker.Container(
        "redis_stack",
        name="redis-stack",
        image="redis/redis-stack-server:latest",
        command=["redis-stack-server", "--requirepass", "12345"],
        ports=[docker.ContainerPortArgs(internal=6379, external=6379)],
        volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path="/data")],
        restart="always",
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["redis_stack"])
        ],
    )
