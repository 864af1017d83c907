"""`infra.apply up` says when it retired data keys, and what is left to do.

scripts/rotate.sh data-key rewrites Redis's append-only file after its retire; an interrupted
rotation finished with a plain `up` (walkthrough of 2026-12-06) retired the key and left the
file holding entries sealed with it, with no word. The keys are compared, never shown.
"""

from __future__ import annotations

import dataclasses

import pytest

from infra.applier.state import ResourceState, StackState
from infra.applier.status import retired_data_keys_line
from infra.render import RenderedStack, render_settings
from tests.unit.conftest import rendered
from tests.unit.test_applier_diff import again, priors


@pytest.fixture(scope="module")
def first() -> RenderedStack:
    return rendered("dev")


def _state(stack: RenderedStack) -> StackState:
    return StackState(
        stack.stack,
        {
            r.urn: ResourceState(r.type, r.name, r.id, r.state_inputs, r.outputs)
            for r in stack.resources
            if r.change is not None
        },
    )


def test_an_up_that_retires_the_previous_key__says_so_and_how_to_rewrite(
    first: RenderedStack,
) -> None:
    rotated = again(first, data_key_generation=2)  # a new primary, the old one kept
    retire = dataclasses.replace(rotated.settings, data_key_keep_previous=0)
    retired = render_settings(retire, previous=priors(rotated))
    line = retired_data_keys_line(_state(rotated), _state(retired))
    assert line is not None
    assert line.startswith("this up retired 1 data key(s)")
    assert f"python -m infra.rotation_probe rewrite-aof --stack {first.stack}" in line
    keyring = next(r for r in rotated.resources if r.name == "secrets-data-keyring")
    for key in (keyring.outputs["primaryKey"], keyring.outputs["previousKeys"]):
        assert str(key) not in line, "never a key in the line"


def test_an_up_that_rotates_or_changes_nothing__says_nothing(first: RenderedStack) -> None:
    rotated = again(first, data_key_generation=2)
    assert retired_data_keys_line(_state(first), _state(rotated)) is None, "the old one is kept"
    assert retired_data_keys_line(_state(rotated), _state(rotated)) is None
