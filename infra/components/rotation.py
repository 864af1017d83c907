"""The data-key rotation pass: a container declared but never started by an `up`.

`python -m secure_cache rotate` (app/secure_cache/core.py `rotation`) moves every entry of
the previous data keys to the primary one in WATCH/MULTI/EXEC transactions. WATCH is the
reason it runs here and not in the app: WATCH is not `denyoom`, each watched name is held
until the connection ends, and Redis 7.0 charges it to neither maxmemory nor
maxmemory-clients, so any client that may WATCH can grow Redis past its memory limit
(docs/attack-surface.md, "What a container on the backend network can still do to Redis").
The serving app runs all the time and faces the frontend network; it gets no WATCH, MULTI, EXEC,
SCAN, STRLEN or PTTL (infra/redis_acl.py APP_COMMANDS). The pass connects as the `rotation` ACL user
(ROTATION_COMMANDS, the app's key prefix) with its own client certificate and password, from
its own material volume, which no other container mounts.

The container is created stopped (`start: false`, `mustRun: false`): an `up` declares it and
keeps its material current like any consumer's (rewritten in place after Redis reloaded,
infra/components/material.py), and scripts/rotate.sh runs it to completion with
`docker start --attach` once the app uses the new primary key. It reads its files at start,
so every run uses what the last `up` wrote. It runs the app's image built for its own uid
(infra/runtime_ids.py), on the backend network only, hardened like every container (read-only
root, no capabilities, no-new-privileges, non-root, memory, CPU and nproc limits), and is
never restarted by Docker: rotate.sh runs a stopped pass again, except one that exited 7
(it left entries a newer secure-cache wrote, after a rollback; docs/day2.md, "Rolling back the
app"), which it stops at, the old key kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi

from infra.components.app_image import (
    DATA_KEY_ENVS,
    MATERIAL_DIR,
    VALUE_LIMIT_ENVS,
    AppContainerArgs,
    AppImageContainer,
    identity_envs,
)
from infra.components.hardening import TMP_DIR, TMPFS_OPTIONS, hardened_job
from infra.components.material import ClientIdentityFiles, MaterialFile
from infra.naming import Role
from infra.redis_acl import ROTATION_USER

ROTATION_MODULE: Final = "secure_cache"
# One interpreter, one connection: the pass has no thread pool; room to spare.
ROTATION_NPROC: Final = 32
# About 30 MiB RSS for the interpreter and its libraries, plus one transaction group
# (core.ROTATION_GROUP_BYTES, 8 MiB) read, decrypted, re-encrypted and sent: a few copies.
ROTATION_MEMORY_MB: Final = 128
ROTATION_CPUS: Final = 0.5


@dataclass(frozen=True, kw_only=True)
class RotationFiles(ClientIdentityFiles):
    """`password` is the newest one (`value`): written after Redis reloaded its ACL with it."""

    data_key: pulumi.Input[str]
    previous_data_keys: pulumi.Input[str]
    """Comma-separated; what the pass moves entries away from."""


@dataclass(frozen=True, kw_only=True)
class RotationPassArgs(AppContainerArgs):
    key_prefix: str
    files: RotationFiles


def rotation_envs(args: RotationPassArgs) -> list[str]:
    """Configuration only: every secret is a `*_FILE` path into the read-only volume."""
    return [
        *identity_envs(args, user=ROTATION_USER, identity="rotation", key_prefix=args.key_prefix),
        *DATA_KEY_ENVS,
        # The largest value the app stores, so the pass reads every entry's reply (its
        # client's reply limit derives from it, as the app's does).
        *VALUE_LIMIT_ENVS,
    ]


def rotation_healthcheck_test() -> list[str]:
    """Healthy while its credentials are readable. The pass usually ends before the first
    probe; the check keeps it under the same rules as any container."""
    return ["CMD", "test", "-r", f"{MATERIAL_DIR}/rotation.key"]


class RotationPass(AppImageContainer):
    def __init__(
        self, name: str, args: RotationPassArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "secure-redis:infra:RotationPass",
            name,
            args,
            role=Role.ROTATION,
            consumer=Role.ROTATION,
            opts=opts,
        )
        files = args.files
        self._declare(
            args,
            files=(
                *files.identity_files("rotation"),
                MaterialFile("data.key", files.data_key, secret=True),
                MaterialFile("data.previous-keys", files.previous_data_keys, secret=True),
            ),
            networks=(args.backend_network,),
            entrypoints=["python3", "-m", ROTATION_MODULE],
            command=["rotate"],
            envs=rotation_envs(args),
            # Declared, never started by an up: scripts/rotate.sh starts it.
            start=False,
            tmpfs={TMP_DIR: TMPFS_OPTIONS},
            **hardened_job(
                uid=self.uid,
                memory_mb=ROTATION_MEMORY_MB,
                cpus=ROTATION_CPUS,
                nproc=ROTATION_NPROC,
                healthcheck=rotation_healthcheck_test(),
            ),
        )


__all__ = [
    "ROTATION_CPUS",
    "ROTATION_MEMORY_MB",
    "ROTATION_MODULE",
    "ROTATION_NPROC",
    "RotationFiles",
    "RotationPass",
    "RotationPassArgs",
    "rotation_envs",
    "rotation_healthcheck_test",
]
