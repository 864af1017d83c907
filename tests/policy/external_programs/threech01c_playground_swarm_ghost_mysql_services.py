"""A Swarm playground: Ghost and MySQL services, the database password in both services' env."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "3ch01c/3ch01c.github.io",
    "path": "playground/terraform/swarm/services/main.tf, network.tf, images.tf, volumes.tf, "
    "variables.tf, terraform.tfstate",
    "commit": "59ae5ad536c3061bdd28047a30a721089124211a",
    "language": "HCL (terraform-provider-docker 1.x, Terraform 0.11, which pulumi-docker bridges)",
    "note": "Translated resource by resource into pulumi-docker 5's names (the task spec's "
    "`networks`, network names, become networks_advanceds entries by name). Overlay "
    "networks public_network and mysql_internal "
    "(internal, subnets 10.0.1.0/24 and 10.0.4.0/24 as terraform.tfstate recorded them); "
    "the volume mysql_data (its ID, in the state, is its name); images ghost:alpine and "
    "mysql:5.7 by tag; the MySQL service named db with MYSQL_ROOT_PASSWORD from the "
    "variable's default (P4sSw0rd0!) in env and its volume at /var/lib/mysql, on the internal "
    "network only; Ghost with the database password in env, on both networks, publishing "
    "2368 on ext_port, which has no default: 8080 stands in for it.",
}
DEPLOYS_REDIS: Final = False
STACK: Final = "dev"
PROJECT: Final = "swarm-services"

_PASSWORD: Final = "P4sSw0rd0!"  # variables.tf mysql_root_password default
_EXT_PORT: Final = 8080  # variables.tf ext_port has no default: a stand-in


def _on(*names: str) -> list[docker.ServiceTaskSpecNetworksAdvancedArgs]:
    return [docker.ServiceTaskSpecNetworksAdvancedArgs(name=n) for n in names]


def program() -> None:
    docker.Network(
        "public_bridge_network",
        name="public_network",
        driver="overlay",
        ipam_configs=[docker.NetworkIpamConfigArgs(subnet="10.0.1.0/24", gateway="10.0.1.1")],
    )
    docker.Network(
        "private_bridge_network",
        name="mysql_internal",
        driver="overlay",
        internal=True,
        ipam_configs=[docker.NetworkIpamConfigArgs(subnet="10.0.4.0/24", gateway="10.0.4.1")],
    )
    volume = docker.Volume("mysql_data_volume", name="mysql_data")
    ghost_image = docker.RemoteImage("ghost_image", name="ghost:alpine")
    mysql_image = docker.RemoteImage("mysql_image", name="mysql:5.7")
    docker.Service(
        "ghost-service",
        name="ghost",
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=ghost_image.name,
                env={
                    "database__client": "mysql",
                    "database__connection__host": "db",
                    "database__connection__user": "root",
                    "database__connection__password": _PASSWORD,
                    "database__connection__database": "ghost",
                },
            ),
            networks_advanceds=_on("public_network", "mysql_internal"),
        ),
        endpoint_spec=docker.ServiceEndpointSpecArgs(
            ports=[docker.ServiceEndpointSpecPortArgs(target_port=2368, published_port=_EXT_PORT)]
        ),
    )
    docker.Service(
        "mysql-service",
        name="db",
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=mysql_image.name,
                env={"MYSQL_ROOT_PASSWORD": _PASSWORD},
                mounts=[
                    docker.ServiceTaskSpecContainerSpecMountArgs(
                        target="/var/lib/mysql", source=volume.name, type="volume"
                    )
                ],
            ),
            networks_advanceds=_on("mysql_internal"),
        ),
    )
