"""Pure diff: the planned Docker objects against what the last `up` applied (the state).

For each planned object: `create` when the state has none (or the engine lost it), `update`
when only a container's resource limits or restart policy differ (IN_PLACE: what pulumi-docker
changes on the running container), `replace` when other declared properties differ, otherwise
`same`. A container is also replaced when a network it joins is replaced (Docker removes no
network with containers on it; the engine replaces such dependents too) or when its image is
rebuilt into another image ID. Volumes are never replaced or removed by `up`: a changed
declaration is reported and left alone, only `down` removes them.
Objects the state has and the plan no longer declares are deleted (volumes: forgotten).

Reasons are property paths (`labels`, `memory`; a container's environment and uploads by
name: `envs.HTTP_MAX_INFLIGHT_BYTES`, `uploads["/run/secure-redis-init/server.key"].content`),
never values.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final, TypeGuard

from infra.applier.drift import Drift, reason
from infra.applier.plan import Plan
from infra.applier.state import ResourceState
from infra.applier.translate import (
    CONTAINER,
    IMAGE,
    NETWORK,
    VOLUME,
    ContainerSpec,
    ImageSpec,
    NetworkSpec,
)
from infra.changes import Change, Op
from infra.mock_engine import PropPath
from infra.render import format_path

DOCKER_TYPES: Final = frozenset({CONTAINER, IMAGE, NETWORK, VOLUME})
# The output of an object the state records before its create, start and wait finished (an up
# interrupted or failed there: engine.py `_create`); the next up replaces it.
INCOMPLETE: Final = "incomplete"
MISSING: Final = (
    "missing from the Docker engine, stopped although declared mustRun, or left unfinished "
    "by an interrupted or failed up"
)
# A container whose only change is its image's rebuild is replaced only when the build gives
# another image ID (engine.py decides once it has built): the engine passes the image's
# repoDigest to the container, and an equal digest is no change to it.
IMAGE_REBUILT: Final = "its image is rebuilt (kept if the build gives the same image ID)"
VOLUME_KEPT: Final = "volumes are only removed by down; the existing one is kept"
# Long lists (uploads, mounts) are reported per item, nested objects per key, up to this depth.
_MAX_DEPTH: Final = 3
# Container inputs pulumi-docker changes on the running container instead of replacing it.
# pulumi-docker 5.2 bridges kreuzwerker/terraform-provider-docker v4.5.0 (its `upstream`
# submodule); there, in internal/provider/resource_docker_container.go, these have no
# ForceNew, and resourceDockerContainerUpdate (resource_docker_container_funcs.go) sends them
# with Docker's container update API: "restart", "max_retry_count", "cpu_shares", "memory",
# "memory_reservation", "cpu_set", "memory_swap" (and the device I/O limits, which the
# applier does not implement: translate.py refuses them). So `pulumi up` keeps Redis running
# (and its data in memory) when redisMemoryMb changes; `cpus` is ForceNew there: replaced.
# The provider's update leaves the container alone for its other inputs without ForceNew
# (healthcheck, tmpfs, start, wait, attach): it records them, the running container
# keeps the old ones. The applier replaces the container for those, so what runs is what the
# program declares.
IN_PLACE: Final = frozenset(
    {"restart", "maxRetryCount", "cpuShares", "memory", "memoryReservation", "cpuSet", "memorySwap"}
)


def changed_paths(old: Any, new: Any, path: PropPath = ()) -> list[str]:
    """Where two property trees differ, as `format_path` strings (values never included)."""
    if old == new:
        return []
    if (by_name := _NAMED_LISTS.get(path)) is not None:
        before, after = by_name(old), by_name(new)
        named = [] if before is None or after is None else changed_paths(before, after, path)
        if named:
            return named
        # Nothing by name (the order, or a difference the names hide): as before, by position.
    if len(path) < _MAX_DEPTH:
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            keys = sorted(set(old) | set(new), key=str)
            return [p for k in keys for p in changed_paths(old.get(k), new.get(k), (*path, k))]
        if _is_list(old) and _is_list(new) and len(old) == len(new):
            pairs = enumerate(zip(old, new, strict=True))
            return [p for i, (o, n) in pairs for p in changed_paths(o, n, (*path, i))]
    return [format_path(path) or "(all properties)"]


def _is_list(value: Any) -> TypeGuard[Sequence[Any]]:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _as_named(entries: Any, name_of: Callable[[Any], str | None]) -> dict[str, Any] | None:
    """A list as a mapping by each entry's name, or None (not a list, an entry without a name,
    a name twice): then the list is compared by position, so no change is ever lost."""
    if not _is_list(entries):
        return None
    names = [name_of(e) for e in entries]
    if None in names or len(set(names)) != len(names):
        return None
    return {str(n): e for n, e in zip(names, entries, strict=True)}


def _env_name(entry: Any) -> str | None:
    return entry.split("=", 1)[0] if isinstance(entry, str) and "=" in entry else None


def _upload_file(entry: Any) -> str | None:
    file = entry.get("file") if isinstance(entry, Mapping) else None
    return file if isinstance(file, str) else None


# A container's lists whose entries have a name: its changes are said by name, values never
# (`envs.HTTP_MAX_INFLIGHT_BYTES`, `uploads["/run/secure-redis-init/server.key"].content`,
# `command["--maxmemory"]`).
# By position, `plan` said `envs[10]; envs[15]` and `uploads[3].content`, naming nothing a
# user can find. A change the names do not show (the order alone) is said by position.
def _by_flag(entries: Any) -> dict[str | int, Any] | None:
    """A command line by its `--flag`s (`redis-server CONF --maxmemory 192mb ...`): each
    flag's values under its name, what comes before the first flag by position; None when a
    flag comes twice (or the entries are not all strings)."""
    if not _is_list(entries):
        return None
    named: dict[str | int, Any] = {}
    flag: str | None = None
    for index, entry in enumerate(entries):
        if not isinstance(entry, str):
            return None
        if entry.startswith("--"):
            if entry in named:
                return None
            flag = entry
            named[flag] = []
        elif flag is None:
            named[index] = entry
        else:
            named[flag].append(entry)
    # A flag's one value as itself: `command["--maxmemory"]`, not `command["--maxmemory"][0]`.
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in named.items()}


_NAMED_LISTS: Final[Mapping[PropPath, Callable[[Any], Mapping[Any, Any] | None]]] = {
    ("envs",): lambda entries: _as_named(entries, _env_name),
    ("uploads",): lambda entries: _as_named(entries, _upload_file),
    # `plan` said `command[41]` for redisMaxmemoryMb, `command[19]` for tlsMinVersion.
    ("command",): _by_flag,
}


# The IN_PLACE inputs Docker's update API sends on their own, where 0 or "" means "leave it as
# it is" (the docker SDK's update_container does not even send them); the restart policy goes
# as one object, so `no` and 0 retries reach the engine.
_ZERO_KEEPS: Final = frozenset({"memory", "memorySwap", "memoryReservation", "cpuShares", "cpuSet"})


def updated_in_place(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a container's declaration changed only in IN_PLACE inputs, each still declared.

    One that is no longer declared, or declared 0 or "" (_ZERO_KEEPS), is replaced: Docker's
    update API reads 0 as "leave as it is", so it cannot take a limit away (the provider sends
    0 and the old limit stays, while its state records none).
    """
    changed = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
    if "memory" in changed and new.get("memorySwap") is None:
        # Created without memorySwap, a container's swap limit is Docker's default, twice its
        # memory; an update keeps the old one (or is refused past it), a create sets it anew.
        return False
    return bool(changed) and all(_updatable(k, new.get(k)) for k in changed)


def _updatable(key: str, value: Any) -> bool:
    if key not in IN_PLACE or value is None:
        return False
    return key not in _ZERO_KEEPS or value not in (0, "")


def unfinished(plan: Plan, state: Mapping[str, ResourceState]) -> frozenset[str]:
    """URNs of planned Docker objects the state records as left unfinished (INCOMPLETE): the
    next up creates them again, whatever the engine holds. Known from the state alone, so
    `plan` (no engine) shows the replacement the up makes; the up adds what the engine no
    longer has (engine.py `missing`)."""
    planned = {s.urn for s in plan.steps}
    return frozenset(
        urn
        for urn, prior in state.items()
        if urn in planned and prior.type in DOCKER_TYPES and prior.outputs.get(INCOMPLETE)
    )


def docker_changes(
    plan: Plan,
    state: Mapping[str, ResourceState],
    missing: frozenset[str] = frozenset(),
    drifted: Mapping[str, Drift] | None = None,
) -> list[Change]:
    """Changes in plan order, then deletions.

    `state`: the last `up`'s resources by URN; `missing`: URNs the state has but the Docker
    engine no longer does (or a mustRun container that stopped), which are created again;
    `drifted`: containers changed on the engine since (drift.py): updated in place when
    Docker's update sets every drifted field back, else replaced.
    """
    changes: dict[str, Change] = {}
    for step in plan.steps:
        spec, urn, kind = step.spec, step.urn, step.type
        name = spec.tag if isinstance(spec, ImageSpec) else (spec.name or spec.resource)
        prior = state.get(urn)
        if prior is None:
            changes[urn] = Change(urn, kind, name, Op.CREATE)
            continue
        paths = changed_paths(prior.inputs, step.props)
        if urn in missing:
            # A stopped container still holds its name: removed before its create, as replaced.
            op = Op.CREATE if kind == VOLUME else Op.REPLACE
            changes[urn] = Change(urn, kind, name, op, (MISSING,))
        elif paths and kind == VOLUME:
            changes[urn] = Change(urn, kind, name, Op.SAME, (*paths, VOLUME_KEPT))
        elif paths and kind == CONTAINER and updated_in_place(prior.inputs, step.props):
            changes[urn] = Change(urn, kind, name, Op.UPDATE, tuple(paths))
        elif paths:
            changes[urn] = Change(urn, kind, name, Op.REPLACE, tuple(paths))
        else:
            changes[urn] = Change(urn, kind, name, Op.SAME)
        if drifted and (drift := drifted.get(urn)):
            changes[urn] = _with_drift(changes[urn], drift)
    _replace_dependents(plan, changes)
    planned = {s.urn for s in plan.steps}
    deletions = [
        Change(urn, r.type, r.name, Op.DELETE, (VOLUME_KEPT,) if r.type == VOLUME else ())
        for urn, r in state.items()
        if r.type in DOCKER_TYPES and urn not in planned
    ]
    return [*changes.values(), *deletions]


def _with_drift(change: Change, drift: Drift) -> Change:
    """A drifted container: updated when it was unchanged or updated and Docker's update
    restores every drifted field (an update sends every declared limit), else replaced."""
    if change.op not in (Op.SAME, Op.UPDATE, Op.REPLACE):
        return change
    op = Op.REPLACE if drift.replace or change.op is Op.REPLACE else Op.UPDATE
    return Change(change.urn, change.type, change.name, op, (*change.reasons, reason(drift.fields)))


def _replace_dependents(plan: Plan, changes: dict[str, Change]) -> None:
    rebuilt = {
        s.placeholder
        for s in plan.steps
        if isinstance(s.spec, ImageSpec) and changes[s.urn].op is not Op.SAME
    }
    networks = {
        s.spec.name
        for s in plan.steps
        if isinstance(s.spec, NetworkSpec) and changes[s.urn].op is not Op.SAME
    }
    for step in plan.steps:
        spec, change = step.spec, changes[step.urn]
        if not isinstance(spec, ContainerSpec) or change.op not in (Op.SAME, Op.UPDATE):
            continue
        why = [f"network {e.network} is recreated" for e in spec.endpoints if e.network in networks]
        if spec.image in rebuilt:
            why.append(IMAGE_REBUILT)
        if why:
            # An update as well: replaced, with its changed inputs among the reasons.
            reasons = (*change.reasons, *why)
            changes[step.urn] = Change(change.urn, change.type, change.name, Op.REPLACE, reasons)


def summary(
    changes: Sequence[Change],
    *,
    done: bool = False,
    kept: Collection[str] = (),
    rerun: Collection[str] = (),
) -> str:
    """`2 to replace, 9 unchanged` (a plan) or, once applied (`done`), `2 replaced, 9
    unchanged`: counts per operation, in a fixed order. `kept`: the containers an up planned
    to replace and kept, their image rebuilt to the same ID (StackObjects.kept). `rerun`: the
    containers to replace that are material initialisers run again (their line reads
    `re-run`, infra/apply.py `_change_words`), counted as `1 to re-run` / `1 re-run`: `1 to
    replace` read as if Redis itself were replaced (day2ux16)."""
    replaced = [c for c in changes if c.op is Op.REPLACE and not (done and c.name in kept)]
    kept_count = sum(1 for c in changes if c.op is Op.REPLACE) - len(replaced)
    rerun_count = sum(1 for c in replaced if c.name in rerun)
    counts = {op: sum(1 for c in changes if c.op is op) for op in Op}
    counts[Op.REPLACE] = len(replaced) - rerun_count
    words = {
        Op.CREATE: "created" if done else "to create",
        Op.UPDATE: "updated" if done else "to update",
        Op.REPLACE: "replaced" if done else "to replace",
        Op.DELETE: "deleted" if done else "to delete",
        Op.SAME: "unchanged",
    }
    parts = []
    for op in Op:
        if counts[op] and op is not Op.SAME:
            parts.append(f"{counts[op]} {words[op]}")
        if op is Op.REPLACE and rerun_count:
            parts.append(f"{rerun_count} {'re-run' if done else 'to re-run'}")
    if kept_count:
        parts.append(f"{kept_count} kept (its image was rebuilt to the same image ID)")
    if counts[Op.SAME]:
        parts.append(f"{counts[Op.SAME]} {words[Op.SAME]}")
    return ", ".join(parts) or "nothing"


def rebuilt_image_only(change: Change) -> bool:
    """A container to replace only if its rebuilt image turns out different (IMAGE_REBUILT)."""
    return (
        change.type == CONTAINER and change.op is Op.REPLACE and change.reasons == (IMAGE_REBUILT,)
    )


__all__ = [
    "DOCKER_TYPES",
    "IMAGE_REBUILT",
    "INCOMPLETE",
    "IN_PLACE",
    "MISSING",
    "VOLUME_KEPT",
    "changed_paths",
    "docker_changes",
    "rebuilt_image_only",
    "summary",
    "unfinished",
    "updated_in_place",
]
