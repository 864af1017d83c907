"""scripts/build-app-image.sh builds while holding the image-build lock shared, the lock
`down` takes exclusively before it removes the untagged parents its images leave
(infra/applier/build_lock.py): a build that found a parent in its cache goes on from it, and
nothing on the engine says so until its own image exists.

Run in a copy of scripts/ with stand-ins: `docker` (answers `info`; on `build`, records
whether an exclusive try of the lock fails, i.e. someone holds it) and the venv's `python`
(answers `-m infra.wheelhouse` with a digest the copied wheelhouse is stamped with, and runs
the real `-m infra.applier.build_lock`).

It also looks at and fills the wheelhouse under a lock of its own (app/wheelhouse/.fill.lock),
so two builds started together in a checkout without one fill it once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT

DOCKER = """#!/bin/sh
case "$1" in
    info) exit 0 ;;
    build)
        if flock -n -x "$SECURE_REDIS_BUILD_LOCK" true; then echo free >>"$RECORD"
        else echo held >>"$RECORD"; fi
        # a shared try must succeed: builds share it
        flock -n -s "$SECURE_REDIS_BUILD_LOCK" true && echo shared-ok >>"$RECORD"
        exit 0 ;;
    image) echo sha256:0000 ;;
esac
"""

# The lock itself is taken by the real module (scripts/lib.sh `build_locked`), from this checkout.
PYTHON = f"""#!/bin/sh
[ "$2" = infra.wheelhouse ] && echo "x86_64 digest"
[ "$2" = infra.applier.build_lock ] && PYTHONPATH="{REPO_ROOT}" exec "{sys.executable}" "$@"
"""


def _stand_in(path: Path, body: str) -> None:
    path.write_text(body)
    path.chmod(0o755)


def _checkout_with_the_script(tmp_path: Path) -> Path:
    """A checkout holding only scripts/build-app-image.sh and lib.sh (skips without flock)."""
    if not shutil.which("flock"):
        pytest.skip("flock(1) is not installed")
    root = tmp_path / "root"
    (root / "scripts").mkdir(parents=True)
    for name in ("build-app-image.sh", "lib.sh"):
        shutil.copy(REPO_ROOT / "scripts" / name, root / "scripts" / name)
    return root


@pytest.mark.parametrize("args", [["--cache-only"], ["--tag", "t:1"]])
def test_build_app_image__builds_holding_the_build_lock_shared(
    tmp_path: Path, args: list[str]
) -> None:
    root = _checkout_with_the_script(tmp_path)
    wheels = root / "app" / "wheelhouse"
    wheels.mkdir(parents=True)
    (wheels / ".inputs.sha256").write_text("digest\n")
    (wheels / "secure_cache-1-py3-none-any.whl").write_text("")
    bin_dir = tmp_path / "bin"
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    _stand_in(bin_dir / "docker", DOCKER)
    _stand_in(tmp_path / "venv" / "bin" / "python", PYTHON)
    record = tmp_path / "record"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SECURE_REDIS_VENV": str(tmp_path / "venv"),
        "SECURE_REDIS_BUILD_LOCK": str(tmp_path / "builds.lock"),
        "RECORD": str(record),
    }
    done = subprocess.run(
        ["bash", str(root / "scripts" / "build-app-image.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert record.read_text().split() == ["held", "shared-ok"]


# For the fill: `pip wheel` records that a fill began and makes the wheel, the first one only
# once the test lets it go (the file RELEASE); `pip download` and wheel_hashes.py do nothing.
FILLING_PYTHON = """#!/bin/sh
case "$1 $2 $3" in
    "-m infra.wheelhouse "*) echo "x86_64 digest" ;;
    "-m pip wheel")
        echo fill >>"$RECORD"
        i=0
        while [ ! -e "$RELEASE" ] && [ "$i" -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
        : >"$WHEELS/secure_cache-0.1.0-py3-none-any.whl" ;;
esac
exit 0
"""


def _until(condition: Callable[[], bool], what: str) -> None:
    """Poll for `condition`, failing after a minute (the stand-ins answer at once)."""
    for _ in range(1200):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def test_build_app_image__two_at_once_in_a_checkout_without_a_wheelhouse_fill_it_once(
    tmp_path: Path,
) -> None:
    """The image tests of two pytest-xdist workers ran the script together in a fresh checkout:
    both found no stamp and filled, the second removing and rewriting the wheel and hashes the
    first was about to build from. Forced here: the second starts while the first fills."""
    root = _checkout_with_the_script(tmp_path)
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    _stand_in(tmp_path / "venv" / "bin" / "python", FILLING_PYTHON)
    record, release = tmp_path / "record", tmp_path / "release"
    env = {
        **os.environ,
        "SECURE_REDIS_VENV": str(tmp_path / "venv"),
        "RECORD": str(record),
        "RELEASE": str(release),
        "WHEELS": str(root / "app" / "wheelhouse"),
    }
    argv = ["bash", str(root / "scripts" / "build-app-image.sh"), "--wheelhouse-only"]
    outputs = [tmp_path / "first.out", tmp_path / "second.out"]

    def fills() -> int:
        return len(record.read_text().split()) if record.exists() else 0

    with outputs[0].open("w") as out:
        first = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _until(lambda: fills() == 1, "the first build began to fill")
        with outputs[1].open("w") as out:
            second = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _until(
                lambda: fills() == 2 or "waiting for another fill" in outputs[1].read_text(),
                "the second build either waited or filled",
            )
        finally:
            release.touch()
            second.wait(timeout=60)
    finally:
        release.touch()
        first.wait(timeout=60)
    shown = "\n".join(o.read_text() for o in outputs)
    assert (first.returncode, second.returncode) == (0, 0), shown
    assert fills() == 1, shown
    assert "wheelhouse up to date" in outputs[1].read_text(), shown
