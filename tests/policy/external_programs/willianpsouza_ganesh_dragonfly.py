"""Dragonfly (a Redis-protocol server) publishing 6379, given `--flag=value` options."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "willianpsouza/ganesh",
    "path": "infrastructure/dragonfly.sh",
    "commit": "ef9714a7c2f1f3793d3bff8886b5e95190b72279",
    "language": "shell (docker run)",
    "note": "-p 6379:6379 -> ports (ip defaults to 0.0.0.0); --ulimit nofile=65536:65536 -> "
    "ulimits; --cpus=2 -> cpus; --rm -> rm; the options after the image -> command, as the "
    'shell hands them over (--dbfilename="" arrives as --dbfilename=).',
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "ganesh"


def program() -> None:
    docker.Container(
        "local_dragonfly",
        name="local_dragonfly",
        image="docker.dragonflydb.io/dragonflydb/dragonfly",
        rm=True,
        cpus="2",
        ulimits=[docker.ContainerUlimitArgs(name="nofile", soft=65536, hard=65536)],
        ports=[docker.ContainerPortArgs(internal=6379, external=6379)],
        command=["--maxmemory=2gb", "--dbfilename="],
    )
