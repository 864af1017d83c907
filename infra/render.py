"""Render a stack offline: the real program under Pulumi's mock runtime.

See docs/design.md#stable-interfaces.

    stack = render_stack("dev")
    for resource in stack.resources:
        resource.type, resource.name, resource.props      # secrets unwrapped
        resource.to_record()                              # secrets replaced by "[secret]"

Dynamic resources (certificates, passwords, keys) are really created, so every value is real.
Given `previous` (the local applier's state of them), they go through the engine's lifecycle
instead (infra/mock_engine.py): an unchanged certificate is kept, one due for renewal replaced,
and each resource's `change` says which. Nothing is deployed and nothing is written to disk.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import pulumi

from infra.mock_engine import Prior, RecordingMonitor, RenderError
from infra.proppath import format_path
from infra.rendered_resource import REDACTED, RenderedResource
from infra.runtime_ids import MAX_SLOT, stack_slot
from infra.settings import REPO_ROOT, SettingsError, StackSettings, load_settings, load_stack_file
from infra.stack import build_stack

PROJECT: Final = "secure-redis"


@dataclass(frozen=True)
class RenderedStack:
    stack: str
    settings: StackSettings
    resources: list[RenderedResource]
    outputs: dict[str, Any]
    """Stack outputs, unwrapped; `secret_outputs` names the ones that are secret."""
    secret_outputs: frozenset[str]

    def records(self, redact: bool = True) -> list[dict[str, Any]]:
        return [r.to_record(redact) for r in self.resources]

    def outputs_record(self, redact: bool = True) -> dict[str, Any]:
        return {
            k: REDACTED if redact and k in self.secret_outputs else copy.deepcopy(v)
            for k, v in self.outputs.items()
        }

    def of_type(self, type_: str) -> list[RenderedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, docker_name: str) -> RenderedResource:
        """The resource whose `name` prop (the Docker object name) is `docker_name`."""
        for resource in self.resources:
            if resource.custom and resource.props.get("name") == docker_name:
                return resource
        raise KeyError(f"no resource with Docker name {docker_name!r} in stack {self.stack!r}")


def render_stack(
    stack: str, *, root: Path = REPO_ROOT, previous: Mapping[str, Prior] | None = None
) -> RenderedStack:
    """Render `Pulumi.<stack>.yaml` under `root`; `previous`: dynamic resources by URN.

    Raises:
        SettingsError: the stack file is missing or its configuration is invalid.
        RenderError: a resource could not be rendered.
    """
    return render_settings(load_settings(stack, load_stack_file(stack, root)), previous=previous)


def render_settings(
    settings: StackSettings, *, previous: Mapping[str, Prior] | None = None
) -> RenderedStack:
    """Render the program for already-loaded settings (e.g. a deliberately altered copy)."""
    if stack_slot(settings.stack, settings.runtime_id_slot) is None:
        # Before the program runs: inside it, the same fault would surface as a traceback.
        raise SettingsError(
            settings.stack,
            f"Pulumi.{settings.stack}.yaml",
            [
                f"stack {settings.stack!r} needs secure-redis:runtimeIdSlot: a number from 1 to "
                f"{MAX_SLOT} that no other stack on this host uses (dev 1, staging 2, prod 3); it "
                "picks the uids its containers run as (infra/runtime_ids.py)"
            ],
        )
    monitor = RecordingMonitor(previous)
    monitor.install(project=PROJECT, stack=settings.stack)
    collected: dict[str, tuple[Any, bool]] = {}

    def program() -> pulumi.Output[None]:
        built = build_stack(settings)
        pairs = {name: _with_secretness(value) for name, value in built.exports.items()}
        return pulumi.Output.all(**pairs).apply(collected.update)

    try:
        pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    except Exception:
        if monitor.refused:  # the cause; anything else failed because of it
            raise monitor.refused[0] from None
        raise
    if monitor.refused:
        raise monitor.refused[0]
    return RenderedStack(
        stack=settings.stack,
        settings=settings,
        resources=list(monitor.registrations),
        outputs={name: value for name, (value, _) in collected.items()},
        secret_outputs=frozenset(name for name, (_, secret) in collected.items() if secret),
    )


def _with_secretness(value: pulumi.Output[Any]) -> pulumi.Output[list[Any]]:
    # from_input accepts an awaitable; mypy cannot pick between its Input overloads for one.
    secret: Awaitable[bool] = value.is_secret()
    return pulumi.Output.all(value, pulumi.Output.from_input(cast(Any, secret)))


__all__ = [
    "REDACTED",
    "Prior",
    "RenderError",
    "RenderedResource",
    "RenderedStack",
    "format_path",
    "render_settings",
    "render_stack",
]
