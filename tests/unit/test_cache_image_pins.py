"""The app image installs exactly the versions the repository is tested with."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Needed by redis only below Python 3.11.3 (Debian bookworm's 3.11.2), so never in .venv.
IMAGE_ONLY = {"async-timeout"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_image_pins__match_the_repository_lock() -> None:
    image = _pins(ROOT / "app" / "requirements-image.txt")
    lock = _pins(ROOT / "requirements.lock")
    assert {"redis", "hiredis", "cryptography"} <= set(image)
    mismatched = {
        name: (version, lock.get(name))
        for name, version in image.items()
        if name not in IMAGE_ONLY and lock.get(name) != version
    }
    assert not mismatched, f"app/requirements-image.txt differs from the lock: {mismatched}"
