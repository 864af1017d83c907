"""What every container running the app's image shares: the app itself and the Redis exporter.

Each gets the image built for its own uid (infra/runtime_ids.py: one uid per container, so the
image's material directory and the `nproc` budget are its own), a material volume written for
that uid (infra/components/material.py), mounted read-only where the image expects it, and
both stack networks with a resolver that gives up fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_docker as docker

from infra.components.material import MaterialFile, MaterialVolume, MaterialVolumeArgs
from infra.images import local_image
from infra.naming import Role
from infra.settings import REPO_ROOT

IMAGE_CONTEXT: Final = REPO_ROOT / "app"
# The app image's directory owned by the image's uid (app/Dockerfile).
MATERIAL_DIR: Final = "/etc/secure-cache"


@dataclass(frozen=True)
class AppImageParts:
    image: docker.Image
    material: MaterialVolume

    @property
    def image_id(self) -> pulumi.Output[str]:
        """The image's immutable ID: what the container and the volume's init job run."""
        return self.image.repo_digest

    def container_args(
        self,
        *,
        backend_network: str,
        frontend_network: str,
        frontend_aliases: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """The docker.Container arguments both containers take alike. The declaration never
        mentions the material itself: rotating it replaces neither container, which read the
        files again when they change. `frontend_aliases` are names Docker's resolver gives
        for the container on the frontend network only."""
        return {
            "image": self.image_id,
            "mounts": [
                docker.ContainerMountArgs(
                    type="volume",
                    source=self.material.volume_name,
                    target=MATERIAL_DIR,
                    read_only=True,
                )
            ],
            "networks_advanced": [
                docker.ContainerNetworksAdvancedArgs(name=backend_network),
                docker.ContainerNetworksAdvancedArgs(
                    name=frontend_network, aliases=list(frontend_aliases) or None
                ),
            ],
            # Docker's embedded DNS forwards a name it does not know (`redis` while Redis is
            # stopped) to the host's resolvers from this container, which the stack's host
            # firewall refuses (infra/firewall.py), and then does not answer at all: the
            # resolver's own timeout (5 s x 2 by default) would stall the fallback to memory.
            "dns_opts": ["timeout:1", "attempts:1"],
        }


def app_image_parts(
    name: str,
    parent: pulumi.ComponentResource,
    *,
    stack: str,
    role: Role,
    consumer: str,
    uid: int,
    files: tuple[MaterialFile, ...],
    revisions: tuple[pulumi.Input[str], ...],
    material_after: tuple[pulumi.Resource, ...],
) -> AppImageParts:
    """The image `<name>-image` and the volume `<name>-material` (both children of `parent`)
    for a container of `role` running as `uid`; `consumer` names the volume."""
    image = local_image(
        f"{name}-image",
        stack=stack,
        role=role,
        context=IMAGE_CONTEXT,
        uid=uid,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    material = MaterialVolume(
        f"{name}-material",
        MaterialVolumeArgs(
            stack=stack,
            consumer=consumer,
            image=image.repo_digest,
            uid=uid,
            mount_path=MATERIAL_DIR,
            files=files,
            revisions=revisions,
            depends_on=material_after,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return AppImageParts(image, material)


__all__ = ["IMAGE_CONTEXT", "MATERIAL_DIR", "AppImageParts", "app_image_parts"]
