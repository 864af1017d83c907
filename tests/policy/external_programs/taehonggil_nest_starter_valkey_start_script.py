"""Valkey started by a shell script from a bind-mounted directory; credentials in the env."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "TaeHongGil/nest-starter",
    "path": "nestjs-server/docker-local-db/docker-compose.yaml",
    "commit": "3e225a325ebda33b770e5292d7cfaabcc1e031ff",
    "language": "docker compose",
    "note": "Service valkey only (mongo left out). ports -> ports; environment with compose's "
    "defaults (${USER_NAME:-admin}) resolved as compose resolves them with no .env -> envs; "
    "each ./dir:/path -> volumes hostPath; command -> command. The script "
    "(config/valkey/start.sh) writes an ACL file and runs valkey-server with valkey.conf; it "
    "lives on the host, not in this stack.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "nest-starter"


def program() -> None:
    docker.Container(
        "valkey",
        image="valkey/valkey:8.1.3",
        ports=[docker.ContainerPortArgs(internal=6379, external=6379)],
        envs=["USER_NAME=admin", "USER_PASSWORD=admin"],
        volumes=[
            docker.ContainerVolumeArgs(
                host_path="/srv/nest-starter/nestjs-server/docker-local-db/data/valkey",
                container_path="/data",
            ),
            docker.ContainerVolumeArgs(
                host_path="/srv/nest-starter/nestjs-server/docker-local-db/config/valkey",
                container_path="/usr/local/etc/valkey",
            ),
        ],
        command=["sh", "/usr/local/etc/valkey/start.sh"],
    )
