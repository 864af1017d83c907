"""What a Swarm service's task spec amounts to as container properties.

A `docker:index/service:Service` runs containers from `taskSpec.containerSpec`; its user,
capabilities, SELinux setting, root filesystem, mounts, environment, command, health check,
memory limit, published ports and networks mean what they mean on a container, so the container
and Redis rules read them in a container's shape (policies/rules/service.py,
policies/rules/_redisconf.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from policies.rules._props import items, mapping, number, strings, text

_BYTES_PER_MB: Final = 1024 * 1024


def as_container(props: Mapping[str, Any]) -> dict[str, Any]:
    """The container properties a service's task spec amounts to."""
    task = mapping(props.get("taskSpec"), "taskSpec")
    spec = mapping(task.get("containerSpec"), "taskSpec.containerSpec")
    selinux = mapping(mapping(spec.get("privileges")).get("seLinuxContext"))
    env = mapping(spec.get("env"), "taskSpec.containerSpec.env")
    limits = mapping(mapping(task.get("resources")).get("limits"))
    memory = number(limits.get("memoryBytes"), "taskSpec.resources.limits.memoryBytes")
    ports = []
    for index, port in enumerate(items(mapping(props.get("endpointSpec")).get("ports"))):
        entry = mapping(port, f"endpointSpec.ports[{index}]")
        if (text(entry.get("publishMode")) or "ingress") == "ingress":
            published = {
                "internal": entry.get("targetPort"),
                "external": entry.get("publishedPort"),
            }
            ports.append(published)
    return {
        "name": text(props.get("name"), "name"),
        "image": text(spec.get("image"), "taskSpec.containerSpec.image"),
        "user": text(spec.get("user"), "taskSpec.containerSpec.user"),
        "readOnly": spec.get("readOnly"),
        "capabilities": {
            "adds": strings(spec.get("capAdds"), "capAdds"),
            "drops": strings(spec.get("capDrops"), "capDrops"),
        },
        "securityOpts": ["label=disable"] if selinux.get("disable") is True else [],
        "mounts": items(spec.get("mounts"), "taskSpec.containerSpec.mounts"),
        "envs": [f"{key}={value}" for key, value in env.items() if isinstance(value, str)],
        "entrypoints": strings(spec.get("commands"), "commands"),
        "command": strings(spec.get("args"), "args"),
        "healthcheck": {"tests": strings(mapping(spec.get("healthcheck")).get("tests"), "tests")},
        "memory": memory / _BYTES_PER_MB if memory else None,
        "ports": ports,
        "networksAdvanced": _networks(task),
        # Every port the service publishes, in either mode; Swarm picks a published port when
        # none is given (network-redis-no-published-port reads it for a service).
        "endpointPorts": items(mapping(props.get("endpointSpec")).get("ports")),
    }


def _networks(task: Mapping[str, Any]) -> list[dict[str, Any]]:
    """pulumi-docker v4 `networksAdvanceds` ({name, aliases}) or v3 `networks` (names)."""
    advanced = [
        dict(mapping(entry, f"taskSpec.networksAdvanceds[{index}]"))
        for index, entry in enumerate(items(task.get("networksAdvanceds"), "networksAdvanceds"))
    ]
    plain = [{"name": name} for name in strings(task.get("networks"), "taskSpec.networks")]
    return advanced + plain
