"""The official image given only `--port 6381`, on the host network."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "Hadryan/movies-recommendations",
    "path": "Makefile",
    "commit": "3f70f34526c8ea0e484a5374e04d5ab2c7d47799",
    "language": "make (docker run)",
    "note": "Target redis: --network host -> network_mode host; --rm -> rm; the option after "
    "the image -> command (docker-entrypoint.sh puts redis-server in front).",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "movies-recommendations"


def program() -> None:
    docker.Container(
        "redisasqueuingserver",
        name="redisasqueuingserver",
        image="redis:latest",
        network_mode="host",
        rm=True,
        command=["--port", "6381"],
    )
