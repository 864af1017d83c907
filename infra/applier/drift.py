"""Pure: how a running container has drifted from its declaration behind the applier's back.

The state records what the last `up` applied, and the diff (diff.py) compares declarations
only; a container changed on the engine since (`docker update` of its limits or restart
policy, `docker network connect`, `docker rename`) kept its ID, so it looked unchanged and
`up` left it as it was (attack pass of 2026-12-03 on s88: `docker update --memory 1g
--restart always` on Redis, then `up` said "37 unchanged"). A container removed and created
again by hand under the same name has another ID: engine.py `missing` finds that one.

Each drift is named by its `docker inspect` field, never its value. `updatable` drifts are
the ones Docker's container update API sets back (what diff.IN_PLACE updates), so `up`
updates the container as it runs; any other drift needs a new container: `up` replaces it.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from infra.applier.errors import ApplyError
from infra.applier.translate import ContainerSpec, Upload, translate_container


@dataclass(frozen=True)
class Drift:
    updatable: tuple[str, ...] = ()
    """Fields Docker's update API restores: `up` updates the container in place."""
    replace: tuple[str, ...] = ()
    """Fields only a new container restores: `up` replaces it."""

    def __bool__(self) -> bool:
        return bool(self.updatable or self.replace)

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.updatable, *self.replace)


DRIFTED: Final = "changed on the engine since the last up"


def reason(fields: tuple[str, ...]) -> str:
    """The change's reason, naming the fields (`docker inspect` names), never a value."""
    return f"{DRIFTED}: {', '.join(fields)}"


def _restart(policy: Mapping[str, Any] | None) -> tuple[str, int]:
    policy = policy or {}
    return (str(policy.get("Name") or "no"), int(policy.get("MaximumRetryCount") or 0))


# (inspect field under HostConfig, the spec's host_config key, its value when undeclared,
# whether Docker's update API can set the declared value back). The update API reads 0 as
# "keep the current value", so a limit declared absent (0) cannot be restored by an update.
_LIMITS: Final[tuple[tuple[str, str, Any, bool], ...]] = (
    ("Memory", "mem_limit", 0, True),
    ("MemorySwap", "memswap_limit", None, True),  # undeclared: Docker's default, not compared
    ("MemoryReservation", "mem_reservation", 0, True),
    ("CpuShares", "cpu_shares", 0, True),
    ("CpusetCpus", "cpuset_cpus", "", True),
    ("NanoCpus", "nano_cpus", 0, False),
    ("CpuQuota", "cpu_quota", 0, False),
    ("CpuPeriod", "cpu_period", 0, False),
    ("Privileged", "privileged", False, False),
    ("ReadonlyRootfs", "read_only", False, False),
    ("CapAdd", "cap_add", [], False),
    ("SecurityOpt", "security_opt", [], False),
)
# Settable with `docker update` although the program never declares them (pulumi-docker has
# no pidsLimit or blkio weight): anything but Docker's "unset" is drift.
_UNDECLARED: Final[tuple[tuple[str, Callable[[Any], bool]], ...]] = (
    ("PidsLimit", lambda v: v in (None, 0, -1)),
    ("BlkioWeight", lambda v: not v),
)


def container_drift(
    spec: ContainerSpec,
    inspected: Mapping[str, Any],
    applied: Mapping[str, Any] | None = None,
) -> Drift:
    """`inspected`: `docker inspect` of the container the state records for `spec`;
    `applied`: the properties the last `up` declared for it (the state's inputs).

    A field is drift only where what runs differs from both declarations: one that differs
    from the new declaration alone is the stack file's change, which the diff already
    updates or replaces for (diff.py), not a change made on the engine. Compared with the new
    declaration only, `stack_config set appMemoryMb 300` and `up` said the app's memory was
    "changed on the engine since the last up" (s45, 2026-12-03)."""
    drift = _drift(spec, inspected)
    before = _applied_spec(spec.resource, applied) if applied is not None else None
    if not drift or before is None:
        return drift
    also = set(_drift(before, inspected).fields)
    return Drift(
        tuple(f for f in drift.updatable if f in also),
        tuple(f for f in drift.replace if f in also),
    )


def _applied_spec(resource: str, applied: Mapping[str, Any]) -> ContainerSpec | None:
    """The last `up`'s declaration, without its uploads (no drift field reads them, and a
    `source` file may have moved since); None when it does not translate (a state of older
    code), which leaves the comparison with the new declaration alone."""
    props = {k: v for k, v in applied.items() if k != "uploads"}
    try:
        return translate_container(resource, props, root=Path("/"))
    except (ApplyError, KeyError, TypeError, ValueError):
        return None


def _drift(spec: ContainerSpec, inspected: Mapping[str, Any]) -> Drift:
    host = inspected.get("HostConfig") or {}
    declared = spec.host_config
    updatable, replace = _limits(host, declared)
    want_restart = _restart(_restart_of(declared))
    if _restart(host.get("RestartPolicy")) != want_restart:
        updatable.append("HostConfig.RestartPolicy")
    for field, is_unset in _UNDECLARED:
        if not is_unset(host.get(field)):
            replace.append(f"HostConfig.{field}")
    networks = set((inspected.get("NetworkSettings") or {}).get("Networks") or {})
    if spec.endpoints:
        want_networks = {e.network for e in spec.endpoints}
    else:
        want_networks = {str(declared.get("network_mode", "bridge"))}
    if networks and networks != want_networks:
        replace.append("NetworkSettings.Networks")
    if spec.name and str(inspected.get("Name", "")).lstrip("/") != spec.name:
        replace.append("Name")
    return Drift(tuple(updatable), tuple(replace))


def _limits(host: Mapping[str, Any], declared: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    updatable: list[str] = []
    replace: list[str] = []
    for field, key, unset, can_update in _LIMITS:
        want = declared.get(key, unset)
        if want is None:
            continue
        have = host.get(field)
        if isinstance(unset, list):
            want, have = sorted(want or []), sorted(have or [])
        elif isinstance(unset, bool):
            want, have = bool(want), bool(have)
        elif isinstance(unset, int):
            have = have or 0
        else:
            have = have or ""
        if have != want:
            # Docker's update takes 0/"" as "leave as is": only a declared value is restored.
            (updatable if can_update and want not in (0, "") else replace).append(
                f"HostConfig.{field}"
            )
    return updatable, replace


def _restart_of(declared: Mapping[str, Any]) -> Mapping[str, Any]:
    policy = declared.get("restart_policy") or {}
    return policy if isinstance(policy, Mapping) else {}


# infra/components/material.py: the initialiser copies each upload into `..<revision>/` of
# the volume, `..data` links to that directory, and each name at the top links through it.
_DATA_LINK: Final = "..data"


def material_drift(uploads: Sequence[Upload], revision: str, archive: bytes) -> tuple[str, ...]:
    """What differs in a material volume from what its initialiser wrote (attack pass of
    2026-12-03: a file replaced, or its mode changed, inside the volume, which no container's
    configuration shows): one `material <name> (<what>)` per difference, never content.
    `archive`: Docker's archive of the volume's mount point (a tar whose first component is
    the mount's own name), read through the exited initialiser."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = {_inner(m.name): (m, tar) for m in tar.getmembers()}
        return tuple(_material_differences(uploads, revision, members))


def _inner(name: str) -> str:
    return name.split("/", 1)[1] if "/" in name else ""


def _material_differences(
    uploads: Sequence[Upload],
    revision: str,
    members: Mapping[str, tuple[tarfile.TarInfo, tarfile.TarFile]],
) -> list[str]:
    current = f"..{revision}"
    found: list[str] = []
    # The initialiser makes the volume's own directory 0700 (chmod) and the revision's too
    # (mkdir -m), so running it again sets either back; tests/e2e/test_e2e_secrets.py checks
    # the first on a deployed stack.
    root = members.get("")
    if root is None or not root[0].isdir() or root[0].mode & 0o7777 != 0o700:
        found.append("material volume directory (mode)")
    entry = members.get(current)
    if entry is None or not entry[0].isdir() or entry[0].mode & 0o7777 != 0o700:
        found.append(f"material {current} (directory mode)")
    link = members.get(_DATA_LINK)
    if link is None or not link[0].issym() or link[0].linkname != current:
        found.append(f"material {_DATA_LINK} (link)")
    declared = {u.path.rsplit("/", 1)[-1]: u for u in uploads}
    for name, upload in sorted(declared.items()):
        top = members.get(name)
        if top is None or not top[0].issym() or top[0].linkname != f"{_DATA_LINK}/{name}":
            found.append(f"material {name} (link)")
        entry = members.get(f"{current}/{name}")
        if entry is None or not entry[0].isfile():
            found.append(f"material {name} (missing)")
            continue
        info, tar = entry
        handle = tar.extractfile(info)
        content = handle.read() if handle is not None else b""
        if hashlib.sha256(content).digest() != hashlib.sha256(upload.content).digest():
            found.append(f"material {name} (content)")
        if info.mode & 0o7777 != upload.mode:
            found.append(f"material {name} (mode)")
        if (info.uid, info.gid) != (upload.uid, upload.gid):
            found.append(f"material {name} (owner)")
    prefix = f"{current}/"
    extra = sorted(n[len(prefix) :] for n in members if n.startswith(prefix))
    found.extend(f"material {n} (not declared)" for n in extra if n not in declared)
    return found


__all__ = ["DRIFTED", "Drift", "container_drift", "material_drift", "reason"]
