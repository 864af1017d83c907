"""Pure planning: the rendered stack's resources -> the Docker objects to create, in order.

Every resource is either translated (networks, volumes, images, containers), skipped because
the render already did its work (components, dynamic providers' certificates and secrets), or
refused. All translation happens before the first Docker call, so an unsupported property stops
`up` before anything changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from infra.applier.errors import ApplyError
from infra.applier.translate import (
    CONTAINER,
    IMAGE,
    NETWORK,
    VOLUME,
    ContainerSpec,
    ImageSpec,
    NetworkSpec,
    VolumeSpec,
    translate_container,
    translate_image,
    translate_network,
    translate_volume,
)
from infra.naming import STACK_LABEL
from infra.pulumi_names import DOCKER_PROVIDER
from infra.pulumi_names import PYTHON_DYNAMIC_PREFIX as DYNAMIC_PREFIX
from infra.render import RenderedResource

Spec = NetworkSpec | VolumeSpec | ImageSpec | ContainerSpec

# Provider settings that would point the program at another engine than the local one.
_REMOTE_PROVIDER_KEYS: Final = ("host", "context", "sshOpts", "certPath", "caMaterial")


@dataclass(frozen=True)
class Step:
    urn: str
    spec: Spec
    placeholder: str | None = None
    """For an image: the ID the render gave it, which containers use as their `image`."""
    type: str = ""
    props: dict[str, Any] = field(default_factory=dict, repr=False)
    """The declared properties (may hold secrets), as the state keeps them for the next diff."""


@dataclass(frozen=True)
class Plan:
    stack: str
    steps: tuple[Step, ...]
    skipped: tuple[str, ...]
    """Logical names of resources that need no Docker object (already done by the render)."""
    needs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Each step's URN -> the URNs of the steps it depends on (declared, or implied by the
    names of its image, networks and volumes): an `up` runs a step once these are done."""

    def of(self, kind: type[Spec]) -> list[Spec]:
        return [s.spec for s in self.steps if isinstance(s.spec, kind)]


def plan_stack(stack: str, resources: Sequence[RenderedResource], *, root: Path) -> Plan:
    """Translate and order `resources` (registration order, as rendered).

    Raises:
        ApplyError: a resource type the applier does not support, or a dependency cycle.
        UnsupportedProperty: a declared property it cannot honour.
    """
    steps: list[Step] = []
    skipped: list[str] = []
    for resource in resources:
        step = _translated(resource, root)
        if step is None:
            skipped.append(resource.name)
            continue
        _require_stack_label(step.spec, stack)
        steps.append(step)
    by_urn = {r.urn: r for r in resources}
    urns = {s.urn for s in steps}
    deps = {step.urn: _dependencies(step, by_urn[step.urn], steps, urns) for step in steps}
    return Plan(
        stack=stack,
        steps=tuple(_ordered(steps, deps)),
        skipped=tuple(skipped),
        needs={urn: frozenset(needed) for urn, needed in deps.items()},
    )


def _translated(resource: RenderedResource, root: Path) -> Step | None:
    """`_step`, with a value the translation cannot read turned into an error that names the
    resource but not the value (it may be secret)."""
    try:
        return _step(resource, root)
    except ApplyError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ApplyError(
            f"{resource.name}: a declared property has a value of the wrong shape "
            f"({type(exc).__name__}); check this resource's arguments in the program"
        ) from None


def _require_stack_label(spec: Spec, stack: str) -> None:
    """`down` finds a stack's objects by label: an unlabelled one would be left behind, and
    the next `up` would refuse its name as a clash. (Images are checked once built: their
    label comes from the Dockerfile.)"""
    if isinstance(spec, ImageSpec):
        return
    declared = spec.create if isinstance(spec, ContainerSpec) else spec.kwargs
    if (declared.get("labels") or {}).get(STACK_LABEL) != stack:
        raise ApplyError(
            f"{spec.resource}: not labelled {STACK_LABEL}={stack}, so teardown could not find "
            "it; declare the label (infra/naming.py's *_labels helpers do)"
        )


def _step(resource: RenderedResource, root: Path) -> Step | None:
    kind, name, props = resource.type, resource.name, resource.props
    if not resource.custom or kind.startswith(DYNAMIC_PREFIX):
        return None
    if kind == DOCKER_PROVIDER:
        for key in _REMOTE_PROVIDER_KEYS:
            if props.get(key):
                raise ApplyError(
                    f"{name}: the docker provider is configured with `{key}`; the local applier "
                    "only deploys to the local Docker engine. Use `pulumi up` for other engines."
                )
        return None
    urn = resource.urn
    if kind == NETWORK:
        return Step(urn, translate_network(name, props), type=kind, props=props)
    if kind == VOLUME:
        return Step(urn, translate_volume(name, props), type=kind, props=props)
    if kind == IMAGE:
        placeholder = resource.outputs.get("repoDigest")
        spec = translate_image(name, props)
        return Step(urn, spec, placeholder=placeholder, type=kind, props=props)
    if kind == CONTAINER:
        return Step(urn, translate_container(name, props, root=root), type=kind, props=props)
    raise ApplyError(
        f"{name}: resource type {kind} is not supported by the local applier (it creates "
        "docker Network, Volume, Image and Container resources); deploy with `pulumi up`."
    )


def _dependencies(
    step: Step, resource: RenderedResource, steps: list[Step], urns: set[str]
) -> set[str]:
    """Declared dependencies, plus the ones implied by names: a container needs its image,
    its networks and its volumes even when the program passed them as plain strings."""
    declared = resource.options.get("dependencies") or []
    deps = {urn for urn in declared if urn in urns}
    spec = step.spec
    if isinstance(spec, ContainerSpec):
        networks = {e.network for e in spec.endpoints}
        volumes = {
            m.get("Source") for m in spec.host_config.get("mounts", []) if m.get("Type") == "volume"
        }
        for other in steps:
            o = other.spec
            if (
                (isinstance(o, ImageSpec) and other.placeholder == spec.image)
                or (isinstance(o, NetworkSpec) and o.name in networks)
                or (isinstance(o, VolumeSpec) and o.name in volumes)
            ):
                deps.add(other.urn)
    deps.discard(step.urn)
    return deps


def _ordered(steps: list[Step], deps: dict[str, set[str]]) -> list[Step]:
    """Dependencies first; otherwise registration order (a stable topological sort)."""
    done: set[str] = set()
    ordered: list[Step] = []
    pending = list(steps)
    while pending:
        ready = next((s for s in pending if deps[s.urn] <= done), None)
        if ready is None:
            names = ", ".join(s.spec.resource for s in pending)
            raise ApplyError(f"dependency cycle between {names}; the program cannot be applied")
        ordered.append(ready)
        done.add(ready.urn)
        pending.remove(ready)
    return ordered


__all__ = ["Plan", "Spec", "Step", "plan_stack"]
