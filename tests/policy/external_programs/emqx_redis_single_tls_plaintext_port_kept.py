"""EMQX's CI Redis with TLS: the official image given its options one word per option and value
(`--tls-port 6380`, which redis-server joins as a config line), plaintext 6379 left on, no
password, on a bridge network with fixed public addresses, certificates from a host path."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "emqx/emqx",
    "path": ".ci/docker-compose-file/docker-compose-redis-single-tls.yaml",
    "commit": "0006b0ec0d09c9f80a59c185655ca36a23c8740c",
    "language": "docker compose",
    "note": "redis:${REDIS_TAG} -> redis:7.0 (.ci/docker-compose-file/.env); command (a YAML "
    "list, each item one argv word, '--tls-port 6380' included) -> command as written; the "
    "certs directory -> volumes hostPath (the repository path written out); restart -> "
    "restart; the emqx_bridge network (declared in .ci/docker-compose-file/docker-compose.yaml: "
    "bridge, IPv6 on, fixed subnets) -> a docker.Network with its IPAM configs, joined with the "
    "fixed ipv4/ipv6 addresses.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "emqx-ci"


def program() -> None:
    bridge = docker.Network(
        "emqx_bridge",
        name="emqx_bridge",
        driver="bridge",
        ipv6=True,
        ipam_configs=[
            docker.NetworkIpamConfigArgs(subnet="172.100.239.0/24", gateway="172.100.239.1"),
            docker.NetworkIpamConfigArgs(subnet="2001:3200:3200::/64", gateway="2001:3200:3200::1"),
        ],
    )
    docker.Container(
        "redis_server",
        name="redis",
        image="redis:7.0",
        command=[
            "redis-server",
            "--bind 0.0.0.0 ::",
            "--tls-port 6380",
            "--tls-cert-file /tls/redis.crt",
            "--tls-key-file /tls/redis.key",
            "--tls-ca-cert-file /tls/ca.crt",
        ],
        restart="always",
        volumes=[
            docker.ContainerVolumeArgs(
                host_path="/srv/emqx/apps/emqx_auth_redis/test/emqx_auth_redis_SUITE_data/certs",
                container_path="/tls",
            )
        ],
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(
                name=bridge.name, ipv4_address="172.100.239.14", ipv6_address="2001:3200:3200::14"
            )
        ],
    )
