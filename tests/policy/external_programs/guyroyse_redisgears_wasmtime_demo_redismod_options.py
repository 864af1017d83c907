"""RedisLabs' redismod image run with only options after it (`--loadmodule ... --dir /data`),
6379 published on every interface and the data directory on a host path."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "guyroyse/redisgears-wasmtime-demo",
    "path": "start-redis.sh",
    "commit": "371e47f7c28386b4c912b58e8ebc2d62e92c60dd",
    "language": "shell (docker run)",
    "note": "-p 6379:6379 -> ports (no ip: every interface); -v `pwd`/redis:/data -> volumes "
    "hostPath (`pwd` written as the script's directory); the options after the image -> "
    "command. redislabs/redismod's entrypoint is redis-server with its modules, so the options "
    "are redis-server's; the image's own config is not visible here.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "redisgears-wasmtime-demo"


def program() -> None:
    docker.Container(
        "redis",
        image="redislabs/redismod",
        ports=[docker.ContainerPortArgs(internal=6379, external=6379)],
        volumes=[
            docker.ContainerVolumeArgs(
                host_path="/srv/redisgears-wasmtime-demo/redis", container_path="/data"
            )
        ],
        command=[
            "--loadmodule",
            "/var/opt/redislabs/lib/modules/redisgears.so",
            "--dir",
            "/data",
        ],
    )
