"""A home server's Redis and Postgres (Terraform, the provider pulumi-docker bridges)."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "bkk87/docker-home-server",
    "path": "networks.tf, redis.tf, postgres.tf, variables.tf",
    "commit": "3bf2e84da502b26005d925edc5a56eb61bf7abe5 (postgres.tf 04167b4cdaee69ddac14c028"
    "231dbe8b945935c5)",
    "language": "HCL (terraform-provider-docker, which pulumi-docker bridges)",
    "note": "Two of its three bridge networks as declared (subnets, ip ranges, gateways, "
    "options: private_without_outbound has masquerading off and binds published ports to "
    "127.0.0.1 by default, but is not internal; check_duplicate is left out: pulumi-docker 4 "
    "no longer takes it, as Docker no longer needs it). Redis: redis:6 by tag, memory 32 "
    "(variables.tf), restart unless-stopped, a tmpfs-backed named volume at /data, on "
    "private_without_outbound, ipc_mode private. Postgres: postgres:11 by tag, "
    "POSTGRES_PASSWORD from a random_password in env (a literal stand-in here: pulumi_random "
    "is not installed; the pack judges the env, not where it came from), 5432 published on "
    "0.0.0.0, on the public network (named public_network in postgres.tf at that commit, "
    "public_with_outbound in networks.tf).",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "docker-home-server"

_OPTIONS: Final = {
    "com.docker.network.bridge.enable_icc": "true",
    "com.docker.network.driver.mtu": "1500",
}


def _network(name: str, octet: int, bridge: str, masquerade: str, binding: str) -> docker.Network:
    return docker.Network(
        name,
        name=name,
        driver="bridge",
        ipam_configs=[
            docker.NetworkIpamConfigArgs(
                subnet=f"172.{octet}.0.0/16",
                ip_range=f"172.{octet}.0.0/24",
                gateway=f"172.{octet}.0.1",
            )
        ],
        options={
            **_OPTIONS,
            "com.docker.network.bridge.name": bridge,
            "com.docker.network.bridge.enable_ip_masquerade": masquerade,
            "com.docker.network.bridge.host_binding_ipv4": binding,
        },
    )


def program() -> None:
    private = _network("private_without_outbound", 20, "docker2", "false", "127.0.0.1")
    public = _network("public_with_outbound", 19, "docker3", "true", "0.0.0.0")
    redis_image = docker.RemoteImage("redis", name="redis:6", keep_locally=True)
    redis_data = docker.Volume(
        "redis_data",
        name="redis_data",
        driver="local",
        driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=64m"},
    )
    docker.Container(
        "redis",
        name="redis",
        image=redis_image.name,
        memory=32,
        restart="unless-stopped",
        start=True,
        mounts=[docker.ContainerMountArgs(target="/data", type="volume", source=redis_data.name)],
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=private.name)],
        ipc_mode="private",
    )
    postgres_image = docker.RemoteImage("postgres", name="postgres:11", keep_locally=True)
    postgres_data = docker.Volume("postgres", name="postgres_data", driver="local")
    docker.Container(
        "postgres",
        name="postgres",
        image=postgres_image.name,
        envs=["POSTGRES_PASSWORD=stand-in-for-a-random-password"],
        restart="unless-stopped",
        start=True,
        mounts=[
            docker.ContainerMountArgs(
                target="/var/lib/postgresql/data",
                type="volume",
                source=postgres_data.name,
                read_only=False,
            )
        ],
        ports=[
            docker.ContainerPortArgs(internal=5432, external=5432, ip="0.0.0.0", protocol="tcp")
        ],
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=public.name)],
        ipc_mode="private",
    )
