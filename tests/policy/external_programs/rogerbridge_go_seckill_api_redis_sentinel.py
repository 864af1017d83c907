"""A Redis Sentinel (`redis-sentinel <file>`) whose sentinel.conf is bind-mounted from the host."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "rogerBridge/go-seckill-api",
    "path": "redisDocker/sentinels/redisSentinel3/runRedisSentinel3.sh",
    "commit": "06ad8122bd944817ae953e5c2ae077644daa900a",
    "language": "shell (docker run)",
    "note": "-v $PWD/sentinel.conf:... -> volumes hostPath ($PWD written as the script's "
    "directory); --network=redisStore --network-alias=sentinel3 -> networksAdvanced with an "
    "alias (the network is created by hand, outside the script: not declared here either); "
    "--restart=always -> restart. sentinel.conf is not in the repository.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "go-seckill-api"


def program() -> None:
    docker.Container(
        "sentinel3",
        name="sentinel3",
        image="redis:latest",
        command=["redis-sentinel", "/usr/local/etc/redis/sentinel.conf"],
        restart="always",
        volumes=[
            docker.ContainerVolumeArgs(
                host_path="/srv/go-seckill-api/redisDocker/sentinels/redisSentinel3/sentinel.conf",
                container_path="/usr/local/etc/redis/sentinel.conf",
            )
        ],
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name="redisStore", aliases=["sentinel3"])
        ],
    )
