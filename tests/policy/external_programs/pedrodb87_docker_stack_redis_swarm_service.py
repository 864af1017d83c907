"""`docker service create` of the official image: 3 replicas, port 6379 published in host mode."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "pedrodb87/docker_stack",
    "path": "redis.sh",
    "commit": "fc309dc796dbaf30497de89a4e8b5bfe0e5f67d9",
    "language": "shell (docker service create)",
    "note": "--replicas=3 -> mode.replicated.replicas; --publish mode=host,target=6379,"
    "published=6379 -> endpointSpec.ports (publishMode host); --constraint -> "
    "taskSpec.placement.constraints; the image's default command runs redis-server.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "docker_stack"


def program() -> None:
    docker.Service(
        "redis",
        name="redis",
        mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=3)),
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(image="redis"),
            placement=docker.ServiceTaskSpecPlacementArgs(constraints=["node.role==worker"]),
        ),
        endpoint_spec=docker.ServiceEndpointSpecArgs(
            ports=[
                docker.ServiceEndpointSpecPortArgs(
                    target_port=6379, published_port=6379, publish_mode="host"
                )
            ]
        ),
    )
