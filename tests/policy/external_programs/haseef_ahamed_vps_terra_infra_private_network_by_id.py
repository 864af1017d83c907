"""A VPS's MySQL and two web servers joining an internal network by its ID (Terraform)."""

from __future__ import annotations

from typing import Final

import pulumi
import pulumi_docker as docker

SOURCE: Final = {
    "repository": "Haseef-Ahamed/VPS_Terra_Infra",
    "path": "main.tf, variables.tf, terraform.tfvars, modules/network/main.tf, "
    "modules/network/outputs.tf, modules/compute/main.tf, modules/database/main.tf",
    "commit": "3db0588b8fddfdece7eb7ef936863b636b11dd0c (outputs.tf, variables.tf "
    "a0046b21387b701399b17de6d4e54372e4bad38e)",
    "language": "HCL (terraform-provider-docker, which pulumi-docker bridges)",
    "note": "Translated resource by resource: env dev (terraform.tfvars); a public bridge "
    "network and an internal private one, whose ID (module.network.private_net_id = "
    "docker_network.private.id) every container joins with networks_advanced.name, as the "
    "provider allows (the name or ID of the network); app_count 2 httpd:latest containers "
    "each publishing 8081 on every interface (the second clashes with the first on the host; "
    "the pack judges the declaration); mysql:8.0 by tag with MYSQL_ROOT_PASSWORD from the "
    "sensitive db_password variable (a Pulumi secret here, its tfvars value as the stand-in), "
    "3306 published as 3307; the root module's nginx:latest image, pulled and never run. "
    "The modules' resources are flattened to the root, as Pulumi has no modules.",
}
DEPLOYS_REDIS: Final = False
STACK: Final = "dev"
PROJECT: Final = "vps-terra-infra"

_ENV: Final = "dev"  # terraform.tfvars env
_APP_COUNT: Final = 2  # variables.tf app_count default
_DB_NAME: Final = "mydb"  # variables.tf db_name default


def program() -> None:
    db_password = pulumi.Output.secret("YourStrongPasswordHere123!")  # terraform.tfvars
    docker.Network("public", name=f"{_ENV}-public-net", driver="bridge")
    private = docker.Network("private", name=f"{_ENV}-private-net", driver="bridge", internal=True)

    app_image = docker.RemoteImage("app", name="httpd:latest")
    for index in range(_APP_COUNT):
        docker.Container(
            f"app-{index}",
            name=f"{_ENV}-app-{index + 1}",
            image=app_image.name,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=private.id)],
            ports=[docker.ContainerPortArgs(internal=80, external=8081)],
        )

    mysql_image = docker.RemoteImage("mysql", name="mysql:8.0")
    docker.Container(
        "db",
        name=f"{_ENV}-db",
        image=mysql_image.name,
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=private.id)],
        envs=[
            db_password.apply(lambda p: f"MYSQL_ROOT_PASSWORD={p}"),
            f"MYSQL_DATABASE={_DB_NAME}",
            "MYSQL_REQUIRE_SECURE_TRANSPORT=ON",
        ],
        ports=[docker.ContainerPortArgs(internal=3306, external=3307)],
    )

    docker.RemoteImage("nginx", name="nginx:latest")
