"""Write the hash-pinned requirements the app image installs with `pip --require-hashes`.

    python scripts/wheel_hashes.py WHEELHOUSE REQUIREMENTS PROJECT > requirements.hashed.txt

scripts/build-app-image.sh fills WHEELHOUSE on the host (PyPI is not reachable inside
`docker build`) and then runs this: one `name==version --hash=sha256:...` line for every pin
in REQUIREMENTS (app/requirements-image.txt) and for the PROJECT's own wheel, each hash taken
from the one wheel in the wheelhouse that matches it. The image build then installs exactly
those bytes: a wheel swapped or altered in the wheelhouse (or a pin without its wheel) fails
the build. Adding a dependency is adding its pin to REQUIREMENTS; nothing here changes.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from infra.cli import exit_with
from secure_cache.cli_parser import say

_PIN_RE: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")
_HASH_OPTION_RE: Final = re.compile(r"--hash[= ]sha256:[0-9a-f]{64}")


class WheelhouseError(ValueError):
    """The wheelhouse does not hold exactly one wheel for a pin."""


def normalize(name: str) -> str:
    """PEP 503 name normalization, with '_' as wheel filenames spell it (PEP 427)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def parse_pins(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(name, version) of every `name==version` line; comments and blanks skipped.

    A pin may carry `--hash=...` options over `\\`-continued lines (app/requirements-image.txt
    does: `pip download` checks every fetched wheel against them, and the file this writes
    repeats the hash of the wheel that was fetched)."""
    pins = []
    for number, raw in _logical_lines(lines):
        line = _HASH_OPTION_RE.sub("", raw.split("#", 1)[0]).strip()
        if not line:
            continue
        match = _PIN_RE.match(line)
        if match is None:
            raise WheelhouseError(
                f"line {number} ({line!r}) is not an exact pin 'name==version'; "
                "the image installs exact versions only"
            )
        pins.append((match.group(1), match.group(2)))
    return pins


def _logical_lines(lines: Iterable[str]) -> list[tuple[int, str]]:
    """(first physical line number, text) with `\\` continuations joined, as pip reads them."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(lines, 1):
        text = raw.rstrip("\n")
        start, before = pending if pending is not None else (number, "")
        if text.rstrip().endswith("\\"):
            pending = (start, before + text.rstrip()[:-1] + " ")
            continue
        pending = None
        joined.append((start, before + text))
    if pending is not None:
        joined.append(pending)
    return joined


def wheel_pin(wheel: Path) -> tuple[str, str]:
    """(normalized name, version) from a wheel's filename (PEP 427: name-version-...)."""
    name, version, _rest = wheel.name.split("-", 2)
    return normalize(name), version


def wheel_for(name: str, version: str, wheels: Sequence[Path]) -> Path:
    """The single wheel of `name` at `version` among `wheels`."""
    found = [w for w in wheels if wheel_pin(w) == (normalize(name), version)]
    if len(found) != 1:
        raise WheelhouseError(
            f"the wheelhouse has {len(found)} wheels for {name}=={version}, not one; "
            "refill it with scripts/build-app-image.sh --wheelhouse-only"
        )
    return found[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hashed_requirements(pins: Sequence[tuple[str, str]], wheels: Sequence[Path]) -> str:
    """The requirements file: one hash-pinned line per pin, sorted by name."""
    lines = [
        f"{normalize(name)}=={version} --hash=sha256:{sha256(wheel_for(name, version, wheels))}"
        for name, version in sorted(pins, key=lambda pin: normalize(pin[0]))
    ]
    return "\n".join(lines) + "\n"


def project_pin(project: str, wheels: Sequence[Path]) -> tuple[str, str]:
    """(name, version) of the project's own wheel in the wheelhouse."""
    own = [w for w in wheels if wheel_pin(w)[0] == normalize(project)]
    if len(own) != 1:
        raise WheelhouseError(
            f"the wheelhouse has {len(own)} wheels of {project}, not one; "
            "refill it with scripts/build-app-image.sh --wheelhouse-only"
        )
    return project, wheel_pin(own[0])[1]


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3:
        print("usage: wheel_hashes.py WHEELHOUSE REQUIREMENTS PROJECT", file=sys.stderr)
        return 2
    wheelhouse, requirements, project = Path(argv[0]), Path(argv[1]), argv[2]
    try:
        wheels = sorted(wheelhouse.glob("*.whl"))
        pins = parse_pins(requirements.read_text(encoding="utf-8").splitlines())
        pins.append(project_pin(project, wheels))
        say(hashed_requirements(pins, wheels), end="")
    except (OSError, WheelhouseError) as exc:
        print(f"wheel_hashes: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    exit_with(lambda: main(sys.argv[1:]))
