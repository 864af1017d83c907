"""A home monitoring stack's node-exporter: the host's / , /proc and /sys bind-mounted."""

from __future__ import annotations

from typing import Final

import pulumi
import pulumi_docker as docker

SOURCE: Final = {
    "repository": "CrashLoopBackCoffee/th-deploy-monitoring",
    "path": "__main__.py, monitoring/node_exporter.py",
    "commit": "0515b6abb8f60042beb488160ef7121d9f648473",
    "language": "Python",
    "note": "As written at that commit: a docker Provider reaching a Synology NAS over ssh "
    "(host ssh://synology) that every resource uses; one auto-named network; node-exporter "
    "v1.6.1 pulled from quay.io and run by the RemoteImage's image ID, 9100 published on "
    "every interface, the host's / (twice, at /host and /rootfs), /proc and /sys "
    "bind-mounted read-only, the collector's flags as its command, restart always.",
}
DEPLOYS_REDIS: Final = False
STACK: Final = "dev"
PROJECT: Final = "th-deploy-monitoring"


def _node_exporter(network: docker.Network, opts: pulumi.ResourceOptions) -> None:
    image = docker.RemoteImage(
        "node-exporter",
        name="quay.io/prometheus/node-exporter:v1.6.1",
        keep_locally=True,
        opts=opts,
    )
    docker.Container(
        "node-exporter",
        image=image.image_id,
        ports=[docker.ContainerPortArgs(internal=9100, external=9100)],
        volumes=[
            docker.ContainerVolumeArgs(
                host_path=host_path, container_path=container_path, read_only=True
            )
            for host_path, container_path in [
                ("/", "/host"),
                ("/proc", "/host/proc"),
                ("/sys", "/host/sys"),
                ("/", "/rootfs"),
            ]
        ],
        command=[
            "--path.procfs=/host/proc",
            "--path.rootfs=/host",
            "--path.sysfs=/host/sys",
            "--collector.filesystem.ignored-mount-points",
            "^/(sys|proc|dev|host|etc|rootfs/var/lib/docker/containers|"
            "rootfs/var/lib/docker/overlay2|rootfs/run/docker/netns|"
            "rootfs/var/lib/docker/aufs)($$|/)",
        ],
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["node-exporter"])
        ],
        restart="always",
        start=True,
        opts=opts,
    )


def program() -> None:
    provider = docker.Provider("synology", host="ssh://synology")
    opts = pulumi.ResourceOptions(provider=provider)
    network = docker.Network("monitoring", opts=opts)
    _node_exporter(network, opts)
