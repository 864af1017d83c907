"""scripts/build-app-image.sh builds while holding the image-build lock shared, the lock
`down` takes exclusively before it removes the untagged parents its images leave
(infra/applier/build_lock.py): a build that found a parent in its cache goes on from it, and
nothing on the engine says so until its own image exists.

Run in a copy of scripts/ with stand-ins: `docker` (answers `info`; on `build`, records
whether an exclusive try of the lock fails, i.e. someone holds it) and the venv's `python`
(answers `-m infra.wheelhouse` with a digest the copied wheelhouse is stamped with, and runs
the real `-m infra.applier.build_lock`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


@pytest.mark.parametrize("args", [["--cache-only"], ["--tag", "t:1"]])
def test_build_app_image__builds_holding_the_build_lock_shared(
    tmp_path: Path, args: list[str]
) -> None:
    if not shutil.which("flock"):
        pytest.skip("flock(1) is not installed")
    root = tmp_path / "root"
    (root / "scripts").mkdir(parents=True)
    for name in ("build-app-image.sh", "lib.sh"):
        shutil.copy(REPO_ROOT / "scripts" / name, root / "scripts" / name)
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
