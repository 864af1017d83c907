"""The app image, built from the repository for the tests that run it, and the docker CLI.

Shared by the integration tests that run the image (tests/integration/test_cache_image.py,
test_exporter_image.py): one build recipe, labelled apart from any stack, removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pytest

from infra.naming import Role
from infra.runtime_ids import image_default_id

ROOT = Path(__file__).resolve().parents[2]
APP_UID: Final = image_default_id(Role.APP)
"""The uid a stack-less build of the app image runs as (infra/runtime_ids.py)."""


def docker(
    *args: str, check: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


@contextmanager
def built_app_image() -> Iterator[str]:
    """Build the app image under a unique tag (skip without an engine); remove it after."""
    if shutil.which("docker") is None or docker("info").returncode != 0:
        pytest.skip("Docker is not available; run scripts/bootstrap.sh to start the engine")
    tag = f"secure-redis-app-test-{uuid.uuid4().hex[:10]}:latest"
    build = subprocess.run(
        [str(ROOT / "scripts" / "build-app-image.sh"), "--tag", tag,
         "--label", "io.secure-redis.role=app", "--label", "io.secure-redis.stack=test"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        yield tag
    finally:
        # Only the tag's own image: its untagged parents are build cache that builds running
        # at the same time (a stack's deploy) may be using.
        docker("image", "rm", "--force", "--no-prune", tag)


def write_material(directory: Path, files: Mapping[str, tuple[bytes, int]]) -> Path:
    """`directory` holding `files` (name: (content, mode)) as an init container leaves a
    consumer's volume: owned by APP_UID with each file's mode. Without root the files cannot
    be handed to that uid, so they are made world-readable, for the test only."""
    directory.mkdir()
    for name, (data, mode) in files.items():
        path = directory / name
        path.write_bytes(data)
        if os.getuid() == 0:
            os.chown(path, APP_UID, APP_UID)
            path.chmod(mode)
        else:
            path.chmod(0o444)
    directory.chmod(0o755)
    return directory
