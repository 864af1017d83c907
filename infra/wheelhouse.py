"""Whether the app's wheelhouse still holds what `app/` makes; `python -m infra.wheelhouse`
prints this machine's wheel architecture and the digest the wheelhouse is stamped with.

PyPI is not reachable inside `docker build`, so scripts/build-app-image.sh fills
`app/wheelhouse/` on the host (the secure_cache wheel built from `app/`, the pinned wheels) and
stamps it with a digest of what it was made from (`wheelhouse/.inputs.sha256`): the
architecture, the script and scripts/wheel_hashes.py, and every file under `app/` but the
wheelhouse itself and build leftovers. The script refills the wheelhouse when the digest
changed; the local applier refuses an `up` while it differs (infra/apply.py). An edit under
`app/` after the wheelhouse was filled left the image's tag, a digest of the wheels
(infra/images.py), as it was, so `up` kept the old image and the stack went on running the
old code without a word.

One implementation for both: the script runs this module. Standard library only (the script
runs it on every build; `up` on every run: about 10 ms for `app/`'s sources).
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from infra.cli import exit_with
from secure_cache.cli_parser import say

SCRIPTS: Final = Path(__file__).resolve().parents[1] / "scripts"
# What the digest covers besides app/: the script that fills the wheelhouse and its helper.
MAKERS: Final = ("build-app-image.sh", "wheel_hashes.py")
# app/'s directory the script fills, and the stamp in it.
DIRECTORY: Final = "wheelhouse"
STAMP: Final = Path(DIRECTORY) / ".inputs.sha256"
# uname -m -> the manylinux platform tag's architecture of the image's wheels.
_ARCHES: Final = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


class UnsupportedMachine(ValueError):
    """No manylinux wheels for this machine's architecture."""


def machine_arch(machine: str | None = None) -> str:
    """The wheels' architecture for `machine` (default: this one, as `uname -m` names it)."""
    name = machine if machine is not None else platform.machine()
    try:
        return _ARCHES[name.lower()]
    except KeyError:
        raise UnsupportedMachine(
            f"no manylinux wheels for {name}; build on x86_64 or aarch64"
        ) from None


def _sources(app: Path) -> Iterator[str]:
    """`./`-relative paths of the regular files under `app` the wheelhouse is made from: not
    the wheelhouse, __pycache__, *.egg-info or build/ (what building a wheel leaves)."""
    for directory, subdirs, files in os.walk(app):
        relative = Path(directory).relative_to(app)
        subdirs[:] = [
            d
            for d in subdirs
            if not (relative == Path() and d in (DIRECTORY, "build"))
            and d != "__pycache__"
            and not d.endswith(".egg-info")
        ]
        for name in files:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                yield f"./{(relative / name).as_posix()}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inputs_digest(app: Path, arch: str, scripts: Path = SCRIPTS) -> str:
    """The digest the wheelhouse of `app` is stamped with when made for `arch`. Its text is
    what `sha256sum` printed when the script computed it itself (arch, the makers' hashes,
    then `HASH  ./path` per file in C-locale order), so stamps made before stay valid."""
    lines = [arch, *(_sha256(scripts / name) for name in MAKERS)]
    lines += [f"{_sha256(app / path)}  {path}" for path in sorted(_sources(app))]
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()


def stale(app: Path, scripts: Path = SCRIPTS) -> bool:
    """Whether the wheelhouse of `app` was made from other inputs than `app` holds now (or
    has no stamp: a fill that did not finish)."""
    try:
        stamped = (app / STAMP).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return True
    try:
        arch = machine_arch()
    except UnsupportedMachine:
        return True
    return stamped != inputs_digest(app, arch, scripts)


def main() -> int:
    """Print `ARCH DIGEST` for `app/` of this checkout on this machine (the script's inputs)."""
    try:
        arch = machine_arch()
    except UnsupportedMachine as exc:
        print(f"wheelhouse: error: {exc}", file=sys.stderr)
        return 2
    say(f"{arch} {inputs_digest(SCRIPTS.parent / 'app', arch)}")
    return 0


if __name__ == "__main__":
    exit_with(main)


__all__ = ["DIRECTORY", "STAMP", "UnsupportedMachine", "inputs_digest", "machine_arch", "stale"]
