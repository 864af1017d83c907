"""A SaltStack pillar's Redis (tozd/redis) that joins the host's shared network by network mode."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "cloyne/servers",
    "path": "pillars/server3/docker/redis.sls",
    "commit": "13c03086b09ea5299c1bbf1e7afe6adb3a0fd8f1",
    "language": "SaltStack pillar (tozd's docker formula)",
    "note": "network_mode {name: server3.cloyne.org} -> network_mode, the network the server's "
    "other containers (nginx, owncloud, rocketchat) join the same way, created outside this "
    "pillar; volumes {/srv/log/redis: {bind: /var/log/redis, user: nobody}} -> a host-path "
    "volume (user/group set the directory's owner on the host, not the container's user). "
    "tozd/redis starts Redis through its own runit scripts and config.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "servers"


def program() -> None:
    docker.Container(
        "redis",
        name="redis",
        image="tozd/redis",
        network_mode="server3.cloyne.org",
        volumes=[
            docker.ContainerVolumeArgs(host_path="/srv/log/redis", container_path="/var/log/redis")
        ],
    )
