"""Swarm services: their task spec judged by the container rules it can express.

A `docker:index/service:Service` runs containers from `taskSpec.containerSpec`; its user,
capabilities, SELinux setting, root filesystem, mounts, environment, labels, command, health
check, memory limit, networks and published ports mean what they mean on a container, so they
are read into a container's shape (`as_container`) and judged by the same checks (`CHECKS`).
The container rules a service cannot break, or that are only advisory, are listed with their
reason in `NOT_FOR_SERVICES`. A published port cannot be bound to one host address: in
`ingress` mode (the default) it listens on every node of the swarm, in `host` mode on every
interface of the node running the task. The stack rules (Redis, clients, networks, volumes,
TLS material) read services in the same shape (`_service_shape.task_containers`). Whether
the task's user can read the files Swarm gives it is advised apart
(`swarm_files_readable`): an unreadable key costs availability, not confidentiality.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from policies.rules import container, image, network, secret
from policies.rules._model import ADVISORY, SERVICE, Config, Resource, ResourceRule
from policies.rules._props import items, known_text, label, mapping, number, strings
from policies.rules._service_shape import as_container, in_service_words
from policies.rules.secret import SECRET_FILE_MODES

CHECKS: Final[tuple[Callable[[Resource, Config], Iterator[str]], ...]] = (
    container.non_root_user,
    container.capabilities_dropped,
    container.no_added_capabilities,
    container.lsm_confined,
    container.read_only_rootfs,
    container.no_docker_socket,
    container.no_sensitive_mounts,
    container.mount_propagation_private,
    container.memory_limited,
    container.healthcheck_defined,
    container.ids_apart_from_host,
    image.container_pinned,
    image.tls_verification_enabled,
    network.no_host_network,
    network.user_defined_network,
    network.ports_bound_to_interface,
    network.no_unneeded_ports,
    secret.env_not_plain,
    secret.labels_not_plain,
    secret.argv_not_plain,
)

_ADVISORY: Final = (
    "advisory for a container, and service-task-hardened is mandatory, so not asked of a service"
)
NOT_FOR_SERVICES: Final = {
    "container-not-privileged": "a service has no privileged setting",
    "container-no-new-privileges": (
        "pulumi-docker's Service has no no-new-privileges setting (privileges holds only "
        "credentialSpec and seLinuxContext)"
    ),
    "container-seccomp-enabled": "a service has no seccomp setting; its tasks keep the default",
    "container-no-host-pid": "a service has no pidMode",
    "container-no-host-ipc": "a service has no ipcMode",
    "container-no-host-userns": "a service has no usernsMode",
    "container-namespaces-private": "a service has no ipcMode, cgroupnsMode or cgroupParent",
    "container-no-host-devices": "a service has no devices, deviceRequests or gpus",
    "container-process-limited": (
        "pulumi-docker's Service has no ulimits (and Docker no pidsLimit): an nproc bound "
        "cannot be expressed"
    ),
    "container-swap-limited": "a service has no memorySwap",
    "container-no-privileged-groups": _ADVISORY,
    "container-bind-mounts-read-only": _ADVISORY,
    "container-cpu-limited": _ADVISORY,
    "container-restart-bounded": _ADVISORY,
    "container-logging-bounded": _ADVISORY,
    "network-port-unprivileged": _ADVISORY,
    "secret-state-encrypted": _ADVISORY,
    "secret-upload-file-mode": (
        "a service has no uploads; the fileMode of each Swarm secret it is given is judged "
        "instead (swarm_secret_modes)"
    ),
}
"""Container rules service-task-hardened does not fold in, and why: Swarm cannot express the
setting, or the rule is advisory (tests/policy/test_policy_rules_service.py keeps every
container rule either in CHECKS or here)."""


def task_hardened(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    task = Resource(resource.type, resource.name, as_container(resource.props), resource.urn)
    for check in CHECKS:
        for found in check(task, config):
            yield in_service_words(found)
    yield from swarm_secret_modes(resource)


def _container_spec(resource: Resource) -> Mapping[str, Any]:
    task = mapping(resource.props.get("taskSpec"), "taskSpec")
    return mapping(task.get("containerSpec"), "taskSpec.containerSpec")


def swarm_secret_modes(resource: Resource) -> Iterator[str]:
    """TLS-10 for the files Swarm gives a task: a secret's file is 0444 unless fileMode says
    otherwise, readable by every process in it (the counterpart of secret-upload-file-mode)."""
    spec = _container_spec(resource)
    for index, raw in enumerate(items(spec.get("secrets"), "taskSpec.containerSpec.secrets")):
        where = f"taskSpec.containerSpec.secrets[{index}]"
        mode = number(mapping(raw, where).get("fileMode"), f"{where}.fileMode")
        if mode is None:
            yield (
                f"{label(resource)} must give {where} fileMode 0400 (or 0440/0600), with "
                f"fileUid/fileGid of its user; Docker's default 0444 lets every process in the "
                f"task read the secret (CIS Docker 3.14)."
            )
        elif _file_mode(mode) not in SECRET_FILE_MODES:
            given = (
                f"got {mode:g}, which is {int(mode):04o} in octal"
                if _file_mode(mode) is not None
                else f"got {mode:g}, which is not a file mode"
            )
            yield (
                f"{label(resource)} must give {where} fileMode 0400 (or 0440/0600); {given}: "
                f"pulumi-docker takes the number, 0o400 in Python or TypeScript, 256 in YAML or "
                f"JSON, with fileUid/fileGid of its user (CIS Docker 3.14)."
            )


def _file_mode(mode: float) -> int | None:
    """A fileMode as permission bits, or None when no file can have it."""
    return int(mode) if 0 <= mode <= 0o7777 and mode == int(mode) else None


_NUMERIC_USER: Final = re.compile(r"^(\d+)(?::(\d+))?$")
# pulumi-docker's defaults for a Swarm secret's or config's file (its _inputs.py): root-owned,
# mode 0444.
_DEFAULT_FILE_ID: Final = "0"
_DEFAULT_FILE_MODE: Final = 0o444


def _can_read(
    mode: int, owner: int, group: int, uid: int, gids: frozenset[int] | None
) -> bool | None:
    """Whether a process with `uid` and groups `gids` may read a file, by the one permission
    class that applies to it (owner, else group, else others; root is not asked: whether it
    reads depends on its capabilities). None: its groups are not all known and the group and
    others classes differ."""
    if uid == owner:
        return bool(mode & 0o400)
    group_reads, others_read = bool(mode & 0o040), bool(mode & 0o004)
    if gids is None:
        return group_reads if group_reads == others_read else None
    return group_reads if group in gids else others_read


def _task_ids(spec: Mapping[str, Any]) -> tuple[int, frozenset[int] | None] | None:
    """The task's numeric uid and every group it is in; None: the uid is not numeric, unknown
    or root; groups None: the primary gid or a supplementary group is a name or not given
    (the image's /etc/group decides it)."""
    user = _NUMERIC_USER.match(known_text(spec, "user"))
    if not user or int(user.group(1)) == 0:
        return None
    extra = strings(spec.get("groups"), "taskSpec.containerSpec.groups")
    if user.group(2) is None or not all(g.isascii() and g.isdigit() for g in extra):
        return int(user.group(1)), None
    return int(user.group(1)), frozenset({int(user.group(2)), *map(int, extra)})


def swarm_files_readable(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """The files Swarm gives a task are owned by fileUid/fileGid, root unless set: with an
    owner-only fileMode (which service-task-hardened asks of secrets) a non-root task cannot
    read its own key or config, and a Redis that cannot read them does not start. A loss of
    availability, not of confidentiality, so advisory (docs/security-catalog.md, TLS-10)."""
    spec = _container_spec(resource)
    ids = _task_ids(spec)
    if ids is None:
        return
    uid, gids = ids
    for key in ("secrets", "configs"):
        for index, raw in enumerate(items(spec.get(key), f"taskSpec.containerSpec.{key}")):
            where = f"taskSpec.containerSpec.{key}[{index}]"
            entry = mapping(raw, where)
            mode = number(entry.get("fileMode"), f"{where}.fileMode")
            owner, group = (
                known_text(entry, name) if name in entry else _DEFAULT_FILE_ID
                for name in ("fileUid", "fileGid")
            )
            if not all(i.isascii() and i.isdigit() for i in (owner, group)):
                continue  # unknown at preview, or a name: cannot be judged
            file_mode = _DEFAULT_FILE_MODE if mode is None else _file_mode(mode)
            if file_mode is None:
                continue  # service-task-hardened reports a mode no file can have
            if _can_read(file_mode, int(owner), int(group), uid, gids) is False:
                yield (
                    f"{label(resource)} runs as uid {uid}, which cannot read {where} (fileUid "
                    f"{owner}, fileGid {group}, fileMode {file_mode:04o}), so the task cannot use "
                    f"it (a Redis that cannot read its key or config does not start). Set "
                    f"fileUid/fileGid to the ids of taskSpec.containerSpec.user, keeping an "
                    f"owner-only fileMode."
                )


RULES: Final = (
    ResourceRule(
        name="service-task-hardened",
        description="Swarm services run their tasks as hardened as containers must be.",
        resource_types=(SERVICE,),
        check=task_hardened,
        refs=(
            "RUNTIME-07",
            "RUNTIME-18",
            "RUNTIME-02",
            "RUNTIME-06",
            "RUNTIME-08",
            "NET-01",
            "NET-02",
            "NET-03",
            "NET-05",
            "SECRET-02",
            "IMAGE-01",
            "IMAGE-03",
            "TLS-10",
        ),
    ),
    ResourceRule(
        name="service-swarm-files-readable",
        description="The files Swarm gives a service's task are readable by the task's user.",
        resource_types=(SERVICE,),
        check=swarm_files_readable,
        refs=("TLS-10",),
        enforcement=ADVISORY,
    ),
)
