"""The foreign stack (tests/policy/foreign.py) deployed as Swarm services.

Its Redis container and its client container become `docker:index/service:Service` resources
with the same settings in pulumi-docker's property names (v5 schema: `taskSpec.containerSpec`
with `env` as a map, `args`, `capDrops`, `mounts`, `healthcheck`;
`taskSpec.resources.limits.memoryBytes`; `taskSpec.networksAdvanceds`; `endpointSpec.ports`).
The one-shot loaders stay containers: they fill the volumes the services mount. Rules judge
both stacks alike, so the same change must give the same finding on either
(tests/policy/test_policy_rules_service.py).
"""

from __future__ import annotations

import copy
from typing import Any, Final

from policies.records import Record, parse_records
from policies.rules._model import SERVICE
from tests.policy import foreign

SERVICES: Final = ("cache", "web")
_BYTES_PER_MB: Final = 1024 * 1024


def as_service(container: dict[str, Any]) -> dict[str, Any]:
    """A container's properties as the Swarm service that runs the same task."""
    spec: dict[str, Any] = {"image": container["image"]}
    for key in ("user", "readOnly", "mounts", "healthcheck", "labels"):
        if key in container:
            spec[key] = copy.deepcopy(container[key])
    if "envs" in container:
        spec["env"] = dict(e.split("=", 1) for e in container["envs"])
    if "entrypoints" in container:
        spec["commands"] = list(container["entrypoints"])
    if "command" in container:
        spec["args"] = list(container["command"])
    capabilities = container.get("capabilities", {})
    if "drops" in capabilities:
        spec["capDrops"] = list(capabilities["drops"])
    if "adds" in capabilities:
        spec["capAdds"] = list(capabilities["adds"])
    task: dict[str, Any] = {"containerSpec": spec}
    if "memory" in container:
        task["resources"] = {"limits": {"memoryBytes": container["memory"] * _BYTES_PER_MB}}
    if "networksAdvanced" in container:
        task["networksAdvanceds"] = copy.deepcopy(container["networksAdvanced"])
    if container.get("networkMode") == "host":  # Swarm's predefined host network
        task["networksAdvanceds"] = [{"name": "host"}]
    service: dict[str, Any] = {"name": container["name"], "taskSpec": task}
    # Swarm cannot bind a published port to one host address: a port the container binds to
    # one (the client's 127.0.0.1:8443) has no Swarm twin; the others are published.
    ports = [
        {"targetPort": p["internal"], "publishedPort": p.get("external")}
        for p in container.get("ports", [])
        if not p.get("ip")
    ]
    if ports:
        service["endpointSpec"] = {"ports": ports}
    return service


def raw() -> list[dict[str, Any]]:
    items = foreign.raw()
    for item in items:
        if item["name"] in SERVICES:
            item["type"] = SERVICE
            item["props"] = as_service(item["props"])
    return items


def records(items: list[dict[str, Any]] | None = None) -> list[Record]:
    return parse_records(raw() if items is None else items, source="shop-swarm",
                         stack=foreign.STACK, project=foreign.PROJECT)  # fmt: skip
