"""Stable Docker object names and labels (docs/design.md#stable-interfaces).

Names are plain strings, never outputs of other resources, so policies can join containers to
networks and volumes by name even during a preview (docs/design.md#policy-readable-declarations).
Pure: the operator commands import it (through infra/settings.py too), so the Pulumi-typed
options and label lists built from these are in infra/components/docker_objects.py.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Final

PROJECT: Final = "secure-redis"
STACK_LABEL: Final = "io.secure-redis.stack"
ROLE_LABEL: Final = "io.secure-redis.role"
# Redis's alias on the stack's backend network: the host name its clients connect to.
REDIS_ALIAS: Final = "redis"
# The port the app's HTTP API listens on inside its container (app/Dockerfile's HTTP_PORT):
# the program publishes it (infra/components/app.py) and the rotation probe asks the API there
# from inside the container (infra/rotation_probe.py).
APP_HTTP_PORT: Final = 8080
# Changes whenever certificates or secrets are regenerated, so the containers that read them
# are replaced (and restarted) with the new material.
MATERIAL_LABEL: Final = "io.secure-redis.material-revision"
# The Docker bridge driver's option that names the network's host interface.
BRIDGE_NAME_OPTION: Final = "com.docker.network.bridge.name"
# Linux interface names hold at most 15 characters (IFNAMSIZ - 1).
_IFNAME_MAX: Final = 15


# The exporter's container: secure-redis-<stack>-redis-exporter (its role label is `exporter`).
EXPORTER_CONTAINER: Final = "redis-exporter"


class Role(StrEnum):
    REDIS = "redis"
    APP = "app"
    BACKEND = "backend"
    FRONTEND = "frontend"
    DATA = "data"
    EXPORTER = "exporter"
    ROTATION = "rotation"


def object_name(stack: str, suffix: str) -> str:
    """`secure-redis-<stack>-<suffix>`, e.g. secure-redis-dev-redis."""
    return f"{PROJECT}-{stack}-{suffix}"


def bridge_interface(stack: str, role: Role) -> str:
    """The host interface of a stack network's bridge, declared in the program instead of
    Docker's `br-<network id>`: the host firewall rules name it (infra/firewall.py), so they
    stay right when an `up` replaces the network. `sr-<stack>-b` / `sr-<stack>-f`; a stack
    name too long for 15 characters gives `sr_<hash>b` / `sr_<hash>f` (stack names have no
    `_`, so the two forms never give the same name)."""
    if role not in (Role.BACKEND, Role.FRONTEND):
        raise ValueError(f"only the stack's networks have a bridge, not {role.value}")
    tag = role.value[0]
    readable = f"sr-{stack}-{tag}"
    if len(readable) <= _IFNAME_MAX:
        return readable
    digest = hashlib.sha256(stack.encode()).hexdigest()[: _IFNAME_MAX - 4]
    return f"sr_{digest}{tag}"


def label_pairs(stack: str, role: Role) -> dict[str, str]:
    return {STACK_LABEL: stack, ROLE_LABEL: role.value}


__all__ = [
    "APP_HTTP_PORT",
    "BRIDGE_NAME_OPTION",
    "MATERIAL_LABEL",
    "PROJECT",
    "REDIS_ALIAS",
    "ROLE_LABEL",
    "STACK_LABEL",
    "Role",
    "bridge_interface",
    "label_pairs",
    "object_name",
]
