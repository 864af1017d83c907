"""Certificates, keys and secret files for one consumer, delivered through a named volume.

Docker refuses uploads into a read-only root filesystem (docs/design.md#material-delivery), so a
one-shot init container built from the consumer's image carries the files as `uploads` into its
own (writable, network-less, capability-less) root filesystem and copies them into a per-stack
volume owned by the consumer's uid. The consumer then mounts that volume read-only. This is the
delivery described in docs/design.md#material-delivery; the init container is the one exemption from
the read-only-rootfs policy and everything else about it is hardened like any container.

Rotation in place: when material changes, only the init container's declaration changes (its
uploads and its revision label), so every engine replaces it and it rewrites the volume while
the consumer keeps running. The consumer's own declaration never mentions the material, so it
is not replaced. The volume is written the way Kubernetes' atomic writer updates a projected
volume: the files go into a new directory `..<revision>`, then one rename switches the
`..data` symlink to it, and each file name is a symlink through `..data`. A reader therefore
sees either the whole old set or the whole new set (a certificate never beside another key),
and every rewrite gives the files new inodes and mtimes, which is how consumers notice it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_docker as docker

from infra.components.docker_objects import container_labels, named_options, volume_labels
from infra.naming import MATERIAL_LABEL, PROJECT, Role, object_name

PRIVATE_MODE: Final = "0400"
PUBLIC_MODE: Final = "0444"
# Owned by the consumer's uid in both images (their Dockerfiles create it), so the initialiser
# can delete what it staged: no key or password stays in the exited container's layer.
STAGING_DIR: Final = f"/run/{PROJECT}-init"
INIT_MEMORY_MB: Final = 32
DATA_LINK: Final = "..data"
# $1 = staging dir, $2 = volume mount, $3 = revision (a hash, not a secret); no file content
# ever reaches argv. Make the volume's own directory 0700 (a fresh volume takes the mode of the
# image's mount point, and `chmod` by hand is only undone here; infra/applier/drift.py checks
# it). Copy every staged file into `..<revision>.tmp`, a directory no name points to (cp keeps
# the upload's mode, the owner is the uid the initialiser runs as), and delete the staged copy.
# A new revision: rename that directory to `..<revision>`. The same revision again (a drift
# repair, an upgrade of the initialiser): `..<revision>` is what `..data` points to, and a rename
# cannot replace a non-empty directory, so `..data` first switches to the complete `.tmp` copy,
# then `..<revision>` is made again of hard links to the same files (no second copy), and
# `..data` switches back. Then `..data` points to `..<revision>` (`mv -T` replaces the symlink
# with one rename); each name becomes a symlink through `..data` (once: a name from an older
# layout, a plain file, is replaced by a rename too); the directories of earlier revisions and
# any `.tmp` copy go.
# What is atomic: each rename (one rename(2) on the volume's local filesystem), so a reader that
# opens a name sees the whole old set or the whole new set, and never no file, also while the
# same revision is written again. What is not: the copy (it fills a directory no name points
# to yet), and a reader that resolved `..data` to a directory just before a switch and looks a
# file up in it after that directory was removed gets ENOENT and must open the name again: the
# same for every rotation, as with Kubernetes' atomic writer.
INIT_SCRIPT: Final = (
    'chmod 0700 "$2"; new="..$3"; stage="$new.tmp"; rm -rf "${2:?}/$stage"; '
    'mkdir -m 0700 "$2/$stage"; '
    'for f in "$1"/*; do cp "$f" "$2/$stage/${f##*/}"; rm -f "$f"; done; '
    'if [ -e "$2/$new" ] || [ -L "$2/$new" ]; then '
    f'ln -s "$stage" "$2/{DATA_LINK}.tmp"; mv -T "$2/{DATA_LINK}.tmp" "$2/{DATA_LINK}"; '
    'rm -rf "${2:?}/$new"; mkdir -m 0700 "$2/$new"; '
    'for f in "$2/$stage"/*; do ln "$f" "$2/$new/${f##*/}"; done; '
    'else mv -T "$2/$stage" "$2/$new"; fi; '
    f'ln -s "$new" "$2/{DATA_LINK}.tmp"; mv -T "$2/{DATA_LINK}.tmp" "$2/{DATA_LINK}"; '
    'for f in "$2/$new"/*; do n="${f##*/}"; if [ ! -L "$2/$n" ]; then '
    f'ln -s "{DATA_LINK}/$n" "$2/.$n.tmp"; mv -T "$2/.$n.tmp" "$2/$n"; fi; done; '
    f'for d in "$2"/..?*; do case "${{d##*/}}" in {DATA_LINK}|"$new") ;; '
    '*) rm -rf "$d";; esac; done'
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


@dataclass(frozen=True, kw_only=True)
class ClientIdentityFiles:
    """What a Redis client identity (the app, the exporter, the reload jobs, the rotation
    pass) is given: the CA bundle it trusts, its client certificate and key, its password.
    Each consumer's files add to these."""

    ca_cert: pulumi.Input[str]
    """The trust bundle (two CAs during a rollover)."""
    client_cert: pulumi.Input[str]
    client_key: pulumi.Input[str]
    password: pulumi.Input[str]

    def identity_files(
        self, identity: str, auth_file: str = "redis.password"
    ) -> tuple[MaterialFile, ...]:
        """What the identity reads from its volume, in this order: the CA, its own certificate
        and key (`<identity>.crt`, `<identity>.key`) and its password (`auth_file`)."""
        return (
            MaterialFile("ca.crt", self.ca_cert, secret=False),
            MaterialFile(f"{identity}.crt", self.client_cert, secret=False),
            MaterialFile(f"{identity}.key", self.client_key, secret=True),
            MaterialFile(auth_file, self.password, secret=True),
        )


@dataclass(frozen=True)
class MaterialVolumeArgs:
    stack: str
    consumer: str
    """The Docker name part: volume `secure-redis-S-<consumer>-material`, init `...-init`."""
    image: pulumi.Input[str]
    uid: int
    mount_path: str
    files: tuple[MaterialFile, ...]
    revisions: tuple[pulumi.Input[str], ...]
    """Revisions of the resources the secret files come from (their providers' `revision`,
    which changes exactly when the material does)."""
    depends_on: tuple[pulumi.Resource, ...] = ()
    """What must be done before this volume is rewritten (e.g. Redis accepting a new password
    before the app switches to it)."""


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
        self.revision = material_revision(args.files, args.revisions)
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
            command=pulumi.Output.all(self.revision).apply(
                lambda rev: [STAGING_DIR, args.mount_path, rev[0]]
            ),
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
                depends_on=[self.volume, *args.depends_on],
                # The uploads hold private keys and passwords: encrypted in state as a whole.
                additional_secret_outputs=["uploads"],
            ),
        )
        self.register_outputs({"volume_name": self.volume.name, "revision": self.revision})


def material_revision(
    files: Sequence[MaterialFile], revisions: Sequence[pulumi.Input[str]]
) -> pulumi.Output[str]:
    """A hash over the sources' revisions and every public file (name, mode, content): it
    changes whenever any delivered byte does, so the initialiser's declaration changes and any
    engine replaces it. Secret contents stay out of it (their revisions stand in for them), so
    the label is plain, not a secret."""
    public = [
        pulumi.Output.all(f.name, f.mode or PUBLIC_MODE, f.content).apply(
            lambda parts: "\0".join(str(p) for p in parts)
        )
        for f in files
        if not f.secret
    ]
    return pulumi.Output.all(*revisions, *public).apply(revision_hash)


def revision_hash(parts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


__all__ = [
    "DATA_LINK",
    "INIT_SCRIPT",
    "PRIVATE_MODE",
    "PUBLIC_MODE",
    "STAGING_DIR",
    "ClientIdentityFiles",
    "MaterialFile",
    "MaterialVolume",
    "MaterialVolumeArgs",
    "init_healthcheck_test",
    "material_revision",
    "revision_hash",
]
