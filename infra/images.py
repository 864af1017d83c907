"""Locally built images: no registry, a content-derived tag, stack labels via a build arg."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pulumi
import pulumi_docker as docker
from docker.utils.build import exclude_paths

from infra import wheelhouse
from infra.naming import Role, object_name
from infra.settings import REPO_ROOT

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


# Build inputs made on the host, never checked in, and the command that makes each: PyPI is
# not reachable inside `docker build`, so the app's wheels are fetched beforehand (docs/client.md,
# "The service and its image"). A build without them failed with docker's bare
# `COPY failed: ... wheelhouse/`.
HOST_MADE_INPUTS: Final = {wheelhouse.DIRECTORY: "scripts/build-app-image.sh --wheelhouse-only"}


def copy_sources(dockerfile_text: str) -> list[str]:
    """The context paths a Dockerfile's COPY and ADD instructions read, as written (not those
    copied `--from` another stage or image)."""
    logical = dockerfile_text.replace("\\\n", " ").splitlines()
    sources: list[str] = []
    for line in logical:
        words = line.split(maxsplit=1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = words[1].split()
        if any(a.startswith("--from=") for a in args):
            continue
        rest = " ".join(a for a in args if not a.startswith("--"))
        paths = json.loads(rest) if rest.startswith("[") else rest.split()
        sources.extend(str(path) for path in paths[:-1])
    return sources


def missing_build_inputs(context: Path, dockerfile: Path) -> list[str]:
    """COPY/ADD sources of `dockerfile` that the build context (its .dockerignore applied)
    does not hold, so `docker build` would stop at them."""
    if not dockerfile.is_file():
        return []  # the engine's own error names a missing Dockerfile plainly
    files = [
        Path(relative).as_posix()
        for relative in exclude_paths(str(context), _ignore_patterns(context))
        if (context / relative).is_file()
    ]
    missing = []
    for source in copy_sources(dockerfile.read_text()):
        name = source.strip("/").removeprefix("./")
        if name in ("", "."):
            continue
        inside = (f == name or f.startswith(f"{name}/") or fnmatch.fnmatch(f, name) for f in files)
        if not any(inside):
            missing.append(source)
    return missing


@dataclass(frozen=True)
class BuildInputProblem:
    """Why `docker build` of a context would fail, or build other code than the context
    holds, and what to do; the local applier (infra/apply.py) and the Pulumi program
    (infra/__main__.py) each say it in their own words around it."""

    problem: str
    fix: str
    host_made: bool
    """Whether the fix is a command run on the host (then: run it, then deploy again)."""


def build_input_problem(context: Path, dockerfile: Path, where: str) -> BuildInputProblem | None:
    """The first of: a file `dockerfile` copies that the context (`where`, as shown) lacks,
    or a wheelhouse made from other sources than the context holds now (infra/wheelhouse.py:
    the image's tag, a digest of the wheels, would not change, so the stack would go on
    running the old code). None when the build would give what the context holds."""
    for source in missing_build_inputs(context, dockerfile):
        command = HOST_MADE_INPUTS.get(source.strip("/").removeprefix("./"))
        return BuildInputProblem(
            f"its build context {where} has no {source} ({dockerfile.name} copies it), so "
            "docker build would fail",
            f"It is made on the host: run `{command}`"
            if command
            else f"Add it to {where} or change {dockerfile.name}",
            host_made=command is not None,
        )
    if not dockerfile.is_file():
        return None
    copies = {s.strip("/").removeprefix("./") for s in copy_sources(dockerfile.read_text())}
    made = wheelhouse.DIRECTORY
    if made not in copies or not wheelhouse.stale(context):
        return None
    return BuildInputProblem(
        f"{where}{made}/ was made from other sources than {where} holds now (edited since it "
        "was filled), so the image would run the old code",
        f"Run `{HOST_MADE_INPUTS[made]}`",
        host_made=True,
    )


def shown_context(path: Path) -> str:
    """A build context as messages name it: relative to the repository when inside it
    (`app/`), else as it is."""
    try:
        return f"{path.relative_to(REPO_ROOT).as_posix()}/"
    except ValueError:
        return str(path)


# How many times context_digest reads a context whose files went away while it was read.
_DIGEST_TRIES: Final = 3


class BuildContextChanging(pulumi.RunError):
    """A build context kept changing while its digest was read: a file listed was gone when
    it was read, each time (a fill of the app's wheelhouse removes the old wheels first). A
    RunError: the Pulumi engine prints it as one line; the local applier and infra.preview
    say it as a refusal (exit 2, nothing built or changed)."""


def context_digest(context: Path) -> str:
    """A short digest of the files `docker build` sends from `context` (its .dockerignore
    applied by docker-py's own matcher), so the tag changes exactly when the image's inputs do.

    Files the context ignores do not count: the app's sources, `build/`, `*.egg-info` and the
    wheelhouse's stamp change while a wheel is being built (a parallel test run saw the tag
    move between two renders) but never reach the image; only the wheels do.

    A file that goes away between the listing and its read (a wheelhouse being filled again:
    scripts/build-app-image.sh removes the old wheels before it fetches) was a bare
    FileNotFoundError out of the render: the context is listed and read again, from the
    start, and after _DIGEST_TRIES such reads BuildContextChanging names the file and what to
    do (tests/unit/test_infra_images.py).
    """
    gone = ""
    for _ in range(_DIGEST_TRIES):
        try:
            return _digest(context)
        except FileNotFoundError as exc:
            gone = str(exc.filename or "a file")
    where = shown_context(context)
    with suppress(ValueError):
        gone = Path(gone).relative_to(context).as_posix()
    raise BuildContextChanging(
        f"the build context {where} changed while it was read: {gone} was listed and gone "
        f"when read, {_DIGEST_TRIES} times in a row (a fill of {where}{wheelhouse.DIRECTORY}/ "
        "by scripts/build-app-image.sh under way?); nothing was built or changed. Run the "
        "same command again once that has finished"
    )


def _digest(context: Path) -> str:
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


__all__ = [
    "HOST_MADE_INPUTS",
    "STACK_BUILD_ARG",
    "UID_BUILD_ARG",
    "BuildContextChanging",
    "BuildInputProblem",
    "build_input_problem",
    "context_digest",
    "copy_sources",
    "local_image",
    "missing_build_inputs",
    "shown_context",
]
