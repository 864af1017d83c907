"""redis-stack started by its own script, the password in REDIS_ARGS (the images' documented
way), Redis and RedisInsight published on every interface."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "rathijit4u/mock-api-cowj",
    "path": "README.md",
    "commit": "190c021633efac47e53b962c742ca960f8875640",
    "language": "shell (docker run, in a README)",
    "note": "The 'Redis with authentication' line: --name -> name; -p -> ports (no ip: every "
    'interface); -e REDIS_ARGS="--requirepass mypassword" -> envs; no command, so the image runs '
    "its start script (/entrypoint.sh).",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "mock-api-cowj"


def program() -> None:
    docker.Container(
        "redis-stack",
        name="redis-stack",
        image="redis/redis-stack:latest",
        ports=[
            docker.ContainerPortArgs(internal=6379, external=6379),
            docker.ContainerPortArgs(internal=8001, external=8001),
        ],
        envs=["REDIS_ARGS=--requirepass mypassword"],
    )
