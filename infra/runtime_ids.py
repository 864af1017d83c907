"""The uid and gid each long-running container of a stack runs as.

Two requirements decide them:

* Allocated to nothing on a Debian host. Without user-namespace remapping a container's uid
  *is* a host uid: a host account sharing it owns the container's processes (it may read
  their secrets through /proc/<pid>/root) and a host group sharing the gid reads their
  files. Debian's ranges (Debian Policy 9.2.2, adduser.conf, login.defs, systemd's
  UIDS-GIDS.md): 0-99 static system ids; 100-999 dynamic system ids (999 is often
  `systemd-journal`); 1000-59999 ordinary accounts; 60000-64999 allocated globally by Debian
  on demand; 61184-65519 systemd's DynamicUser=; 65534 `nobody`; 65535 the 16-bit -1;
  100000 and up the subordinate ranges useradd hands out (/etc/subuid, rootless engines and
  the daemon's own userns-remap user). 65536-99999 is handed out by none of them, so the
  stacks take their ids from 70000-79999.
* One uid per container. pulumi-docker has no pidsLimit; an `nproc` ulimit bounds the
  processes and threads *of a uid*, counted across the whole host. A uid shared with another
  container (the same role of another stack) would share its budget, so every stack has its
  own block: 70000 + 100 * slot, plus 1 for Redis, 2 for the app, 3 for the metrics
  exporter and 4 for the data-key rotation pass.

gid = uid, and nothing else on the host has either.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from infra.naming import Role

ID_BASE: Final = 70000
ID_CEILING: Final = 80000
_BLOCK: Final = 100
# Each stack name gets its block here; a new stack needs a new, unused slot.
STACK_SLOTS: Final = MappingProxyType({"dev": 1, "staging": 2, "prod": 3})
_ROLE_OFFSETS: Final = MappingProxyType(
    {Role.REDIS: 1, Role.APP: 2, Role.EXPORTER: 3, Role.ROTATION: 4}
)
# Images built without a stack (tests, `docker build` by hand) run as slot 0's ids.
IMAGE_DEFAULT_SLOT: Final = 0
MAX_SLOT: Final = (ID_CEILING - ID_BASE) // _BLOCK - 1


class RuntimeIdError(ValueError):
    """A stack or role without an id."""


def stack_slot(stack: str, configured: int = 0) -> int | None:
    """The block of `stack`: its `runtimeIdSlot` setting, else STACK_SLOTS; None: it has none
    (infra/settings.py then asks for the setting)."""
    return configured or STACK_SLOTS.get(stack)


def runtime_id(stack: str, role: Role, slot: int = 0) -> int:
    """The uid (and gid) `role`'s container of `stack` runs as (`slot`: its runtimeIdSlot)."""
    block = stack_slot(stack, slot)
    if block is None:
        raise RuntimeIdError(
            f"stack {stack!r} has no uid block: set secure-redis:runtimeIdSlot (1-{MAX_SLOT}, "
            f"a slot no other stack on this host uses; taken: {dict(STACK_SLOTS)})"
        )
    return _id(block, role)


def slot_of(uid: int | None) -> int | None:
    """The stack block `uid` lies in (the inverse of runtime_id's arithmetic); None for a uid
    outside the stacks' range or in IMAGE_DEFAULT_SLOT's block, which no stack is given."""
    if uid is None or not ID_BASE <= uid < ID_CEILING:
        return None
    slot = (uid - ID_BASE) // _BLOCK
    return None if slot == IMAGE_DEFAULT_SLOT else slot


def image_default_id(role: Role) -> int:
    """The id an image runs as when no stack passes one (its Dockerfile's ARG default)."""
    return _id(IMAGE_DEFAULT_SLOT, role)


def _id(slot: int, role: Role) -> int:
    if role not in _ROLE_OFFSETS:
        raise RuntimeIdError(f"role {role.value!r} runs no container with its own uid")
    return ID_BASE + _BLOCK * slot + _ROLE_OFFSETS[role]


__all__ = [
    "ID_BASE",
    "ID_CEILING",
    "IMAGE_DEFAULT_SLOT",
    "MAX_SLOT",
    "STACK_SLOTS",
    "RuntimeIdError",
    "image_default_id",
    "runtime_id",
    "slot_of",
    "stack_slot",
]
