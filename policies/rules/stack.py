"""Per-stack isolation of volumes: stack-named, declared here, never a host path (STACK-01)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from policies.rules._model import SERVICE, VOLUME, Resource, ResourceRule, StackRule, Violation
from policies.rules._props import (
    entries,
    label,
    mapping,
    names_per_stack,
    of_type,
    reading,
    stack_token_in,
    text,
    text_at,
)
from policies.rules._service_shape import task_containers


def volume_no_host_path(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    opts = mapping(resource.props.get("driverOpts"), "driverOpts")
    o = (text_at(opts, "driverOpts", "o") or "").split(",")
    kind = text_at(opts, "driverOpts", "type")
    if "bind" in o or "rbind" in o or (kind == "none" and opts.get("device")):
        yield (
            f"{label(resource)} must not bind a host path (driverOpts o=bind / device); keep "
            f"data in a Docker-managed volume (CIS Docker 5.6)."
        )


def _volume_references(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    for where, m in entries(props, "mounts"):
        source = text_at(m, where, "source")
        if text_at(m, where, "type") == "volume" and source:
            found.append((where, source))
    for where, volume in entries(props, "volumes"):
        name = text_at(volume, where, "volumeName")
        if name:
            found.append((where, name))
    return found


def volume_scoped(resources: Sequence[Resource], _config: Mapping[str, Any]) -> Iterator[Violation]:
    declared: dict[str, Resource] = {}
    per_stack = names_per_stack(resources)
    for volume in of_type(resources, VOLUME):
        name = text(volume.props.get("name"), "name") or volume.name
        declared[name] = volume
        if per_stack and volume.stack and not stack_token_in(name, volume.stack):
            yield Violation(
                f"{label(volume)} must carry the stack name in its Docker name so stacks never "
                f"share data.",
                volume.urn,
            )
    for container in task_containers(resources):
        spec = "taskSpec.containerSpec." if container.type == SERVICE else ""
        with reading(container):
            references = _volume_references(container.props)
        for where, name in references:
            if name not in declared:
                yield Violation(
                    f"{label(container)} must mount only volumes this stack declares; "
                    f"{spec}{where} belongs to something else. Declare the volume in this "
                    f"stack and mount it by its name output.",
                    container.urn,
                )


RULES: Final = (
    ResourceRule(
        name="stack-volume-no-host-path",
        description="Volumes are Docker-managed, not host binds.",
        resource_types=(VOLUME,),
        check=volume_no_host_path,
        refs=("STACK-01", "RUNTIME-16", "cis-docker-5.6"),
    ),
    StackRule(
        name="stack-volume-scoped",
        description="Volumes belong to one stack: stack-named and declared in it.",
        check=volume_scoped,
        refs=("STACK-01",),
    ),
)
