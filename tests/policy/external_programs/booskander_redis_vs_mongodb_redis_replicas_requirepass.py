"""Terraform `count` replicas of the official Redis (the provider pulumi-docker bridges): each on
its own declared volume, published on every interface, the password in env and on argv."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "booskander/Redis-VS-MongoDB",
    "path": "terraform/redis.tf",
    "commit": "8a6f2e92cc74612ad025ae9c25ca5ea20bc3f313",
    "language": "HCL (terraform-provider-docker, which pulumi-docker bridges)",
    "note": "count = var.redis_replicas_count (2 in terraform/variables.tf at the same commit) "
    "-> a loop; docker_image.redis_image.name (redis:latest) -> the RemoteImage's name; "
    "external = 6379 + count.index with no ip -> every interface; the password is the "
    "program's own literal, in env and on argv; lifecycle ignore_changes has no bearing on "
    "the inputs.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "redis-vs-mongodb"

REPLICAS: Final = 2


def program() -> None:
    network = docker.Network("redis_network", name="redis-network")
    image = docker.RemoteImage("redis_image", name="redis:latest")
    for index in range(REPLICAS):
        volume = docker.Volume(f"redis_volume-{index}", name=f"redis_data_{index + 1}")
        docker.Container(
            f"redis_container-{index}",
            image=image.name,
            name=f"redis-node-{index + 1}",
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name)],
            ports=[docker.ContainerPortArgs(internal=6379, external=6379 + index)],
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path="/data")],
            envs=["REDIS_PASSWORD=password"],
            command=["redis-server", "--requirepass", "password", "--save", "900", "1",
                     "--loglevel", "warning"],
        )  # fmt: skip
