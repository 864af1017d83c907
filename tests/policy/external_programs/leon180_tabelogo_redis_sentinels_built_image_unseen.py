"""A Redis master, a replica and three sentinels whose image (FROM redis, ENTRYPOINT
`redis-server /etc/redis/sentinel.conf --sentinel`, `protected-mode no` in the config it bakes
in) is built locally: the sentinel containers show no port, variable or upload, so nothing on
them tells that they run Redis (a blind spot the pack cannot close by reading names)."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "Leon180/tabelogo",
    "path": "project/docker-compose.yml, project/redis/sentinel/sentinel.dockerfile",
    "commit": "5ec0c9aa5b92f945b4e5a08a993a09cd3dcb31d5",
    "language": "docker compose + Dockerfile",
    "note": "The redis-master, redis-slave and redis-sentinel-1/2/3 services (the application "
    "services left out). ./db-data/redis/:/data/ -> volumes hostPath (relative to the "
    "project directory: /srv/tabelogo/project/db-data/redis here); ports as written (every "
    "interface); a string command is split into words by compose and run without a shell; "
    "links only name a host. The sentinels' build (context ./redis/sentinel, "
    "sentinel.dockerfile) -> one Image resource. Compose puts every service on the project's "
    "default bridge network (<project>_default, the service name as alias): declared here "
    "(project 'project'); container names as compose gives them.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "project"


def program() -> None:
    network = docker.Network("default", name="project_default")

    def on_network(alias: str) -> list[docker.ContainerNetworksAdvancedArgs]:
        return [docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[alias])]

    docker.Container(
        "redis-master",
        name="project-redis-master-1",
        image="redis:7.0.14-alpine",
        ports=[docker.ContainerPortArgs(internal=6379, external=6379)],
        volumes=[
            docker.ContainerVolumeArgs(
                host_path="/srv/tabelogo/project/db-data/redis", container_path="/data/"
            )
        ],
        networks_advanced=on_network("redis-master"),
    )
    docker.Container(
        "redis-slave",
        name="project-redis-slave-1",
        image="redis:7.0.14-alpine",
        command=["redis-server", "--slaveof", "redis-master", "6379"],
        ports=[docker.ContainerPortArgs(internal=6379, external=6380)],
        networks_advanced=on_network("redis-slave"),
    )
    sentinel_image = docker.Image(
        "redis-sentinel",
        image_name="project-redis-sentinel",
        build=docker.DockerBuildArgs(
            context="./redis/sentinel", dockerfile="./redis/sentinel/sentinel.dockerfile"
        ),
        skip_push=True,
    )
    for index in (1, 2, 3):
        docker.Container(
            f"redis-sentinel-{index}",
            name=f"project-redis-sentinel-{index}-1",
            image=sentinel_image.image_name,
            networks_advanced=on_network(f"redis-sentinel-{index}"),
        )
