"""Two renders of one test process agree on the images' tags while app/wheelhouse/ is filled
between them (tests/support/build_contexts.py): a fresh checkout under `pytest -n 2` had an
image test on the other worker fill it between the two renders of
tests/unit/test_applier_diff.py and test_infra_rotation_render.py, which then failed.

The fill is done here, in a context of the test's own, between the two renders: the interleaving
that happened by chance, forced."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.components import app_image
from infra.pulumi_names import CONTAINER, IMAGE
from infra.render import RenderedStack, render_stack
from infra.wheelhouse import STAMP, inputs_digest, machine_arch
from tests.support.app_context import app_context
from tests.support.build_contexts import current_digest, read_once


def _fill_wheelhouse(context: Path) -> None:
    """What scripts/build-app-image.sh leaves in a context that had no wheelhouse."""
    wheels = context / "wheelhouse"
    wheels.mkdir()
    (wheels / "secure_cache-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    (wheels / "requirements.hashed.txt").write_text("secure_cache==0.1.0\n")
    (context / STAMP).write_text(f"{inputs_digest(context, machine_arch())}\n")


def _images(stack: RenderedStack) -> dict[str, object]:
    """Each image's tag and each container's image, by name."""
    return {
        r.name: r.props["imageName"] if r.type == IMAGE else r.props["image"]
        for r in stack.resources
        if r.type in (IMAGE, CONTAINER)
    }


def test_two_renders__agree_on_the_images_though_the_wheelhouse_was_filled_between_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = app_context(tmp_path, wheelhouse=False)  # a fresh checkout's app/
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", context)
    read_once(context)  # as tests/unit/conftest.py does for the program's own contexts
    first = render_stack("dev")
    before = current_digest(context)
    _fill_wheelhouse(context)
    assert current_digest(context) != before, "the fill must change what docker build is sent"
    second = render_stack("dev")
    assert _images(second) == _images(first)
    assert any(str(tag).endswith(f":{before}") for tag in _images(first).values())


def test_a_context_not_read_once__is_digested_at_every_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contexts a test makes of its own (a stale wheelhouse, an edited source) keep
    showing their changes: only the ones named to `read_once` are read once."""
    context = app_context(tmp_path, wheelhouse=False)
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", context)
    first = render_stack("dev")
    _fill_wheelhouse(context)
    second = render_stack("dev")
    changed = {n for n, image in _images(first).items() if _images(second)[n] != image}
    assert {"app-image", "exporter-image", "app-container"} <= changed
