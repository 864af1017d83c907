"""Redis master, two replicas and three sentinels; the sentinels run an image built FROM redis
whose own entrypoint starts `redis-server sentinel.conf --sentinel`: the containers show only
port 26379 and the sentinel's settings in variables."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "qkr107781/hhplus_e-commerce_server",
    "path": "docker-compose.yml, .env, docker/sentinel/Dockerfile, docker/sentinel/entrypoint.sh",
    "commit": "088a7cf985c681a4c7ece2d07b1370c35ed18fc8",
    "language": "docker compose + Dockerfile",
    "note": "The redis-master, redis-replica-1/2 and sentinel-1/2/3 services (MySQL and the "
    "Spring app left out). A string command is split into words by compose and run without "
    "a shell; ports as written (every interface; the replicas publish 6380/6381 although "
    "they listen on 6379); redis-net (bridge) declared as <project>_redis-net with each "
    "service's name as alias (project 'hhplus'); container names as compose gives them. "
    "The sentinels' build (context "
    "./docker/sentinel: FROM redis:latest, COPY sentinel.conf and entrypoint.sh, ENTRYPOINT "
    "the script, which seds SENTINEL_QUORUM, SENTINEL_DOWN_AFTER and SENTINEL_FAILOVER into "
    "sentinel.conf and runs redis-server /etc/redis/sentinel.conf --sentinel) -> one Image "
    "resource; env_file .env (committed, those three variables) -> envs.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "hhplus"

SENTINEL_ENV: Final = ["SENTINEL_QUORUM=2", "SENTINEL_DOWN_AFTER=5000", "SENTINEL_FAILOVER=500"]


def program() -> None:
    network = docker.Network("redis-net", name="hhplus_redis-net", driver="bridge")

    def on_network(alias: str) -> list[docker.ContainerNetworksAdvancedArgs]:
        return [docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[alias])]

    docker.Container(
        "redis-master",
        name="hhplus-redis-master-1",
        image="redis:latest",
        command=["redis-server"],
        ports=[docker.ContainerPortArgs(internal=6379, external=6379)],
        networks_advanced=on_network("redis-master"),
    )
    for index, port in ((1, 6380), (2, 6381)):
        docker.Container(
            f"redis-replica-{index}",
            name=f"hhplus-redis-replica-{index}-1",
            image="redis:latest",
            command=["redis-server", "--replicaof", "redis-master", "6379"],
            ports=[docker.ContainerPortArgs(internal=port, external=port)],
            networks_advanced=on_network(f"redis-replica-{index}"),
        )
    sentinel_image = docker.Image(
        "sentinel",
        image_name="hhplus-sentinel",
        build=docker.DockerBuildArgs(
            context="./docker/sentinel", dockerfile="./docker/sentinel/Dockerfile"
        ),
        skip_push=True,
    )
    for index, port in ((1, 26379), (2, 26380), (3, 26381)):
        docker.Container(
            f"sentinel-{index}",
            name=f"hhplus-sentinel-{index}-1",
            image=sentinel_image.image_name,
            envs=SENTINEL_ENV,
            ports=[docker.ContainerPortArgs(internal=26379, external=port)],
            networks_advanced=on_network(f"sentinel-{index}"),
        )
