"""The earlier API token survives every `up` until its retire (apiTokenRetireGeneration).

`scripts/rotate.sh S api-token` raises apiTokenRotationGeneration; the old token stays
accepted until `rotate.sh S api-token-retire` raises apiTokenRetireGeneration to match. Before
that setting, any `up` retired the old token (the provider dropped `previous` whenever it was
set): an operator changing a setting, re-running up or upgrading the checkout refused every
client that had not switched yet, with 401. Rendered here the way the local applier renders
each `up` (infra/mock_engine.py: the providers' check, diff and update against the previous
outputs), so the app's token files are read as the app would get them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.applier.diff import docker_changes
from infra.applier.plan import plan_stack
from infra.applier.state import ResourceState
from infra.changes import Op
from infra.mock_engine import Prior, RenderError
from infra.providers._common import ChangeRefused
from infra.providers.secrets import RETIRE_GENERATION, GeneratedPasswordProvider
from infra.pulumi_names import PYTHON_DYNAMIC_PREFIX
from infra.render import RenderedStack, render_settings
from infra.settings import REPO_ROOT
from tests.unit.conftest import container, rendered, uploads

TOKEN = "secrets-api-token"  # checkov:skip=CKV_SECRET_6: a resource name


def priors(stack: RenderedStack) -> dict[str, Prior]:
    """The dynamic resources as the `up` that rendered `stack` left them in its state."""
    return {
        r.urn: Prior(r.id, r.state_inputs, r.outputs)
        for r in stack.resources
        if r.type.startswith(PYTHON_DYNAMIC_PREFIX)
    }


def up(before: RenderedStack, **settings: Any) -> RenderedStack:
    """The next `up` after `before`, with `settings` changed in Pulumi.S.yaml."""
    return render_settings(
        dataclasses.replace(before.settings, **settings), previous=priors(before)
    )


def token(stack: RenderedStack) -> dict[str, Any]:
    return next(r for r in stack.resources if r.name == TOKEN).outputs


def app_files(stack: RenderedStack) -> tuple[str, str]:
    """What the app is given: the token it hands out and the earlier ones it accepts."""
    files = uploads(container(stack, "app-init"))
    return str(files["api.token"]["content"]), str(files["api.previous-tokens"]["content"])


def token_op(stack: RenderedStack) -> Op | None:
    change = next(r for r in stack.resources if r.name == TOKEN).change
    return None if change is None else change.op


@pytest.fixture(scope="module")
def rotated() -> RenderedStack:
    """dev after `rotate.sh dev api-token`'s up: a new token beside the first."""
    return up(rendered("dev"), api_token_rotation_generation=1)


def test_rotated__the_app_hands_out_the_new_token_and_accepts_the_first(
    rotated: RenderedStack,
) -> None:
    first = token(rendered("dev"))["value"]
    new, previous = app_files(rotated)
    assert new == token(rotated)["value"] != first
    assert previous == first


@pytest.mark.parametrize(
    "settings",
    [
        {},  # `up` run again, nothing changed
        {"app_memory_mb": 300},  # an operator's unrelated setting: the app is replaced
        {"password_rotation_generation": 1},  # rotate.sh passwords: ROTATE
        {"cert_renewal_generation": 1},  # rotate.sh certs
    ],
    ids=["re-run", "app-memory", "passwords", "certs"],
)
def test_an_unrelated_up__keeps_the_earlier_token_accepted(
    rotated: RenderedStack, settings: dict[str, Any]
) -> None:
    after = up(rotated, **settings)
    assert token_op(after) is Op.SAME
    assert app_files(after) == app_files(rotated), "the app must accept both tokens still"
    # and the up after that (the password rotation's SET, say) too
    assert app_files(up(after)) == app_files(rotated)


def test_the_retire__refuses_the_earlier_token_and_keeps_the_new(rotated: RenderedStack) -> None:
    unrelated = up(rotated, app_memory_mb=300)
    retired = up(unrelated, api_token_retire_generation=1)
    assert token_op(retired) is Op.UPDATE
    assert app_files(retired) == (token(rotated)["value"], "")
    assert token(retired)["previous"] == ""
    again = up(retired)
    assert token_op(again) is Op.SAME
    assert app_files(again) == app_files(retired)


def test_an_up_interrupted_after_recording_the_new_token__gives_the_app_both_next_time(
    rotated: RenderedStack,
) -> None:
    """The rotation's `up` recorded the new token in the state, then stopped before its app
    files were written (the app still has the first token only). The next `up` of the same
    settings must write both: on main it retired the first token in that same `up`."""
    first = rendered("dev")
    written = plan_stack(first.stack, first.resources, root=REPO_ROOT)
    applied = {
        s.urn: ResourceState(s.type, s.urn, f"id-{s.urn}", s.props, {"imageId": "sha256:x"})
        for s in written.steps
    }
    resumed = up(rotated)  # the state's token is the rotated one; the containers are first's
    assert app_files(resumed) == (token(rotated)["value"], token(first)["value"])
    plan = plan_stack(resumed.stack, resumed.resources, root=REPO_ROOT)
    rerun = {c.name for c in docker_changes(plan, applied) if c.op is not Op.SAME}
    assert f"secure-redis-{resumed.stack}-app-init" in rerun, "the app's files must be written"


def test_a_stack_deployed_before_the_setting__keeps_its_pending_token_through_the_upgrade(
    rotated: RenderedStack,
) -> None:
    """A state written by the code before apiTokenRetireGeneration (no such input) with a
    rotation pending, and a stack file without the setting: the upgrade's `up` keeps it."""
    legacy = {
        urn: Prior(p.id, {k: v for k, v in p.inputs.items() if k != RETIRE_GENERATION}, p.outputs)
        for urn, p in priors(rotated).items()
    }
    assert any(RETIRE_GENERATION in p.inputs for p in priors(rotated).values()), "control"
    upgraded = render_settings(rotated.settings, previous=legacy)
    assert upgraded.settings.api_token_retire_generation == 0
    assert token_op(upgraded) is Op.SAME
    assert app_files(upgraded) == app_files(rotated)


def test_a_rotation_on_top_of_a_pending_token__is_refused_before_anything_changes(
    rotated: RenderedStack,
) -> None:
    """The provider keeps one earlier token: another rotation would drop the pending one at
    once. rotate.sh api-token refuses it first; this is the same raise made by hand."""
    with pytest.raises(RenderError, match="apiTokenRotationGeneration raised from 1 to 2") as no:
        up(rotated, api_token_rotation_generation=2)
    message = str(no.value)
    assert "scripts/rotate.sh STACK api-token-retire" in message
    assert "nothing was changed" in message
    for value in (token(rotated)["value"], token(rotated)["previous"]):
        assert value not in message, "never a token in the message"
    # A passwordLength above the token's 48 rotates it too.
    with pytest.raises(RenderError, match="secure-redis:passwordLength changed") as length:
        up(rotated, password_length=64)
    assert "Set passwordLength back" in str(length.value), "the setting changed, not another"
    # Lowered by hand, the same drop: named as lowered, not raised.
    with pytest.raises(RenderError, match="apiTokenRotationGeneration lowered from 1 to 0"):
        up(rotated, api_token_rotation_generation=0)


def test_retire_and_rotate_in_one_up__the_new_pending_token_is_the_current_one(
    rotated: RenderedStack,
) -> None:
    both = up(rotated, api_token_retire_generation=1, api_token_rotation_generation=2)
    new, previous = app_files(both)
    assert previous == token(rotated)["value"], "the token clients switched to stays accepted"
    assert new not in (token(rotated)["value"], token(rotated)["previous"])


def test_passwords_keep_their_two_up_rotation() -> None:
    """Only the API token holds its earlier value: a password's consumers are the stack's own
    containers, switched by the ROTATE's up, so the next up removes it as before."""
    rotating = up(rendered("dev"), password_rotation_generation=1)
    password = next(r for r in rotating.resources if r.name == "secrets-app-password")
    assert password.outputs["previous"]
    assert RETIRE_GENERATION not in password.state_inputs
    done = up(rotating, app_memory_mb=300)
    assert next(r for r in done.resources if r.name == password.name).outputs["previous"] == ""


# --- the provider on its own ----------------------------------------------------------------


def _token_inputs(rotation: int, retire: int | None) -> dict[str, Any]:
    held = {} if retire is None else {RETIRE_GENERATION: retire}
    return {"length": 48, "rotationGeneration": rotation, "keepRetired": False, **held}


def test_provider__check_refuses_a_retire_generation_that_is_not_a_whole_number() -> None:
    provider = GeneratedPasswordProvider()
    for bad in (-1, 1.5, "1"):
        failures = provider.check({}, {**_token_inputs(1, 0), RETIRE_GENERATION: bad}).failures
        assert [f.property for f in failures] == [RETIRE_GENERATION], bad


def test_provider__a_pending_token_is_held_while_retire_is_below_rotation() -> None:
    provider = GeneratedPasswordProvider()
    first = dict(provider.create(provider.check({}, _token_inputs(0, 0)).inputs).outs or {})
    rotating = dict(provider.update("id", first, _token_inputs(1, 0)).outs or {})
    assert rotating["previous"] == first["value"]
    assert not provider.diff("id", rotating, _token_inputs(1, 0)).changes
    assert provider.diff("id", rotating, _token_inputs(1, 1)).changes
    retired = dict(provider.update("id", rotating, _token_inputs(1, 1)).outs or {})
    assert retired["previous"] == ""
    assert retired["value"] == rotating["value"]
    with pytest.raises(ChangeRefused, match="api-token-retire"):
        provider.diff("id", rotating, _token_inputs(2, 0))
    # Without a retire generation (a password), the next up drops it, as before.
    assert provider.diff("id", rotating, _token_inputs(1, None)).changes
