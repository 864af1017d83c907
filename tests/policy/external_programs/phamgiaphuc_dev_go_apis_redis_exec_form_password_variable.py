"""Redis given `$REDIS_PASSWORD` on an exec-form command line: nothing expands it, so the password
is those fifteen characters (the author moved it into `sh -c` the next day)."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "phamgiaphuc/dev-go-apis",
    "path": "docker-compose.yml",
    "commit": "df4b4388dbcd7a39f27ac7e4771a42f9b516a8a4",
    "language": "docker compose",
    "note": 'The redis service. command ["redis-server", "--requirepass", '
    '"$$REDIS_PASSWORD"]: compose turns $$ into $ and, the command being a list, runs it '
    "without a shell, so redis-server gets the text $REDIS_PASSWORD; the health check "
    '["CMD", "redis-cli", "-a", "$$REDIS_PASSWORD", "ping"] sends the same text, '
    "which is why it passed. 8052c084 (the next commit) changed both to a shell. "
    "environment REDIS_PASSWORD: ${REDIS_PASSWORD:-redis123} -> the file's default; "
    "ports ${REDIS_PORT:-8003}:6379 -> its default 8003 on every interface; redis-data:/data "
    "-> a declared volume; compose's project network (bridge, <project>_default, the service "
    "name as alias) declared here (project 'dev-go-apis'). The other services are left out.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "dev-go-apis"


def program() -> None:
    network = docker.Network("default", name="dev-go-apis_default")
    volume = docker.Volume("redis-data", name="dev-go-apis_redis-data")
    docker.Container(
        "redis",
        name="redis_db",
        image="redis:alpine3.20",
        command=["redis-server", "--requirepass", "$REDIS_PASSWORD"],
        envs=["REDIS_PASSWORD=redis123"],
        ports=[docker.ContainerPortArgs(internal=6379, external=8003)],
        volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path="/data")],
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD", "redis-cli", "-a", "$REDIS_PASSWORD", "ping"],
            interval="5s",
            timeout="3s",
            retries=3,
        ),
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["redis"])
        ],
    )
