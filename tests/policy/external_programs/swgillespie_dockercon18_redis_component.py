"""DockerCon 2018 demo, step 2: Redis inside a ComponentResource, Redis Commander beside it."""

from __future__ import annotations

from typing import Final

import pulumi
import pulumi_docker as docker

SOURCE: Final = {
    "repository": "swgillespie/dockercon18",
    "path": "step2/index.ts, step2/redis.ts",
    "commit": "7f8c8c0d6a916ae06027998a3ed34652731c7722",
    "language": "TypeScript",
    "note": "Translated line by line: the Redis ComponentResource (type dockercon:docker:Redis) "
    "parents its RemoteImage and Container, so their URNs carry the component's type; the "
    "container takes the image by RemoteImage.name (a tag, redis:latest) and joins the "
    "program's auto-named network; Redis Commander gets REDIS_HOST from the component's host "
    "output (the Redis container's auto-name) and publishes 8081 on host port 3000.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "dockercon18"


class Redis(pulumi.ComponentResource):
    """redis.ts's component: a RemoteImage and a Container parented to it."""

    def __init__(self, name: str, network: docker.Network) -> None:
        super().__init__("dockercon:docker:Redis", name, None, None)
        child = pulumi.ResourceOptions(parent=self)
        image = docker.RemoteImage(f"{name}-image", name="redis:latest", keep_locally=True,
                                   opts=child)  # fmt: skip
        container = docker.Container(
            f"{name}-container",
            image=image.name,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name)],
            restart="on-failure",
            opts=child,
        )
        self.host = container.name
        self.register_outputs({"host": self.host})


def program() -> None:
    network = docker.Network("net")
    redis = Redis("redis", network)
    commander_image = docker.RemoteImage(
        "redis-commander-image", name="rediscommander/redis-commander:latest", keep_locally=True
    )
    docker.Container(
        "redis-commander",
        image=commander_image.name,
        restart="on-failure",
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name)],
        envs=[redis.host.apply(lambda name: f"REDIS_HOST={name}")],
        ports=[docker.ContainerPortArgs(internal=8081, external=3000)],
    )
