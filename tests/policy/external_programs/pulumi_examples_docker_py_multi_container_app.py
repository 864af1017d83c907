"""pulumi/examples' Python multi-container app: Redis from a RemoteImage, an app built locally."""

from __future__ import annotations

from typing import Final

import pulumi
import pulumi_docker as docker

SOURCE: Final = {
    "repository": "pulumi/examples",
    "path": "docker-py-multi-container-app/__main__.py",
    "commit": "026ea5036a8c1ff97a79f2412e36aad2aad8123c",
    "language": "python",
    "note": "The program as written for pulumi-docker v3; two names updated for the v4+ SDK "
    "installed here, with the same values: RemoteImage.latest (the pulled image's ID) -> "
    "image_id, docker.DockerBuild -> docker.DockerBuildArgs. The same program as records is "
    "tests/policy/external/pulumi-examples-docker-py-multi-container-app.json.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "docker-py-multi-container-app"


def program() -> None:
    redis_port = 6379
    redis_host = "redisdb"
    network = docker.Network("network", name="services")
    redis_image = docker.RemoteImage("redis_image", name="redis:6.2", keep_locally=True)
    redis_container = docker.Container(
        "redis_container",
        image=redis_image.image_id,
        ports=[docker.ContainerPortArgs(internal=redis_port, external=redis_port)],
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[redis_host])
        ],
    )
    app_image = docker.Image(
        "app_image",
        build=docker.DockerBuildArgs(context="./app"),
        image_name="app",
        skip_push=True,
    )
    app_port = 5000
    docker.Container(
        "app_container",
        image=app_image.base_image_name,
        ports=[docker.ContainerPortArgs(internal=app_port, external=app_port)],
        envs=[f"REDIS_HOST={redis_host}", f"REDIS_PORT={redis_port}"],
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name)],
        opts=pulumi.ResourceOptions(depends_on=[redis_container]),
    )
    pulumi.export("url", f"http://localhost:{app_port}")
