"""Each image build context the program reads, digested once per test process.

The program tags every image with a digest of its build context (infra/images.py
`context_digest`, read at every render), and the app's context holds `app/wheelhouse/`, which
an image test fills when the checkout has none (tests/support/app_image.py runs
scripts/build-app-image.sh). A bare `pytest tests/unit tests/integration -n 2` in a fresh
checkout had that fill land, on the other worker, between two renders a unit test compares
(tests/unit/test_applier_diff.py's second `up`, test_infra_rotation_render.py's rotation of
everything): the app images' tags differed, and so did every container that runs them.

`read_once` makes a context's digest the one its first render in this process saw, so two
renders of one test process agree on it whatever is filled meanwhile. Only the contexts named
are: a test that builds a context of its own in tmp_path and changes it between renders
(tests/unit/test_applier_cli.py, test_infra_images.py) still sees every change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

_READ_ONCE: set[Path] = set()
_FIRST: dict[Path, str] = {}
_real_digest: Callable[[Path], str] | None = None
_program_contexts: list[Path] = []


def current_digest(context: Path) -> str:
    """The context's digest as it is now (infra/images.py's own function, never the first)."""
    from infra import images  # noqa: PLC0415 - Pulumi's SDK loads with the first render only

    return (_real_digest or images.context_digest)(context)


def _first_digest(context: Path) -> str:
    key = context.resolve()
    if key not in _READ_ONCE:
        return current_digest(context)
    if key not in _FIRST:
        _FIRST[key] = current_digest(context)
    return _FIRST[key]


def read_once(*contexts: Path) -> None:
    """From now on in this process, every render tags the images of `contexts` with the
    digest the first of them found."""
    global _real_digest  # noqa: PLW0603 - one replacement per process, kept for its life
    from infra import images  # noqa: PLC0415 - see current_digest

    if _real_digest is None:
        _real_digest = images.context_digest
        images.context_digest = _first_digest
    _READ_ONCE.update(c.resolve() for c in contexts)


def program_contexts_read_once() -> None:
    """read_once for every build context the program declares (infra/stack.py
    `image_contexts`). Called before a process's first render, when no test has put a
    context of its own in their place."""
    from infra.stack import image_contexts  # noqa: PLC0415 - see current_digest

    if not _program_contexts:
        _program_contexts.extend(image_contexts())
        read_once(*_program_contexts)


__all__ = ["current_digest", "program_contexts_read_once", "read_once"]
