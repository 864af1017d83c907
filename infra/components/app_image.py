"""What every container running the app's image shares: the app, the Redis exporter and the
data-key rotation pass.

Each gets the image built for its own uid (infra/runtime_ids.py: one uid per container, so the
image's material directory and the `nproc` budget are its own), a material volume written for
that uid (infra/components/material.py), mounted read-only where the image expects it, the
stack networks it needs with a resolver that gives up fast, and the stack's labels. What
differs (command, environment, ports, confinement, which networks) each component passes to
`AppImageContainer._declare`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_docker as docker

from infra.components.docker_objects import container_labels, named_options
from infra.components.material import MaterialFile, MaterialVolume, MaterialVolumeArgs
from infra.images import local_image
from infra.naming import Role, object_name
from infra.redis_conf import VALUE_LIMIT_BYTES
from infra.runtime_ids import runtime_id
from infra.settings import REPO_ROOT

IMAGE_CONTEXT: Final = REPO_ROOT / "app"
# The app image's directory owned by the image's uid (app/Dockerfile).
MATERIAL_DIR: Final = "/etc/secure-cache"


@dataclass(frozen=True, kw_only=True)
class AppContainerArgs:
    """The arguments every component running the app's image takes alike; each component's
    own arguments add to them."""

    stack: str
    id_slot: int
    """The stack's runtimeIdSlot (0: its name's slot, infra/runtime_ids.py)."""
    environment: str
    backend_network: str
    redis_url: str
    revisions: tuple[pulumi.Input[str], ...]
    depends_on: tuple[pulumi.Resource, ...] = ()
    material_after: tuple[pulumi.Resource, ...] = ()
    """What must finish before the files change (Redis reloading TLS and ACL)."""


def identity_envs(
    args: AppContainerArgs, *, user: str, identity: str, key_prefix: str | None = None
) -> list[str]:
    """How a Redis client identity finds Redis and its material: the ACL user, and the paths of
    the files ClientIdentityFiles.identity_files(identity) writes into its volume (the CA,
    `<identity>.crt`, `<identity>.key`, its password). Configuration only: every secret is a
    `*_FILE` path into the read-only volume."""
    return [
        f"ENVIRONMENT={args.environment}",
        f"REDIS_URL={args.redis_url}",
        f"REDIS_USERNAME={user}",
        *([f"REDIS_KEY_PREFIX={key_prefix}"] if key_prefix is not None else []),
        f"REDIS_PASSWORD_FILE={MATERIAL_DIR}/redis.password",
        f"REDIS_TLS_CA_CERT={MATERIAL_DIR}/ca.crt",
        f"REDIS_TLS_CERT_FILE={MATERIAL_DIR}/{identity}.crt",
        f"REDIS_TLS_KEY_FILE={MATERIAL_DIR}/{identity}.key",
    ]


# The data keyring's two files, for a consumer that seals or opens values (the app, the
# rotation pass): the primary key and the previous ones still readable.
DATA_KEY_ENVS: Final = (
    f"REDIS_ENCRYPTION_KEY_FILE={MATERIAL_DIR}/data.key",
    f"REDIS_ENCRYPTION_PREVIOUS_KEYS_FILE={MATERIAL_DIR}/data.previous-keys",
)
# The largest value the stack stores: the app accepts no larger PUT, and every consumer that
# reads values (the app, the rotation pass) derives from it the largest reply it reads from
# Redis (cache_options in app/secure_cache/transport.py, of HTTP_MAX_VALUE_BYTES). Redis's
# proto-max-bulk-len and output buffers are derived from the same limit (infra/redis_conf.py).
MAX_VALUE_BYTES: Final = VALUE_LIMIT_BYTES
VALUE_LIMIT_ENVS: Final = (f"HTTP_MAX_VALUE_BYTES={MAX_VALUE_BYTES}",)


class AppImageContainer(pulumi.ComponentResource):
    """One container of the app's image, its image and its material volume, as children.
    The declaration never mentions the material itself: rotating it replaces no container,
    which reads the files again when they change (or, for the rotation pass, at its next
    start)."""

    image: docker.Image
    material: MaterialVolume
    container: docker.Container
    container_name: str
    uid: int

    def __init__(
        self,
        type_name: str,
        name: str,
        args: AppContainerArgs,
        *,
        role: Role,
        consumer: str,
        opts: pulumi.ResourceOptions | None,
    ) -> None:
        """`role` gives the uid, the image and the labels; `consumer` names the container
        (`secure-redis-S-<consumer>`) and its volume."""
        super().__init__(type_name, name, None, opts)
        self._name = name
        self._role = role
        self._consumer = consumer
        self.uid = runtime_id(args.stack, role, args.id_slot)
        self.container_name = object_name(args.stack, consumer)

    def _declare(
        self,
        args: AppContainerArgs,
        *,
        files: tuple[MaterialFile, ...],
        networks: tuple[str, ...],
        aliases: Mapping[str, tuple[str, ...]] | None = None,
        **container: Any,
    ) -> None:
        """The image `<name>-image`, the volume `<name>-material` holding `files`, and the
        container `<name>-container` on `networks` with the rest of docker.Container's
        arguments from `container` (command, environment, ports, confinement). `aliases`:
        names Docker's resolver gives the container on one network only, by network."""
        name, stack = self._name, args.stack
        parent = pulumi.ResourceOptions(parent=self)
        self.image = local_image(
            f"{name}-image",
            stack=stack,
            role=self._role,
            context=IMAGE_CONTEXT,
            uid=self.uid,
            opts=parent,
        )
        self.material = MaterialVolume(
            f"{name}-material",
            MaterialVolumeArgs(
                stack=stack,
                consumer=self._consumer,
                image=self.image.repo_digest,
                uid=self.uid,
                mount_path=MATERIAL_DIR,
                files=files,
                revisions=args.revisions,
                depends_on=args.material_after,
            ),
            opts=parent,
        )
        self.container = docker.Container(
            f"{name}-container",
            name=self.container_name,
            # The image's immutable ID: what the volume's init job runs too.
            image=self.image.repo_digest,
            mounts=[
                docker.ContainerMountArgs(
                    type="volume",
                    source=self.material.volume_name,
                    target=MATERIAL_DIR,
                    read_only=True,
                )
            ],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=network, aliases=list((aliases or {}).get(network, ())) or None
                )
                for network in networks
            ],
            # Docker's embedded DNS forwards a name it does not know (`redis` while Redis is
            # stopped) to the host's resolvers from this container, which the stack's host
            # firewall refuses (infra/firewall.py), and then does not answer at all: the
            # resolver's own timeout (5 s x 2 by default) would stall the fallback to memory.
            dns_opts=["timeout:1", "attempts:1"],
            **container,
            labels=container_labels(stack, self._role),
            opts=named_options(self, depends_on=[self.material, *args.depends_on]),
        )
        self.register_outputs({"container_name": self.container.name})


__all__ = [
    "DATA_KEY_ENVS",
    "IMAGE_CONTEXT",
    "MATERIAL_DIR",
    "MAX_VALUE_BYTES",
    "VALUE_LIMIT_ENVS",
    "AppContainerArgs",
    "AppImageContainer",
    "identity_envs",
]
