"""Run `python -m MODULE ARGS...` in a fresh interpreter, as a script or the engine would, and
read which top-level packages it had loaded when it finished (what a command costs to start)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from infra.settings import REPO_ROOT

# Runs the module as `python -m` does, then writes its exit code and the top-level packages of
# every module it had loaded to the file named first.
_RUN_AND_LIST: Final = """
import json, runpy, sys
out, module = sys.argv[1], sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as exc:
    code = exc.code
with open(out, "w") as f:
    json.dump({"code": code, "loaded": sorted({name.split(".")[0] for name in sys.modules})}, f)
"""


@dataclass(frozen=True)
class Loaded:
    code: int | str | None
    """What the module exited with (SystemExit's code; 0 when it returned)."""
    stdout: str
    stderr: str
    packages: frozenset[str]


def run_and_list(
    tmp_path: Path, module: str, *args: str, env: Mapping[str, str] | None = None
) -> Loaded:
    listing = tmp_path / "loaded.json"
    argv: Sequence[str] = [sys.executable, "-c", _RUN_AND_LIST, str(listing), module, *args]
    done = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(listing.read_text())
    return Loaded(result["code"], done.stdout, done.stderr, frozenset(result["loaded"]))


def beyond_the_standard_library(loaded: Loaded) -> frozenset[str]:
    """The packages `loaded` had that are neither the standard library, nor what every
    interpreter of this virtualenv loads at start (site's .pth hooks), nor secure_cache's own
    package file: what a health check must not pull in (the client, the exporter)."""
    startup = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return loaded.packages - {*sys.stdlib_module_names, *startup, "__main__", "secure_cache"}


__all__ = ["Loaded", "beyond_the_standard_library", "run_and_list"]
