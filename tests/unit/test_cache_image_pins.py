"""The app image installs exactly the versions the repository is tested with, by hash."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE_REQUIREMENTS = ROOT / "app" / "requirements-image.txt"


def _requirements(path: Path) -> list[str]:
    """One string per requirement: continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in _requirements(path):
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_image_pins__match_the_repository_lock() -> None:
    image = _pins(IMAGE_REQUIREMENTS)
    lock = _pins(ROOT / "requirements.lock")
    assert {"redis", "hiredis", "cryptography", "uvicorn", "h11"} <= set(image)
    mismatched = {
        name: (version, lock.get(name))
        for name, version in image.items()
        if lock.get(name) != version
    }
    assert not mismatched, f"app/requirements-image.txt differs from the lock: {mismatched}"


def test_image_pins__every_requirement_carries_a_sha256_hash() -> None:
    requirements = _requirements(IMAGE_REQUIREMENTS)
    assert requirements
    unhashed = [r.split()[0] for r in requirements if "--hash=sha256:" not in r]
    assert not unhashed, f"add --hash=sha256:... for {unhashed} (pip --require-hashes)"


def test_image_build__installs_with_require_hashes() -> None:
    dockerfile = (ROOT / "app" / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile


def test_lock__keeps_async_timeout_for_pythons_before_3_11_3() -> None:
    """redis-py imports async_timeout below Python 3.11.3 (Debian 12 ships 3.11.2)."""
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    assert "async-timeout==5.0.1; python_full_version < '3.11.3'" in lines
