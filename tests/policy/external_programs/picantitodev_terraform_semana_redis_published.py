"""A Terraform Redis (the provider pulumi-docker bridges): pinned by ID, 6379 on every interface."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "picantitoDev/terraform-semana-02",
    "path": "redis.tf",
    "commit": "24703ba09c80d0a7da541616f0a441497c8f2c60",
    "language": "HCL (terraform-provider-docker, which pulumi-docker bridges)",
    "note": "docker_image redis:7.4.1-alpine and docker_container redis-server with "
    "image = docker_image.redis.image_id, ports {internal 6379, external 6379} (no ip: "
    "every interface) and restart always; the same arguments in pulumi-docker's Python SDK. "
    "The official image's defaults: plaintext, no password, protected mode off.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "terraform-semana-02"


def program() -> None:
    image = docker.RemoteImage("redis", name="redis:7.4.1-alpine")
    docker.Container(
        "redis",
        name="redis-server",
        image=image.image_id,
        ports=[docker.ContainerPortArgs(internal=6379, external=6379)],
        restart="always",
    )
