"""infra/wheelhouse.py: the digest the app's wheelhouse is stamped with, and when it is stale.

The digest was computed by scripts/build-app-image.sh itself with find | sort | sha256sum;
the script now runs the module, and the module gives the text that pipeline gave, so
wheelhouses stamped before stay valid. Checked here against the pipeline, run for real.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.wheelhouse import (
    MAKERS,
    STAMP,
    UnsupportedMachine,
    inputs_digest,
    machine_arch,
    stale,
)

pytestmark = pytest.mark.unit

# What scripts/build-app-image.sh ran before it ran infra/wheelhouse.py, verbatim but for
# the paths ($1: app, $2: scripts, $3: arch).
_PIPELINE = r"""
{
    echo "$3"
    sha256sum "$2/build-app-image.sh" "$2/wheel_hashes.py" | cut -d" " -f1
    cd "$1" && find . -path ./wheelhouse -prune -o -type f \
        ! -path '*/__pycache__/*' ! -path '*.egg-info/*' ! -path './build/*' -print \
        | LC_ALL=C sort | xargs -d '\n' sha256sum
} | sha256sum | cut -d' ' -f1
"""


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    folder = tmp_path / "scripts"
    folder.mkdir()
    for name in MAKERS:
        (folder / name).write_text(f"# {name}\n")
    return folder


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """An app/ as a checkout has it after a wheel was built: sources, and what the build and
    the interpreter left beside them, and the wheelhouse."""
    root = tmp_path / "app"
    files = {
        "Dockerfile": "FROM x\n",
        ".dockerignore": "*\n",
        "pyproject.toml": "[project]\n",
        "secure_cache/__init__.py": "",
        "secure_cache/service.py": "print('v1')\n",
        "secure_cache/Zeta.py": "",
        "secure_cache/__pycache__/service.cpython-311.pyc": "bytecode",
        "secure_cache.egg-info/PKG-INFO": "Name: secure_cache\n",
        "build/lib/secure_cache/service.py": "print('v0')\n",
        "wheelhouse/secure_cache-0.1.0-py3-none-any.whl": "wheel",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "secure_cache" / "link.py").symlink_to(root / "secure_cache" / "service.py")
    return root


def _stamp(app: Path, scripts: Path) -> None:
    (app / STAMP).write_text(inputs_digest(app, machine_arch(), scripts) + "\n")


def test_inputs_digest__is_what_the_scripts_pipeline_gave(app: Path, scripts: Path) -> None:
    argv = ["bash", "-c", _PIPELINE, "bash", str(app), str(scripts), "x86_64"]
    shell = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    assert inputs_digest(app, "x86_64", scripts) == shell


def test_stale__not_when_stamped_from_the_sources_as_they_are(app: Path, scripts: Path) -> None:
    _stamp(app, scripts)
    assert stale(app, scripts) is False


@pytest.mark.parametrize(
    "edit",
    ["secure_cache/service.py", "pyproject.toml", "secure_cache/new_module.py"],
    ids=["source-edited", "requirements-edited", "source-added"],
)
def test_stale__when_a_source_changed_after_the_fill(app: Path, scripts: Path, edit: str) -> None:
    _stamp(app, scripts)
    (app / edit).write_text("print('v2')\n")
    assert stale(app, scripts) is True


def test_stale__when_the_script_that_fills_it_changed(app: Path, scripts: Path) -> None:
    _stamp(app, scripts)
    (scripts / "wheel_hashes.py").write_text("# changed\n")
    assert stale(app, scripts) is True


@pytest.mark.parametrize(
    "leftover",
    [
        "secure_cache/__pycache__/client.cpython-311.pyc",
        "secure_cache.egg-info/SOURCES.txt",
        "build/lib/secure_cache/client.py",
        "wheelhouse/requirements.hashed.txt",
    ],
)
def test_stale__not_for_what_building_and_running_leave(
    app: Path, scripts: Path, leftover: str
) -> None:
    _stamp(app, scripts)
    (app / leftover).parent.mkdir(parents=True, exist_ok=True)
    (app / leftover).write_text("x")
    assert stale(app, scripts) is False


def test_stale__without_a_stamp_a_fill_that_did_not_finish(app: Path, scripts: Path) -> None:
    assert stale(app, scripts) is True


@pytest.mark.parametrize(
    ("machine", "arch"), [("x86_64", "x86_64"), ("amd64", "x86_64"), ("arm64", "aarch64")]
)
def test_machine_arch__names_the_wheels_architecture(machine: str, arch: str) -> None:
    assert machine_arch(machine) == arch


def test_machine_arch__refuses_one_without_manylinux_wheels() -> None:
    with pytest.raises(UnsupportedMachine, match="no manylinux wheels for riscv64"):
        machine_arch("riscv64")
