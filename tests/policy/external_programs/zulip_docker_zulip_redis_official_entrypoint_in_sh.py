"""docker-zulip's Redis: the official image's docker-entrypoint.sh run from `sh -euc` with the
password read from a Compose secret (never on the program's argv), a named data volume, on the
project's bridge beside Zulip, which finds it by host name (SETTING_REDIS_HOST) over plaintext."""

from __future__ import annotations

from typing import Final

import pulumi
import pulumi_docker as docker

SOURCE: Final = {
    "repository": "zulip/docker-zulip",
    "path": "compose.yaml",
    "commit": "030c9cb9171b64a4eed3f1e66e859a8d77e11355",
    "language": "docker compose",
    "note": "The redis and zulip services (database, memcached and rabbitmq left out). command "
    "-> command as written ($$ is Compose's escape for $); the Compose secret "
    "zulip__redis_password (a file) -> a read-only host-path volume at "
    "/run/secrets/zulip__redis_password; named volumes -> docker.Volume mounts; the zulip "
    "service's long-form ports (target/published, no host_ip: every interface) -> ports; "
    "ulimits nofile -> ulimits; restart -> restart. Compose puts both on the project network, a "
    "plain bridge: declared here as <project>_default (project 'docker-zulip') with each "
    "service name as alias.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "docker-zulip"
SECRETS: Final = "/srv/docker-zulip/secrets"


def _secret(name: str) -> docker.ContainerVolumeArgs:
    return docker.ContainerVolumeArgs(
        host_path=f"{SECRETS}/{name}", container_path=f"/run/secrets/{name}", read_only=True
    )


def program() -> None:
    network = docker.Network("default", name="docker-zulip_default")
    redis_data = docker.Volume("redis", name="docker-zulip_redis")
    zulip_data = docker.Volume("zulip", name="docker-zulip_zulip")
    redis = docker.Container(
        "redis",
        image="redis:alpine",
        restart="unless-stopped",
        command=[
            "sh",
            "-euc",
            '/usr/local/bin/docker-entrypoint.sh --requirepass "$(cat $REDIS_PASSWORD_FILE)"',
        ],
        envs=["REDIS_PASSWORD_FILE=/run/secrets/zulip__redis_password"],
        volumes=[
            _secret("zulip__redis_password"),
            docker.ContainerVolumeArgs(volume_name=redis_data.name, container_path="/data"),
        ],
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["redis"])
        ],
    )
    docker.Container(
        "zulip",
        image="ghcr.io/zulip/zulip-server:12.0-0",
        restart="unless-stopped",
        ports=[
            docker.ContainerPortArgs(internal=25, external=25),
            docker.ContainerPortArgs(internal=80, external=80),
            docker.ContainerPortArgs(internal=443, external=443),
        ],
        envs=[
            "SETTING_REMOTE_POSTGRES_HOST=database",
            "SETTING_MEMCACHED_LOCATION=memcached:11211",
            "SETTING_RABBITMQ_HOST=rabbitmq",
            "SETTING_REDIS_HOST=redis",
        ],
        volumes=[
            *(
                _secret(name)
                for name in (
                    "zulip__postgres_password",
                    "zulip__memcached_password",
                    "zulip__rabbitmq_password",
                    "zulip__redis_password",
                    "zulip__secret_key",
                    "zulip__email_password",
                )
            ),
            docker.ContainerVolumeArgs(volume_name=zulip_data.name, container_path="/data"),
        ],
        ulimits=[docker.ContainerUlimitArgs(name="nofile", soft=1000000, hard=1048576)],
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["zulip"])
        ],
        opts=pulumi.ResourceOptions(depends_on=[redis]),
    )
