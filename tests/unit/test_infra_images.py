"""infra.images.context_digest: the image tag follows what `docker build` sends, nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.images import context_digest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A copy of the app's build context rules (its real Dockerfile and .dockerignore) with a
    wheelhouse of one wheel and the sources beside it, as scripts/build-app-image.sh leaves it."""
    app = tmp_path / "app"
    (app / "wheelhouse").mkdir(parents=True)
    for name in ("Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / "app" / name, app / name)
    (app / "wheelhouse" / "secure_cache-0.1.0-py3-none-any.whl").write_bytes(b"wheel v1")
    (app / "wheelhouse" / "requirements.hashed.txt").write_text("secure_cache==0.1.0\n")
    (app / "secure_cache").mkdir()
    (app / "secure_cache" / "core.py").write_text("x = 1\n")
    return app


@pytest.mark.parametrize(
    "leftover",
    [
        "build/lib/secure_cache/core.py",
        "secure_cache.egg-info/PKG-INFO",
        "wheelhouse/.inputs.sha256",
        "secure_cache/core.py",
        "README.md",
    ],
)
def test_files_the_context_ignores__leave_the_digest(context: Path, leftover: str) -> None:
    # What a wheel build leaves behind (or a source edit not yet built into a wheel) never
    # reaches the image, so it must not retag it: a tag moving mid-run replaced containers.
    before = context_digest(context)
    path = context / leftover
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("changed")
    assert context_digest(context) == before


@pytest.mark.parametrize(
    "changed",
    ["wheelhouse/secure_cache-0.1.0-py3-none-any.whl", "wheelhouse/requirements.hashed.txt",
     "Dockerfile"],
)  # fmt: skip
def test_files_the_build_sends__change_the_digest(context: Path, changed: str) -> None:
    before = context_digest(context)
    (context / changed).write_bytes(b"other bytes")
    assert context_digest(context) != before


def test_a_context_without_dockerignore__counts_every_file(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    before = context_digest(tmp_path)
    (tmp_path / "extra.conf").write_text("x")
    assert context_digest(tmp_path) != before
