"""Locally built images: no registry, a content-derived tag, stack labels via a build arg."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

import pulumi
import pulumi_docker as docker
from docker.utils.build import exclude_paths

from infra.naming import Role, object_name

# Image labels cannot be set through docker.Image; each Dockerfile turns this build arg into
# `LABEL io.secure-redis.stack=...` (its role label is fixed in the Dockerfile).
STACK_BUILD_ARG: Final = "SECURE_REDIS_STACK"
# The uid/gid the image's service account gets (infra/runtime_ids.py); each Dockerfile
# declares it after its package layers, so every stack shares those layers.
UID_BUILD_ARG: Final = "SECURE_REDIS_UID"


def _ignore_patterns(context: Path) -> list[str]:
    """The context's .dockerignore patterns, read the way docker-py's build API reads them."""
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_digest(context: Path) -> str:
    """A short digest of the files `docker build` sends from `context` (its .dockerignore
    applied by docker-py's own matcher), so the tag changes exactly when the image's inputs do.

    Files the context ignores do not count: the app's sources, `build/`, `*.egg-info` and the
    wheelhouse's stamp change while a wheel is being built (a parallel test run saw the tag
    move between two renders) but never reach the image; only the wheels do.
    """
    digest = hashlib.sha256()
    for relative in sorted(exclude_paths(str(context), _ignore_patterns(context))):
        path = context / relative
        if not path.is_file():
            continue
        digest.update(Path(relative).as_posix().encode() + b"\0")
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
