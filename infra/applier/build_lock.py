"""The image-build lock: every image build of this project holds it shared, and `down` takes
it exclusively (never waiting) to remove the untagged parents its images leave behind.

The legacy builder keeps an untagged image per Dockerfile step, and a build that finds one in
its cache goes on from it at its next step; until the build's own image exists (a child of
that parent), nothing on the engine says the parent is in use. So a parent with no child is
removed only while no build of this project runs: while this lock is free. The builds that
take it: the applier's (engine.py `_build`) and scripts/build-app-image.sh (`flock -s`, the
same file: scripts/lib.sh BUILD_LOCK). One file for the whole host, not per checkout: every
checkout builds on the same engine, from the same cache.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

BUILD_LOCK_ENV: Final = "SECURE_REDIS_BUILD_LOCK"
DEFAULT_BUILD_LOCK: Final = Path("/tmp/secure-redis-image-builds.lock")  # noqa: S108 - shared by design


def build_lock_path() -> Path:
    return Path(os.environ.get(BUILD_LOCK_ENV) or DEFAULT_BUILD_LOCK)


def _open(path: Path) -> int:
    """A descriptor of the lock file, made if missing. Read-only: flock needs no write access,
    so another account's builds can share a file one account made (0o666 before the umask)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        return os.open(path, flags | os.O_CREAT, 0o666)


@contextmanager
def building(path: Path) -> Iterator[None]:
    """Held shared for as long as a build runs (several builds at once are fine); waits while
    a `down` removes parents (a few seconds)."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def no_build_running(path: Path) -> Iterator[bool]:
    """Yields True while holding the lock exclusively (no build of this project runs, and none
    starts until the block ends), False at once when a build holds it."""
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


__all__ = [
    "BUILD_LOCK_ENV",
    "DEFAULT_BUILD_LOCK",
    "build_lock_path",
    "building",
    "no_build_running",
]
