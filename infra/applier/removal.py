"""Pure: which objects an `up` removes before its steps begin, and which replaced containers
wait to be removed in their own step, just before their successor is created.

A container has a fixed name and host port, so its successor can only be created once it is
gone; removed just before that create (after the successor's image is built and the steps it
needs are done), it keeps serving while the up builds images and runs what comes before it.
Removed when the up began, the app was down for its image's whole build (20-60 s on the
2-core build machine) and Redis while its initialiser ran (docs/day2.md).

Removed before the steps, as every replaced object was before: whatever is deleted (it has no
successor to wait for), replaced networks, images and volumes (images and volumes are only
forgotten), and a replaced container that must be gone before any step could need it gone:
one on a network that is removed (Docker removes no network with a container on it), and one
whose name or host port another container to be created declares (that one's step may come
first: names never clash).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from infra.applier.plan import Plan
from infra.applier.state import ResourceState
from infra.applier.translate import CONTAINER, NETWORK
from infra.changes import Change, Op


def removed_first(
    plan: Plan, changes: Sequence[Change], state: Mapping[str, ResourceState]
) -> list[Change]:
    """The deletes and replacements an up carries out before its first step, in `changes`'
    order; every other replaced container is removed by its own step."""
    leaving_networks = {
        c.name for c in changes if c.type == NETWORK and c.op in (Op.REPLACE, Op.DELETE)
    }
    replaced = {c.urn for c in changes if c.type == CONTAINER and c.op is Op.REPLACE}
    declared = {s.urn: s.props for s in plan.steps}
    wanted_names: dict[str, str] = {}
    wanted_ports: dict[int, str] = {}
    for change in changes:
        if change.type == CONTAINER and change.op in (Op.CREATE, Op.REPLACE):
            wanted_names[change.name] = change.urn
            for port in _host_ports(declared.get(change.urn, {})):
                wanted_ports[port] = change.urn
    first: set[str] = set()
    for urn in replaced:
        prior = state.get(urn)
        if prior is None:
            continue  # nothing on the engine to remove
        networks = _networks(prior.inputs) | _networks(declared.get(urn, {}))
        held_by_another = wanted_names.get(prior.name, urn) != urn or any(
            wanted_ports.get(port, urn) != urn for port in _host_ports(prior.inputs)
        )
        if networks & leaving_networks or held_by_another:
            first.add(urn)
    return [
        c
        for c in changes
        if c.op is Op.DELETE or (c.op is Op.REPLACE and (c.type != CONTAINER or c.urn in first))
    ]


def _networks(props: Mapping[str, Any]) -> set[str]:
    return {str(n.get("name")) for n in _dicts(props.get("networksAdvanced"))}


def _host_ports(props: Mapping[str, Any]) -> set[int]:
    """The host ports a container's declaration publishes (`ports[].external`)."""
    found: set[int] = set()
    for port in _dicts(props.get("ports")):
        try:
            found.add(int(port["external"]))  # a JSON double (18080.0) or an int
        except (KeyError, TypeError, ValueError):
            continue  # none published, or a value the translation refuses anyway
    return found


def _dicts(items: Any) -> Iterable[Mapping[str, Any]]:
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


__all__ = ["removed_first"]
