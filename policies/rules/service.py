"""Swarm services: their task spec judged by the container rules it can express.

A `docker:index/service:Service` runs containers from `taskSpec.containerSpec`; its user,
capabilities, SELinux setting, root filesystem, mounts, environment, labels, command, health
check, memory limit, networks and published ports mean what they mean on a container, so they
are read into a container's shape (`as_container`) and judged by the same checks (`CHECKS`).
The container rules a service cannot break, or that are only advisory, are listed with their
reason in `NOT_FOR_SERVICES`. A published port cannot be bound to one host address: in
`ingress` mode (the default) it listens on every node of the swarm, in `host` mode on every
interface of the node running the task. The stack rules (Redis, clients, networks, volumes,
TLS material) read services in the same shape (`_service_shape.task_containers`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from policies.rules import container, image, network, secret
from policies.rules._model import SERVICE, Config, Resource, ResourceRule
from policies.rules._props import items, label, mapping, number
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


def swarm_secret_modes(resource: Resource) -> Iterator[str]:
    """TLS-10 for the files Swarm gives a task: a secret's file is 0444 unless fileMode says
    otherwise, readable by every process in it (the counterpart of secret-upload-file-mode)."""
    spec = mapping(mapping(resource.props.get("taskSpec")).get("containerSpec"))
    for index, raw in enumerate(items(spec.get("secrets"))):
        where = f"taskSpec.containerSpec.secrets[{index}]"
        mode = number(mapping(raw, where).get("fileMode"), f"{where}.fileMode")
        if mode is None or int(mode) not in SECRET_FILE_MODES:
            yield (
                f"{label(resource)} must give {where} fileMode 0400 (or 0440/0600), with "
                f"fileUid/fileGid of its user; Docker's default 0444 lets every process in the "
                f"task read the secret (CIS Docker 3.14)."
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
)
