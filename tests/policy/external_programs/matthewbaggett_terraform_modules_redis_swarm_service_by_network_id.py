"""A Nextcloud stack's Redis: a Swarm service, pinned by digest, on an overlay network by ID."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "matthewbaggett/terraform_modules",
    "path": "products/nextcloud/redis.tf, products/nextcloud/network.tf, "
    "products/redis/redis.tf, products/redis/credentials.tf, docker/network/network.tf, "
    "docker/network/locals.tf, docker/network/subnet.tf, docker/service/service.tf, "
    "docker/service/volume.tf, docker/service/locals.tf, docker/service/labels.tf, "
    "docker/service/inputs.tf",
    "commit": "8bceb0a3e97ec8697fef916addca0fd723561458",
    "language": "HCL (terraform-provider-docker, which pulumi-docker bridges)",
    "note": "The Nextcloud product's Redis module and network module, flattened to the "
    "resources they declare with their defaults (stack_name nextcloud; Nextcloud and its "
    "Postgres left out). The network: overlay, attachable, one IPAM subnet drawn by "
    "random_integer (a fixed stand-in, 172.200.25.0/24, gateway .1). Redis: the Swarm service "
    "nextcloud-redis running redis:7 by the registry's digest (the docker_registry_image data "
    "source's sha256_digest: a stand-in digest here, no registry is reachable), command "
    "redis-server --requirepass <random_password.auth.result, 16 letters and digits, made "
    "nonsensitive: a stand-in literal> --appendonly yes --save 60 1 --loglevel warning; the "
    "network joined by its ID (networks_advanced.name = network.id, as the module does); its "
    "data volume mounted by the volume's ID at /data, read-write; a redis-cli ping health "
    "check every 10 s; the module's labels; restart any, one replica, stop-first updates, "
    "a 2 min converge; resource limits 0 (none) as the module writes them when unset.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "nextcloud"

_STACK_NAME: Final = "nextcloud"
_AUTH: Final = "q7Xr2mKp9LwT4vNz"  # stand-in for random_password.auth (length 16, special false)
_IMAGE: Final = "redis:7@sha256:" + "7" * 64  # stand-in for the registry's sha256_digest


def program() -> None:
    network = docker.Network(
        "network",
        name=f"{_STACK_NAME}-nextcloud",
        driver="overlay",
        attachable=True,
        ipam_driver="default",
        ipam_configs=[
            docker.NetworkIpamConfigArgs(
                aux_address={}, subnet="172.200.25.0/24", gateway="172.200.25.1"
            )
        ],
        labels=[],
    )
    data = docker.Volume("volume-data", name=f"{_STACK_NAME}-redis-data")
    labels = {
        "com.docker.stack.namespace": _STACK_NAME,
        "com.docker.stack.image": "redis:7",
        "ooo.grey.service.stack": _STACK_NAME,
        "ooo.grey.service.name": "redis",
        "ooo.grey.service.image": "redis:7",
    }
    docker.Service(
        "instance",
        name=f"{_STACK_NAME}-redis",
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=_IMAGE,
                commands=[
                    "redis-server",
                    "--requirepass",
                    _AUTH,
                    "--appendonly",
                    "yes",
                    "--save",
                    "60",
                    "1",
                    "--loglevel",
                    "warning",
                ],
                env={},
                mounts=[
                    docker.ServiceTaskSpecContainerSpecMountArgs(
                        source=data.id, target="/data", type="volume", read_only=False
                    )
                ],
                healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                    tests=["CMD", "redis-cli", "ping"],
                    interval="10s",
                    timeout="3s",
                    retries=0,
                    start_period="10s",
                ),
                labels=[
                    docker.ServiceTaskSpecContainerSpecLabelArgs(label=k, value=v)
                    for k, v in labels.items()
                ],
            ),
            networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(name=network.id)],
            restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
                condition="any", delay="0s", window="0s", max_attempts=0
            ),
            placement=docker.ServiceTaskSpecPlacementArgs(max_replicas=0, constraints=[]),
            resources=docker.ServiceTaskSpecResourcesArgs(
                limits=docker.ServiceTaskSpecResourcesLimitsArgs(memory_bytes=0, nano_cpus=0),
                reservation=docker.ServiceTaskSpecResourcesReservationArgs(
                    memory_bytes=0, nano_cpus=0
                ),
            ),
        ),
        mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
        converge_config=docker.ServiceConvergeConfigArgs(delay="5s", timeout="2m"),
        update_config=docker.ServiceUpdateConfigArgs(parallelism=1, order="stop-first"),
        endpoint_spec=docker.ServiceEndpointSpecArgs(ports=[]),
        labels=[docker.ServiceLabelArgs(label=k, value=v) for k, v in labels.items()],
    )
