"""The Docker engine for tests that run containers of the base image only (the rotation
probe's trust tests, tests/integration/test_rotation_probe_*.py)."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from docker.errors import DockerException, NotFound

IMAGE = "debian:bookworm-slim"
# An image ID no image has: what a state records for a container whose image is another.
ELSEWHERE = "sha256:" + "0" * 64


def base_image_engine() -> Iterator[docker.DockerClient]:
    """A fixture's body: the engine, closed afterwards; the test is skipped without the
    engine or the base image (scripts/bootstrap-base-image.sh makes it)."""
    try:
        engine = docker.from_env(timeout=60)
        engine.images.get(IMAGE)
    except (DockerException, NotFound):
        pytest.skip(f"needs the Docker engine and {IMAGE} (scripts/bootstrap-base-image.sh)")
    yield engine
    engine.close()
