"""Three Redis Cluster nodes: the official image given only options, on the host network."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "freedomzw/xytc-huatan",
    "path": "my-tanhua-sso/src/main/resources/docker/redis.sh",
    "commit": "4517e437afc7d5f9c0889999d6a6fe46c296cae2",
    "language": "shell (docker create)",
    "note": "--net host -> network_mode host; -v redis-node0N:/data -> volumes volumeName (Docker "
    "creates the named volume on first use; the script declares none); the options after the "
    "image -> command (docker-entrypoint.sh puts redis-server in front). The later "
    "`redis-cli --cluster create` runs by hand inside a node: no resource.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "xytc-huatan"


def program() -> None:
    for index, port in ((1, 6379), (2, 6380), (3, 6381)):
        node = f"redis-node0{index}"
        docker.Container(
            node,
            name=node,
            image="redis:5.0.2",
            network_mode="host",
            volumes=[docker.ContainerVolumeArgs(volume_name=node, container_path="/data")],
            command=[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-node-0{index}.conf",
                "--port",
                str(port),
            ],
        )
