"""Certificates, keys and secret files for one consumer, delivered through a named volume.

Docker refuses uploads into a read-only root filesystem (docs/design.md#material-delivery), so a
one-shot init container built from the consumer's image carries the files as `uploads` into its
own (writable, network-less, capability-less) root filesystem and copies them into a per-stack
volume owned by the consumer's uid. The consumer then mounts that volume read-only. This is the
delivery described in docs/design.md#material-delivery; the init container is the one exemption from
the read-only-rootfs policy and everything else about it is hardened like any container.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_docker as docker

from infra.naming import (
    MATERIAL_LABEL,
    PROJECT,
    Role,
    container_labels,
    named_options,
    object_name,
    volume_labels,
)

PRIVATE_MODE: Final = "0400"
PUBLIC_MODE: Final = "0444"
# Owned by the consumer's uid in both images (their Dockerfiles create it), so the initialiser
# can delete what it staged: no key or password stays in the exited container's layer.
STAGING_DIR: Final = f"/run/{PROJECT}-init"
INIT_MEMORY_MB: Final = 32
# Replace each file (a 0400 file cannot be overwritten in place), keeping the mode and owner the
# upload gave it, then delete the staged copy. $1 = staging dir, $2 = volume mount; no file
# content ever reaches argv.
INIT_SCRIPT: Final = (
    'for f in "$1"/*; do n="${f##*/}"; rm -f "$2/$n"; cp -p "$f" "$2/$n"; rm -f "$f"; done'
)


def init_healthcheck_test() -> list[str]:
    """Healthy once every staged file has moved into the volume. The initialiser usually exits
    before the first probe; the check documents its job and keeps it under the same rules as
    any container."""
    return ["CMD-SHELL", f'[ -z "$(ls -A {STAGING_DIR})" ]']


@dataclass(frozen=True)
class MaterialFile:
    name: str
    content: pulumi.Input[str]
    secret: bool
    """Secret content is wrapped in Output.secret and gets mode 0400."""
    mode: str | None = None
    """Overrides the mode (e.g. 0400 for a non-secret ACL file); default by `secret`."""


@dataclass(frozen=True)
class MaterialVolumeArgs:
    stack: str
    consumer: Role
    image: pulumi.Input[str]
    uid: int
    mount_path: str
    files: tuple[MaterialFile, ...]
    revisions: tuple[pulumi.Input[str], ...]
    """Revisions of the resources the files come from; their hash labels the consumer."""


class MaterialVolume(pulumi.ComponentResource):
    volume: docker.Volume
    init: docker.Container
    volume_name: str
    revision: pulumi.Output[str]

    def __init__(
        self, name: str, args: MaterialVolumeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-redis:infra:MaterialVolume", name, None, opts)
        stack, consumer = args.stack, args.consumer
        self.volume_name = object_name(stack, f"{consumer}-material")
        self.revision = pulumi.Output.all(*args.revisions).apply(_revision_hash)
        self.volume = docker.Volume(
            f"{name}-volume",
            name=self.volume_name,
            driver="local",
            labels=volume_labels(stack, Role.DATA),
            opts=named_options(self),
        )
        owner = str(args.uid)
        self.init = docker.Container(
            f"{name}-init",
            name=object_name(stack, f"{consumer}-init"),
            image=args.image,
            # An explicit entrypoint: the consumer image's own ENTRYPOINT (the app's CLI) must
            # not wrap the copy script.
            entrypoints=["sh", "-euc", INIT_SCRIPT, "material-init"],
            command=[STAGING_DIR, args.mount_path],
            uploads=[
                docker.ContainerUploadArgs(
                    file=f"{STAGING_DIR}/{f.name}",
                    content=pulumi.Output.secret(f.content) if f.secret else f.content,
                    permissions=f.mode or (PRIVATE_MODE if f.secret else PUBLIC_MODE),
                    owner=owner,
                    group=owner,
                )
                for f in args.files
            ],
            mounts=[
                docker.ContainerMountArgs(
                    type="volume", source=self.volume_name, target=args.mount_path, read_only=False
                )
            ],
            user=f"{owner}:{owner}",
            # Runs once to completion and stays exited: the one-shot initialiser exemption.
            attach=True,
            must_run=False,
            restart="no",
            log_driver="json-file",
            log_opts={"max-size": "1m", "max-file": "1"},
            network_mode="none",
            read_only=False,
            privileged=False,
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            security_opts=["no-new-privileges:true"],
            memory=INIT_MEMORY_MB,
            memory_swap=INIT_MEMORY_MB,
            cpus="0.25",
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=init_healthcheck_test(),
                interval="5s",
                timeout="3s",
                retries=3,
            ),
            labels=container_labels(stack, Role.DATA, {MATERIAL_LABEL: self.revision}),
            opts=named_options(
                self,
                depends_on=[self.volume],
                # The uploads hold private keys and passwords: encrypted in state as a whole.
                additional_secret_outputs=["uploads"],
            ),
        )
        self.register_outputs({"volume_name": self.volume.name, "revision": self.revision})


def _revision_hash(revisions: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(revisions).encode()).hexdigest()[:16]


__all__ = [
    "INIT_SCRIPT",
    "PRIVATE_MODE",
    "PUBLIC_MODE",
    "STAGING_DIR",
    "MaterialFile",
    "MaterialVolume",
    "MaterialVolumeArgs",
    "init_healthcheck_test",
]
