"""Shotover's Redis Cluster test bed: six Bitnami redis-cluster nodes and a cluster creator,
TLS configured through REDIS_TLS_* variables with client certificates not required, no
password (ALLOW_EMPTY_PASSWORD=yes), each node published on a host port of every interface."""

from __future__ import annotations

from typing import Final

import pulumi
import pulumi_docker as docker

SOURCE: Final = {
    "repository": "shotover/shotover-proxy",
    "path": "shotover-proxy/example-configs/redis-cluster-tls/docker-compose.yaml",
    "commit": "5c6e5fc4572ca76f87c67639cd46b65f21946b70",
    "language": "docker compose",
    "note": 'Each service -> a Container with its compose name; ports "222N:6379" -> ports (no '
    "ip: every interface); ../redis-tls/certs -> volumes hostPath (the compose file's directory "
    "written out); the YAML anchors expanded; depends_on -> depends_on. Compose puts the "
    "services on the project's default network, a user-defined bridge named <project>_default "
    "with each service name as alias: declared here (project 'redis-cluster-tls'). Bitnami's "
    "entrypoint turns the REDIS_* variables into its own redis.conf; redis-cluster-init, the "
    "creator (REDIS_CLUSTER_CREATOR=yes), publishes nothing.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "redis-cluster-tls"

IMAGE: Final = "bitnami/redis-cluster:6.0-debian-10"
NODES: Final = [f"redis-node-{n}" for n in range(6)]
CERTS: Final = "/srv/shotover-proxy/shotover-proxy/example-configs/redis-tls/certs"
TLS_ENV: Final = [
    "ALLOW_EMPTY_PASSWORD=yes",
    f"REDIS_NODES={' '.join(NODES)}",
    "REDIS_TLS_PORT=6379",
    "REDIS_TLS_ENABLED=true",
    "REDIS_TLS_CERT_FILE=/usr/local/etc/redis/certs/redis.crt",
    "REDIS_TLS_KEY_FILE=/usr/local/etc/redis/certs/redis.key",
    "REDIS_TLS_CA_FILE=/usr/local/etc/redis/certs/ca.crt",
]


def program() -> None:
    network = docker.Network("default", name="redis-cluster-tls_default")
    keys = docker.ContainerVolumeArgs(host_path=CERTS, container_path="/usr/local/etc/redis/certs")
    nodes = [
        docker.Container(
            name,
            name=name,
            image=IMAGE,
            ports=[docker.ContainerPortArgs(internal=6379, external=2220 + index)],
            volumes=[keys],
            envs=[*TLS_ENV, "REDIS_TLS_AUTH_CLIENTS=no"],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[name])
            ],
        )
        for index, name in enumerate(NODES)
    ]
    docker.Container(
        "redis-cluster-init",
        name="redis-cluster-init",
        image=IMAGE,
        volumes=[keys],
        envs=["REDIS_CLUSTER_REPLICAS=1", "REDIS_CLUSTER_CREATOR=yes", *TLS_ENV],
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["redis-cluster-init"])
        ],
        opts=pulumi.ResourceOptions(depends_on=nodes),
    )
