"""A Swarm stack's Redis started by a script given as a Swarm config (TLS-only inside it)."""

from __future__ import annotations

import base64
from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "SStranks/tech-expo",
    "path": "apps/crm/docker/docker-compose.swarm.yml",
    "commit": "0304abdfa87e51bca2181c4aa7d6c32269dabed3",
    "language": "docker compose (docker stack deploy)",
    "note": "Service redis only, with its two configs. entrypoint -> containerSpec.commands; "
    "configs -> docker.ServiceConfig + containerSpec.configs (their file's text is not "
    "reproduced: the pack reads no start script); healthcheck -> healthcheck; the external "
    "volume techexpo-redis-prod -> a volume mount of a volume the stack does not declare; "
    "deploy.restart_policy -> restartPolicy; the network joined by its ID (network.id, as "
    "pulumi-docker 5 asks of a service). `docker stack deploy` puts a service that names "
    "no network on the stack's default overlay network: declared here. The script "
    "(apps/crm/docker/redis/redis-init.sh) runs redis-server TLS-only with tls-auth-clients "
    "and a password read from a Swarm secret: a reviewer reading it would find it close to "
    "right, but the pack cannot read it, so every setting fails closed.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "prod"
PROJECT: Final = "tech-expo-crm"


def _config(logical: str, script: str) -> docker.ServiceConfig:
    text = f"#!/usr/bin/env sh\n# {script} of the source repository (not reproduced here)\n"
    return docker.ServiceConfig(
        logical,
        name=f"tech-expo-crm_{logical}",
        data=base64.b64encode(text.encode()).decode(),
    )


def program() -> None:
    network = docker.Network("default", name="tech-expo-crm_default", driver="overlay")
    init = _config("redis_init", "redis/redis-init.sh")
    health = _config("redis_healthcheck", "redis/redis-healthcheck.sh")
    docker.Service(
        "redis",
        name="tech-expo-crm_redis",
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image="redis:8.0-alpine",
                commands=["/usr/local/bin/redis-init.sh"],
                mounts=[
                    docker.ServiceTaskSpecContainerSpecMountArgs(
                        type="volume", source="techexpo-redis-prod", target="/data"
                    )
                ],
                healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                    tests=["CMD", "/bin/sh", "/usr/local/bin/redis-healthcheck.sh"],
                    interval="30s",
                    timeout="5s",
                    retries=5,
                    start_period="15s",
                ),
                configs=[
                    docker.ServiceTaskSpecContainerSpecConfigArgs(
                        config_id=init.id,
                        config_name=init.name,
                        file_name="/usr/local/bin/redis-init.sh",
                    ),
                    docker.ServiceTaskSpecContainerSpecConfigArgs(
                        config_id=health.id,
                        config_name=health.name,
                        file_name="/usr/local/bin/redis-healthcheck.sh",
                    ),
                ],
            ),
            restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
                condition="any", delay="20s", max_attempts=3, window="300s"
            ),
            networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=network.id)],
        ),
    )
