"""The image-build lock: every image build of this project holds it shared, and `down` takes
it exclusively (never waiting) to remove the untagged parents its images leave behind.

The legacy builder keeps an untagged image per Dockerfile step, and a build that finds one in
its cache goes on from it at its next step; until the build's own image exists (a child of
that parent), nothing on the engine says the parent is in use. So a parent with no child is
removed only while no build of this project runs: while this lock is free. The builds that
take it: the applier's (engine.py `_build`) and scripts/build-app-image.sh and scripts/test.sh
(`build_locked` in scripts/lib.sh, which runs `python -m infra.applier.build_lock`: this
module, so the shell and the applier open the file the same way). One file for the whole
host, not per checkout: every checkout builds on the same engine, from the same cache.

The file is in /tmp, where every account may create names. Whoever can open a file can
flock it, and flock needs no more than read access, so the file is opened only when it is
what this module makes: a regular file (a FIFO made an open wait for a writer, for ever),
not a symbolic link (flock(1) followed one and created its target as root), with one link,
owned by root or this account, and readable by no account outside root's and the Docker
socket's groups (an account that may not use Docker anyway held a 0644 lock exclusively and
every build waited for it; attack pass of 2026-12-03, docs/attack-surface.md). A file of
this account's that is too open (0644, as the module made it before) is narrowed in place;
any other is refused with one line saying how to remove it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final, NoReturn

from infra.cli import exit_with
from secure_cache.cli_parser import say

BUILD_LOCK_ENV: Final = "SECURE_REDIS_BUILD_LOCK"
DEFAULT_BUILD_LOCK: Final = Path("/tmp/secure-redis-image-builds.lock")  # noqa: S108 - shared by design
DEFAULT_DOCKER_SOCKET: Final = Path("/var/run/docker.sock")
EXIT_REFUSED: Final = 2  # README "Exit codes": nothing done


class BuildLockRefused(OSError):
    """The lock file is not one this module would have made (its message says what to do).
    An OSError, as the lock's open errors are: the applier's `up` turns it into its one
    line, `down` keeps the parents and says why (infra/applier/engine.py)."""


def build_lock_path() -> Path:
    return Path(os.environ.get(BUILD_LOCK_ENV) or DEFAULT_BUILD_LOCK)


def docker_socket_group() -> int | None:
    """The group of the local Docker engine's socket (DOCKER_HOST unix://..., else the
    default): the accounts that may build at all, root aside. None for a remote engine or
    no socket: then the lock is this account's alone."""
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return None
    socket_path = Path(host.removeprefix("unix://")) if host else DEFAULT_DOCKER_SOCKET
    try:
        return socket_path.stat().st_gid
    except OSError:
        return None


def _refuse(path: Path, why: str) -> NoReturn:
    raise BuildLockRefused(
        f"the image-build lock {path} {why}; remove it (rm -f {path}, as root if need be) "
        f"and build again, or set {BUILD_LOCK_ENV} to a file in a directory only you can write"
    )


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


def _narrow(fd: int, st: os.stat_result) -> None:
    """This account's lock file: readable and writable by its owner and the Docker socket's
    group only (0660), or by its owner alone when that group is not known or not ours to
    give."""
    group = docker_socket_group()
    mode = 0o600
    if group is not None:
        try:
            if st.st_gid != group:
                os.fchown(fd, -1, group)
            mode = 0o660
        except PermissionError:
            pass
    os.fchmod(fd, mode)


def _checked(fd: int, path: Path) -> None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        _refuse(path, f"is a {_kind(st.st_mode)}, not a regular file")
    if st.st_nlink != 1:
        _refuse(path, f"has {st.st_nlink} links: it is another file's name too")
    me = os.geteuid()
    if st.st_uid not in (0, me):
        _refuse(
            path,
            f"belongs to uid {st.st_uid}, not to root or this account: that account could "
            "hold every build up",
        )
    group_ok = st.st_gid in (0, docker_socket_group())
    too_open = st.st_mode & 0o007 or (st.st_mode & 0o070 and not group_ok)
    if not too_open:
        return
    if st.st_uid != me:
        _refuse(
            path,
            "may be opened by accounts that cannot use Docker "
            f"(mode {stat.S_IMODE(st.st_mode):04o}, group {st.st_gid}), and any account that "
            "opens it can hold every build up",
        )
    _narrow(fd, st)


def _open(path: Path) -> int:
    """A descriptor of the lock file, made if missing (see the module's docstring for what
    is refused). Read-only: flock needs no write access; O_NONBLOCK so a FIFO is refused,
    not waited on."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    while True:
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            try:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue  # made meanwhile: check that one
            try:
                _narrow(fd, os.fstat(fd))
            except BaseException:
                os.close(fd)
                raise
            return fd
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                _refuse(path, "is a symbolic link")
            raise
        try:
            _checked(fd, path)
        except BaseException:
            os.close(fd)
            raise
        return fd


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


def main(argv: Sequence[str]) -> int:
    """`python -m infra.applier.build_lock COMMAND...`: run COMMAND holding the lock shared
    (scripts/lib.sh `build_locked`). The command is exec'd with the locked descriptor, so
    the lock is held exactly as long as it runs and a signal reaches it directly."""
    usage = "usage: python -m infra.applier.build_lock COMMAND [ARG...]"
    if argv[:1] in (["-h"], ["--help"]):
        say(f"{usage}\n\nRun COMMAND holding the image-build lock shared ({BUILD_LOCK_ENV}, "
            f"default {DEFAULT_BUILD_LOCK}).")  # fmt: skip
        return 0
    if not argv or argv[0].startswith("-"):
        given = f"unknown option {argv[0]!r}" if argv else "no COMMAND given"
        print(f"python -m infra.applier.build_lock: error: {given}; {usage}", file=sys.stderr)
        return EXIT_REFUSED
    path = build_lock_path()
    try:
        fd = _open(path)
    except OSError as exc:
        print(f"build-lock: error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.set_inheritable(fd, True)
    try:
        # The caller's own command (scripts/lib.sh `build_locked`), as flock(1) ran it.
        os.execvp(argv[0], list(argv))  # noqa: S606
    except OSError as exc:
        print(f"build-lock: error: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    exit_with(lambda: main(sys.argv[1:]))


__all__ = [
    "BUILD_LOCK_ENV",
    "DEFAULT_BUILD_LOCK",
    "BuildLockRefused",
    "build_lock_path",
    "building",
    "docker_socket_group",
    "no_build_running",
]
