"""A production compose file's Redis given `${REDIS_PASSWORD:-changeme-in-production}` on its
command line and in its health check: with no REDIS_PASSWORD in .env the password is that
22-character default (.env.example's is `localdev`)."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "BrunoRodolpho/ibatexas",
    "path": "docker-compose.prod.yml",
    "commit": "8cbbc4a87217729e4bb2cbd56fd3c2ce02d3eb6c",
    "language": "docker compose",
    "note": "The redis service (the others left out). Compose substitutes "
    "${REDIS_PASSWORD:-changeme-in-production} before it starts anything: transcribed as the "
    "default the file gives, which it runs with when .env sets no REDIS_PASSWORD (.env.example "
    "at the same commit sets localdev, shorter still). command and healthcheck test are lists "
    "(no shell); 127.0.0.1:6379:6379 -> ports with ip; redis_data:/data -> a declared volume "
    "(<project>_redis_data); deploy.resources.limits.memory 256M -> memory 256; compose's "
    "project network (bridge, <project>_default, the service name as alias) declared here "
    "(project 'ibatexas').",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "ibatexas"

DEFAULT_PASSWORD: Final = "changeme-in-production"  # the program's own default


def program() -> None:
    network = docker.Network("default", name="ibatexas_default")
    volume = docker.Volume("redis_data", name="ibatexas_redis_data")
    docker.Container(
        "redis",
        name="ibatexas-redis",
        image="redis:7-alpine",
        command=["redis-server", "--requirepass", DEFAULT_PASSWORD],
        ports=[docker.ContainerPortArgs(internal=6379, external=6379, ip="127.0.0.1")],
        volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path="/data")],
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD", "redis-cli", "-a", DEFAULT_PASSWORD, "ping"],
            interval="5s",
            timeout="5s",
            retries=5,
        ),
        restart="unless-stopped",
        memory=256,
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["redis"])
        ],
    )
