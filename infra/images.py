"""Locally built images: no registry, a content-derived tag, stack labels via a build arg."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

import pulumi
import pulumi_docker as docker

from infra.naming import Role, object_name

# Image labels cannot be set through docker.Image; each Dockerfile turns this build arg into
# `LABEL io.secure-redis.stack=...` (its role label is fixed in the Dockerfile).
STACK_BUILD_ARG: Final = "SECURE_REDIS_STACK"
# The uid/gid the image's service account gets (infra/runtime_ids.py); each Dockerfile
# declares it after its package layers, so every stack shares those layers.
UID_BUILD_ARG: Final = "SECURE_REDIS_UID"
_SKIP_PARTS: Final = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})


def context_digest(context: Path) -> str:
    """A short digest of the build context's files, so a changed context gets a new tag."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        relative = path.relative_to(context)
        if _SKIP_PARTS & set(relative.parts) or path.suffix == ".pyc":
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def local_image(
    resource_name: str,
    *,
    stack: str,
    role: Role,
    context: Path,
    uid: int,
    opts: pulumi.ResourceOptions,
) -> docker.Image:
    """Build `context/Dockerfile` as `secure-redis-<stack>-<role>:<digest>`; never pushed.

    Containers should reference the result's `repo_digest`, which for a local image is its
    immutable image ID (`sha256:...`), not the tag.
    """
    return docker.Image(
        resource_name,
        image_name=f"{object_name(stack, role)}:{context_digest(context)}",
        build=docker.DockerBuildArgs(
            context=str(context),
            dockerfile=str(context / "Dockerfile"),
            args={STACK_BUILD_ARG: stack, UID_BUILD_ARG: str(uid)},
        ),
        skip_push=True,
        opts=opts,
    )


__all__ = ["STACK_BUILD_ARG", "UID_BUILD_ARG", "context_digest", "local_image"]
