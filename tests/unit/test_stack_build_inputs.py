"""What the Pulumi program (infra/__main__.py) checks before it declares anything: every
image's build context holds what its Dockerfile copies and the app's wheelhouse is fresh, by
the same function as the local applier's `up` (infra/images.py `build_input_problem`). A
hand-run `pulumi up` with a wheelhouse older than app/ kept the image's tag and went on
running the old code without a word. Run here under Pulumi's mock runtime, `preview` as the
engine sets it for `pulumi up` (False) and `pulumi preview` (True)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.components import app_image
from infra.render import render_stack
from infra.settings import REPO_ROOT
from infra.stack import image_contexts, require_build_inputs
from tests.support.app_context import app_context

IMAGE = "docker:index/image:Image"


class _Nothing(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        raise AssertionError(f"{args.name} was declared before the check")

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> None:
    pulumi.runtime.set_mocks(_Nothing(), project="secure-redis", stack="dev", preview=request.param)


def test_image_contexts__are_every_context_the_program_builds() -> None:
    declared = {
        r.props["build"]["context"] for r in render_stack("dev").resources if r.type == IMAGE
    }
    assert declared == {str(c) for c in image_contexts()}


@pytest.mark.parametrize("engine", [False], indirect=True)
@pytest.mark.usefixtures("engine")
def test_up__a_stale_wheelhouse_stops_it_in_one_line_before_anything_is_declared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path, edited=True))
    with pytest.raises(pulumi.RunError) as refused:
        require_build_inputs("dev")
    line = str(refused.value)
    assert "wheelhouse/ was made from other sources than" in line
    assert "nothing was deployed. Run `scripts/build-app-image.sh --wheelhouse-only`, then " in line
    assert "\n" not in line


@pytest.mark.parametrize("engine", [True], indirect=True)
@pytest.mark.usefixtures("engine")
def test_preview__a_stale_wheelhouse_is_a_warning_naming_what_up_will_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warned: list[str] = []
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path, edited=True))
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_a, **_k: warned.append(message))
    require_build_inputs("dev")
    assert len(warned) == 1
    assert warned[0].startswith("pulumi up would stop here: ")
    assert "was made from other sources than" in warned[0]


@pytest.mark.parametrize("engine", [False], indirect=True)
@pytest.mark.usefixtures("engine")
def test_up__a_fresh_wheelhouse_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path, edited=False))
    require_build_inputs("dev")


def test_program__asks_before_it_builds_the_stack() -> None:
    """infra/__main__.py runs only under the engine (it exits outside one): the call sits
    before build_stack, which declares the first resource."""
    program = (REPO_ROOT / "infra" / "__main__.py").read_text()
    assert program.index("require_build_inputs(settings.stack)") < program.index(
        "build_stack(settings)"
    )
