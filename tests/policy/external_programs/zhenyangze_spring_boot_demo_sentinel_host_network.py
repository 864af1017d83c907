"""`redis-sentinel /conf/sentinel.conf --sentinel` on the host network, config from the host."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "zhenyangze/spring-boot-demo",
    "path": "centos7/server01/root/sentinel26381.sh",
    "commit": "1d2808a5b35f505995b1d5b04bf14a330847d86c",
    "language": "shell (docker run)",
    "note": "--network host -> network_mode host; each -v host:container -> volumes hostPath.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "spring-boot-demo"


def program() -> None:
    mounts = [
        ("/etc/sentinel/26381/sentinel.conf", "/conf/sentinel.conf"),
        ("/var/log/sentinel", "/var/log/sentinel"),
        ("/etc/localtime", "/etc/localtime"),
        ("/etc/timezone", "/etc/timezone"),
    ]
    docker.Container(
        "sentinel26381",
        name="sentinel26381",
        image="redis:alpine",
        command=["redis-sentinel", "/conf/sentinel.conf", "--sentinel"],
        network_mode="host",
        volumes=[docker.ContainerVolumeArgs(host_path=h, container_path=c) for h, c in mounts],
    )
