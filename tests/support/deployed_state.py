"""A stack as if `up` had deployed it, without an engine: a copy of its stack file and the
state `up` would have saved (tests of plan, status and setting changes against a state)."""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.applier.plan import plan_stack
from infra.applier.state import ResourceState, StackState, StateStore
from infra.render import render_stack
from infra.settings import REPO_ROOT


def project_copy(tmp_path: Path, stack: str = "dev") -> Path:
    """`tmp_path` holding the checkout's Pulumi.<stack>.yaml, as a project directory."""
    shutil.copy(REPO_ROOT / f"Pulumi.{stack}.yaml", tmp_path / f"Pulumi.{stack}.yaml")
    return tmp_path


def as_if_up(project: Path, stack: str = "dev") -> StateStore:
    """The state `up` leaves: the render's dynamic resources and every planned Docker object."""
    rendered = render_stack(stack, root=project)
    plan = plan_stack(stack, rendered.resources, root=project)
    resources = {
        r.urn: ResourceState(r.type, r.name, r.id, r.state_inputs, r.outputs)
        for r in rendered.resources
        if r.change is not None
    }
    resources.update({s.urn: ResourceState(s.type, s.urn, "id", s.props, {}) for s in plan.steps})
    store = StateStore(project, stack)
    store.save(StackState(stack, resources))
    return store
