"""The tests' own image builds hold the project's image-build lock, as every build of the
project does (infra/applier/build_lock.py: the applier's `_build`, scripts/build-app-image.sh):
shared, so they run side by side, while a `down` that removes its images' untagged parents
(taking the lock exclusively, never waiting) keeps them as long as one of these builds runs.
Without it a `down` beside a test's build could remove a parent the build is about to go on
from (down15's report). tests/unit/test_image_builds.py finds every `docker build` and
`images.build(...)` under tests/ and requires it inside `with image_build():`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from infra.applier.build_lock import build_lock_path, building


@contextmanager
def image_build() -> Iterator[None]:
    """Held (shared) around one image build: the lock file of SECURE_REDIS_BUILD_LOCK, else
    /tmp/secure-redis-image-builds.lock, the one the applier and build-app-image.sh use."""
    with building(build_lock_path()):
        yield


__all__ = ["image_build"]
