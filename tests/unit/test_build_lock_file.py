"""The image-build lock file lives in /tmp, where any account can make names: what another
account puts at its path must neither hold builds up for ever nor make a build write
elsewhere (infra/applier/build_lock.py). Attack pass of 2026-12-03 (docs/attack-surface.md):
an unprivileged account held a 0644 lock exclusively and every build waited; a FIFO at the
path made the open wait for ever; flock(1), which scripts/lib.sh ran, followed a symbolic
link and created its target as root.

The shell side (`build_locked` in scripts/lib.sh) is run for real against the same files: it
must open the lock the way the applier does."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from infra.applier.build_lock import BuildLockRefused, building, no_build_running
from infra.settings import REPO_ROOT

LIB = REPO_ROOT / "scripts" / "lib.sh"
OTHER_UID = 64123  # an account that is not this one, and not root


@pytest.fixture
def docker_group(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    """A Docker socket stand-in whose group is this account's own (so the test may chgrp to
    it as any account)."""
    sock = tmp_path / "docker.sock"
    sock.touch()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    return os.getegid()


def _shell_build_locked(lock: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SECURE_REDIS_BUILD_LOCK": str(lock), "SECURE_REDIS_VENV": sys.prefix}
    return subprocess.run(
        ["bash", "-c", f'source "{LIB}"; build_locked "$@"', "build_locked", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _holds(lock: Path) -> bool:
    """Whether someone holds the lock (an exclusive try fails)."""
    free = subprocess.run(["flock", "-n", "-x", str(lock), "true"], timeout=10, check=False)
    return free.returncode != 0


def test_a_new_lock_file_is_open_to_the_docker_group_only(
    tmp_path: Path, docker_group: int
) -> None:
    lock = tmp_path / "builds.lock"
    with building(lock):
        pass
    st = lock.stat()
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == docker_group


def test_a_lock_file_of_this_account_open_to_everyone_is_narrowed(
    tmp_path: Path, docker_group: int
) -> None:
    """The file the module made before (0644: any account could open it, so hold it)."""
    lock = tmp_path / "builds.lock"
    lock.touch()
    lock.chmod(0o644)
    with no_build_running(lock) as free:
        assert free
    assert stat.S_IMODE(lock.stat().st_mode) == 0o660


def test_without_a_local_docker_socket_the_lock_is_this_accounts_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    lock = tmp_path / "builds.lock"
    with building(lock):
        pass
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_a_fifo_at_the_path_is_refused_not_waited_on(tmp_path: Path) -> None:
    lock = tmp_path / "builds.lock"
    os.mkfifo(lock, 0o666)
    with (
        pytest.raises(BuildLockRefused, match=r"is a FIFO, not a regular file; remove it"),
        building(lock),
    ):
        pass
    # scripts/lib.sh: one line and no build, where flock(1) waited for a writer for ever
    done = _shell_build_locked(lock, "echo", "built")
    assert done.returncode == 2
    assert "built" not in done.stdout
    assert done.stderr.splitlines() == [
        f"build-lock: error: the image-build lock {lock} is a FIFO, not a regular file; "
        f"remove it (rm -f {lock}, as root if need be) and build again, or set "
        "SECURE_REDIS_BUILD_LOCK to a file in a directory only you can write"
    ]


def test_a_symbolic_link_at_the_path_is_refused_and_its_target_not_made(tmp_path: Path) -> None:
    lock = tmp_path / "builds.lock"
    target = tmp_path / "elsewhere" / "made-by-the-build"
    target.parent.mkdir()
    lock.symlink_to(target)
    with pytest.raises(BuildLockRefused, match="is a symbolic link"), building(lock):
        pass
    done = _shell_build_locked(lock, "echo", "built")
    assert done.returncode == 2, done.stdout
    assert "is a symbolic link" in done.stderr
    assert not target.exists()


def test_a_second_name_of_another_file_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """A hard link to a file of this account (as root: any file) must not be narrowed:
    that would chmod the other file."""
    other = tmp_path / "someone-elses-file"
    other.write_text("x")
    other.chmod(0o644)
    lock = tmp_path / "builds.lock"
    os.link(other, lock)
    with pytest.raises(BuildLockRefused, match="has 2 links"), building(lock):
        pass
    assert stat.S_IMODE(other.stat().st_mode) == 0o644


def test_a_directory_at_the_path_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "builds.lock"
    lock.mkdir()
    with pytest.raises(BuildLockRefused, match="is a directory"), no_build_running(lock):
        pass


@pytest.mark.skipif(os.geteuid() != 0, reason="making another account's file needs root")
def test_a_lock_file_of_another_account_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "builds.lock"
    lock.touch()
    lock.chmod(0o600)
    os.chown(lock, OTHER_UID, OTHER_UID)
    with (
        pytest.raises(BuildLockRefused, match=f"belongs to uid {OTHER_UID}, not to root"),
        building(lock),
    ):
        pass
    done = _shell_build_locked(lock, "echo", "built")
    assert done.returncode == 2
    assert f"belongs to uid {OTHER_UID}" in done.stderr


def test_roots_lock_file_open_to_everyone_is_refused_to_other_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not this account's to narrow: refused, saying why. (The check's view: the file is
    root's, the account is not root.)"""
    lock = tmp_path / "builds.lock"
    lock.touch()
    lock.chmod(0o644)
    real_fstat = os.fstat

    def as_roots(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, 1, 0, 0, *tuple(st)[6:10]))

    monkeypatch.setattr(os, "fstat", as_roots)
    monkeypatch.setattr(os, "geteuid", lambda: OTHER_UID)
    refused = r"may be opened by accounts that cannot use Docker \(mode 0644"
    with pytest.raises(BuildLockRefused, match=refused), building(lock):
        pass
    assert stat.S_IMODE(lock.stat().st_mode) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as another account needs root")
def test_an_account_outside_the_docker_group_cannot_hold_the_builds_up(
    tmp_path: Path, docker_group: int
) -> None:
    """The attack itself: the other account opens the lock (read access is all flock needs)
    and holds it exclusively. Before, the file was 0644 and every build waited for ever."""
    # A directory the other account can reach (pytest's own are 0700).
    shared = Path(tempfile.mkdtemp(prefix="build-lock-test-", dir="/tmp"))
    shared.chmod(0o755)
    lock = shared / "builds.lock"
    try:
        _other_account_tries(lock)
    finally:
        shutil.rmtree(shared)


def _other_account_tries(lock: Path) -> None:
    with building(lock):
        pass
    other = subprocess.run(
        ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups",
         "flock", "-n", "-x", str(lock), "true"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert other.returncode != 0
    assert "Permission denied" in other.stderr
    assert not _holds(lock)
    done = _shell_build_locked(lock, "echo", "built")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "built\n"


def test_build_locked_holds_the_lock_shared_while_its_command_runs(tmp_path: Path) -> None:
    lock = tmp_path / "builds.lock"
    probe = (
        f'flock -n -x "{lock}" true && echo free || echo held; '
        f'flock -n -s "{lock}" true && echo shared-ok'
    )
    done = _shell_build_locked(lock, "bash", "-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["held", "shared-ok"]
    assert not _holds(lock)
    failed = _shell_build_locked(lock, "bash", "-c", "exit 7")
    assert failed.returncode == 7
