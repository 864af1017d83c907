"""What the pack does not judge is said, never silently passed (docs/security-catalog.md CHECK-01).

Swarm configs and secrets, plugins, tags and commands run on the deploying machine
reach the pack like any other resource; its rules do not cover them, so each is reported as
unchecked (advisory) with what a reviewer should look at instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from policies.rules._model import (
    ADVISORY,
    LOCAL_COMMAND,
    PLUGIN,
    REMOTE_COMMAND,
    SERVICE_CONFIG,
    SWARM_SECRET,
    TAG,
    Resource,
    ResourceRule,
)
from policies.rules._props import label

_WHAT_TO_REVIEW: Final = {
    SERVICE_CONFIG: "a Swarm config is not checked; make sure it carries no secret",
    SWARM_SECRET: "a Swarm secret is not checked; make sure no service exposes it",
    PLUGIN: "a Docker plugin runs with the daemon's privileges and is not checked",
    TAG: "an image tag is not checked; pin the source image by digest",
    LOCAL_COMMAND: "a command run on the deploying machine is not checked",
    REMOTE_COMMAND: "a command run on a remote host is not checked",
}


def reported_unchecked(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    yield f"{label(resource)} is not judged by this pack: {_WHAT_TO_REVIEW[resource.type]}."


RULES: Final = (
    ResourceRule(
        name="coverage-unchecked-resource",
        description="Resources the pack cannot judge are reported, never silently passed.",
        resource_types=tuple(_WHAT_TO_REVIEW),
        check=reported_unchecked,
        refs=("CHECK-01",),
        enforcement=ADVISORY,
    ),
)
