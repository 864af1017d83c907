"""The app image's build context as a checkout has it, in a scratch directory: its real
Dockerfile and .dockerignore, with or without the wheelhouse scripts/build-app-image.sh makes
(stamped with the digest of the context as it is), and optionally a source edited after it."""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.settings import REPO_ROOT
from infra.wheelhouse import STAMP, inputs_digest, machine_arch


def app_context(tmp_path: Path, *, wheelhouse: bool = True, edited: bool = False) -> Path:
    context = tmp_path / "app-context"
    context.mkdir()
    for name in ("Dockerfile", ".dockerignore"):
        shutil.copy(REPO_ROOT / "app" / name, context / name)
    if wheelhouse:
        (context / "wheelhouse").mkdir()
        (context / "wheelhouse" / "secure_cache-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
        (context / "wheelhouse" / "requirements.hashed.txt").write_text("secure_cache==0.1.0\n")
        (context / STAMP).write_text(f"{inputs_digest(context, machine_arch())}\n")
    if edited:
        (context / "service.py").write_text("print('new code')\n")
    return context


__all__ = ["app_context"]
