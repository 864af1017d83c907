"""A Go program's first container: ubuntu:precise pulled and run with every default."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "repson/cdk-go-examples",
    "path": "pulumi/main.go",
    "commit": "7d7192545e1ca07fbf8de97f8ab739f12d7b4f64",
    "language": "Go (pulumi-docker v3 SDK)",
    "note": "do.NewRemoteImage(ubuntu:precise) and do.NewContainer with Image: image.Latest() "
    "only. v3's RemoteImage.latest is the pulled image's ID; pulumi-docker 4 renamed it "
    "image_id, used here. No network, user, limits or health check: the container runs the "
    "image's default command as root on Docker's default bridge.",
}
DEPLOYS_REDIS: Final = False
STACK: Final = "dev"
PROJECT: Final = "pulumi"


def program() -> None:
    image = docker.RemoteImage("ubuntu", name="ubuntu:precise")
    docker.Container("ubuntu", image=image.image_id)
