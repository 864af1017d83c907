"""What a Swarm service's task spec amounts to as container properties.

A `docker:index/service:Service` runs containers from `taskSpec.containerSpec`; its user and
capabilities, SELinux setting, root filesystem, mounts, environment, labels, command,
health check, memory limit, published ports and networks mean what they mean on a container, so
the container, Redis, client and TLS rules read them in a container's shape
(policies/rules/service.py, policies/rules/_redisconf.py). Property names are pulumi-docker's
(v4/v5 `capAdds`, `networksAdvanceds`, `env` as a map; v3 `networks` as names).

Swarm secrets and configs (`containerSpec.secrets` / `configs`) become read-only mounts at the
path Docker gives them: an absolute `fileName` as is, a relative one under /run/secrets (secrets)
or / (configs); Docker mounts both read-only. Their content lives in the stack's `Secret` and
`ServiceConfig` resources, which coverage-unchecked-resource reports as unchecked.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, Final

from policies.rules._model import (
    CONTAINER,
    NETWORK,
    SERVICE,
    SERVICE_CONFIG,
    SWARM_SECRET,
    Resource,
    Unreadable,
)
from policies.rules._props import (
    flag,
    items,
    known_text,
    label,
    mapping,
    number,
    reading,
    strings,
    text,
)

_BYTES_PER_MB: Final = 1024 * 1024
# Where Docker puts a Swarm secret or config whose fileName is relative, and the reference's
# property naming the stack's Secret or ServiceConfig resource (by its `name`).
_FILE_ROOTS: Final = {"secrets": "/run/secrets", "configs": "/"}
_REFERENCE_NAME: Final = {"secrets": "secretName", "configs": "configName"}
_DELIVERED_BY: Final = {SWARM_SECRET: "secret", SERVICE_CONFIG: "config"}


def as_container(props: Mapping[str, Any]) -> dict[str, Any]:
    """The container properties a service's task spec amounts to."""
    task = mapping(props.get("taskSpec"), "taskSpec")
    spec = mapping(task.get("containerSpec"), "taskSpec.containerSpec")
    privileges = mapping(spec.get("privileges"), "taskSpec.containerSpec.privileges")
    selinux = mapping(
        privileges.get("seLinuxContext"), "taskSpec.containerSpec.privileges.seLinuxContext"
    )
    env = mapping(spec.get("env"), "taskSpec.containerSpec.env")
    limits = mapping(
        mapping(task.get("resources"), "taskSpec.resources").get("limits"),
        "taskSpec.resources.limits",
    )
    memory = number(limits.get("memoryBytes"), "taskSpec.resources.limits.memoryBytes")
    networks = _networks(task)
    # Every published port, in either mode, as a port with no host address: Swarm has none to
    # bind it to. Ingress mode listens on every node, host mode on every interface of the node
    # running the task, and no publishedPort means a port Swarm picks.
    endpoint = mapping(props.get("endpointSpec"), "endpointSpec")
    ports = [
        {
            "internal": mapping(port, f"endpointSpec.ports[{index}]").get("targetPort"),
            "external": mapping(port, f"endpointSpec.ports[{index}]").get("publishedPort"),
        }
        for index, port in enumerate(items(endpoint.get("ports"), "endpointSpec.ports"))
    ]
    return {
        "name": text(props.get("name"), "name"),
        "image": text(spec.get("image"), "taskSpec.containerSpec.image"),
        "user": text(spec.get("user"), "taskSpec.containerSpec.user"),
        "readOnly": spec.get("readOnly"),
        "capabilities": {
            "adds": strings(spec.get("capAdds"), "taskSpec.containerSpec.capAdds"),
            "drops": strings(spec.get("capDrops"), "taskSpec.containerSpec.capDrops"),
        },
        "securityOpts": ["label=disable"] if selinux.get("disable") is True else [],
        "mounts": _mounts(spec) + _files(spec),
        "envs": [f"{key}={value}" for key, value in env.items() if isinstance(value, str)],
        "labels": items(props.get("labels"), "labels")
        + items(spec.get("labels"), "taskSpec.containerSpec.labels"),
        "entrypoints": strings(spec.get("commands"), "taskSpec.containerSpec.commands"),
        "command": strings(spec.get("args"), "taskSpec.containerSpec.args"),
        "healthcheck": {"tests": _health_tests(spec)},
        "memory": memory / _BYTES_PER_MB if memory else None,
        "ports": ports,
        "networksAdvanced": networks,
        # Swarm's predefined `host` network gives the tasks the node's network stack, as
        # networkMode host does for a container.
        "networkMode": "host" if any(n.get("name") == "host" for n in networks) else None,
    }


# How a service receives a file, where a container's message says it uploads one.
_GIVEN_BY_SWARM: Final = (
    "this stack gives it as a ServiceConfig or Secret (taskSpec.containerSpec.configs or secrets)"
)
# Container property names in the checks' messages, as a service spells them.
SERVICE_WORDS: Final = (
    ("capabilities.drops", "taskSpec.containerSpec.capDrops"),
    ("capabilities.adds", "taskSpec.containerSpec.capAdds"),
    ("remove apparmor=unconfined and label=disable from securityOpts",
     "remove privileges.seLinuxContext.disable"),
    ("(memory, in MB)", "(taskSpec.resources.limits.memoryBytes)"),
    ("Raise memory,", "Raise taskSpec.resources.limits.memoryBytes,"),
    ("the container's memory limit", "the service's memory limit"),
    ("healthcheck.tests", "taskSpec.containerSpec.healthcheck.tests"),
    ("must bind ports[", "must not publish endpointSpec.ports["),
    (" to a specific host address (ip: 127.0.0.1); it listens on every interface",
     "; Swarm cannot bind a published port to one host address, so it listens on every "
     "interface (of every node, in the default ingress mode)"),
    ("set readOnly", "set taskSpec.containerSpec.readOnly"),
    ("must not set networkMode to host",
     "must not join Swarm's predefined host network (taskSpec.networksAdvanceds)"),
    ("(networksAdvanced) or set networkMode none; it is on Docker's default bridge",
     "(taskSpec.networksAdvanceds); with none, Swarm runs its tasks on each node's default "
     "bridge"),
    ('(user: "<uid>:<gid>"', '(taskSpec.containerSpec.user: "<uid>:<gid>"'),
    ('must run as a numeric "<uid>:<gid>"',
     'must run as a numeric taskSpec.containerSpec.user "<uid>:<gid>"'),
    ("from its envs.", "from its taskSpec.containerSpec.env."),
    # The variables images read redis-server's options from: redis-stack's REDIS_ARGS
    # (policies/rules/_redisconf.py, STACK_OPTIONS_ENV), Bitnami's REDIS_EXTRA_FLAGS and
    # VALKEY_EXTRA_FLAGS (policies/rules/_bitnami.py).
    ("envs REDIS_", "taskSpec.containerSpec.env REDIS_"),
    ("envs VALKEY_", "taskSpec.containerSpec.env VALKEY_"),
    ("must not put secrets on its command line (",
     "must not put secrets in taskSpec.containerSpec.commands or args ("),
    ("in labels (", "in labels or taskSpec.containerSpec.labels ("),
    # A service cannot upload files: its settings go in its args, its files come from the
    # stack's ServiceConfig or Secret resources (_delivered_texts).
    ("on its command line or in a redis.conf uploaded by this stack",
     f"in taskSpec.containerSpec.args or in a redis.conf {_GIVEN_BY_SWARM}"),
    ("on the command line or in an uploaded redis.conf",
     f"in taskSpec.containerSpec.args or in a redis.conf {_GIVEN_BY_SWARM}"),
    # The file an image's script reads beside its options variable (redis-stack's
    # /redis-stack.conf, Bitnami's overrides.conf: policies/rules/redis.py, _with_hint).
    (".conf uploaded by this stack;", f".conf {_GIVEN_BY_SWARM};"),
    ("a certificate this stack uploads (tls-cert-file)",
     f"a certificate (tls-cert-file) {_GIVEN_BY_SWARM}"),
)  # fmt: skip


def in_service_words(message: str) -> str:
    """A container rule's message with the property names a service uses instead."""
    for container_word, service_word in SERVICE_WORDS:
        message = message.replace(container_word, service_word)
    return message


def _health_tests(spec: Mapping[str, Any]) -> list[str]:
    where = "taskSpec.containerSpec.healthcheck"
    return strings(mapping(spec.get("healthcheck"), where).get("tests"), f"{where}.tests")


def _mounts(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The task's mounts, each read here with the service's property path, so a container
    rule reading a shaped mount meets no value of the wrong type (it would name the mount as
    a container's, mounts[i])."""
    found = []
    for index, raw in enumerate(items(spec.get("mounts"), "taskSpec.containerSpec.mounts")):
        where = f"taskSpec.containerSpec.mounts[{index}]"
        mount = dict(mapping(raw, where))
        for key in ("type", "source", "target"):
            text(mount.get(key), f"{where}.{key}")
        flag(mount.get("readOnly"), f"{where}.readOnly")
        mapping(mount.get("bindOptions"), f"{where}.bindOptions")
        found.append(mount)
    return found


def _files(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Swarm secrets and configs as the read-only mounts Docker makes of them."""
    found = []
    for key, root in _FILE_ROOTS.items():
        for index, raw in enumerate(items(spec.get(key), f"taskSpec.containerSpec.{key}")):
            entry = mapping(raw, f"taskSpec.containerSpec.{key}[{index}]")
            name = text(entry.get("fileName"), f"taskSpec.containerSpec.{key}[{index}].fileName")
            if name:
                target = str(PurePosixPath(root) / name)  # an absolute name replaces the root
                source = known_text(entry, _REFERENCE_NAME[key])
                found.append(
                    {"type": key.rstrip("s"), "target": target, "source": source, "readOnly": True}
                )
    return found


def _delivered_texts(resources: Sequence[Resource]) -> dict[tuple[str, str], str | None]:
    """The text of each Swarm secret and config in the stack, by (kind, name); None when its
    data is not base64 of UTF-8 text, or unknown at preview."""
    texts: dict[tuple[str, str], str | None] = {}
    for resource in resources:
        kind = _DELIVERED_BY.get(resource.type)
        name = known_text(resource.props, "name") if kind else ""
        if kind and name:
            texts[(kind, name)] = _decoded(known_text(resource.props, "data"))
    return texts


def _decoded(data: str) -> str | None:
    # pulumi-docker takes `data` as base64, standard or URL-safe alphabet.
    try:
        raw = base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
        return raw.decode("utf-8") if data else None
    except (binascii.Error, UnicodeDecodeError):
        return None


def task_containers(resources: Iterable[Resource]) -> list[Resource]:
    """Every container, then every Swarm service read in a container's shape.

    A service whose task spec cannot be read is left out: service-task-hardened reports the
    property it cannot read.
    """
    everything = list(resources)
    shaped = [r for r in everything if r.type == CONTAINER]
    delivered = _delivered_texts(everything)
    for resource in everything:
        if resource.type != SERVICE:
            continue
        try:
            props = as_container(resource.props)
        except Unreadable:
            continue
        # The files Swarm places in the task, read like a container's uploads, so the rules
        # that read a container's files (redis.conf, ACL, certificates) read them too.
        props["uploads"] = [
            {"file": m["target"], "content": delivered.get((m["type"], m["source"]))}
            for m in props["mounts"]
            if m.get("type") in ("secret", "config")
        ]
        shaped.append(dataclasses.replace(resource, props=props))
    declared = {(known_text(n.props, "name") or n.name): n for n in everything if n.type == NETWORK}
    originals = {r.urn: r for r in everything}
    joined = []
    for resource in shaped:
        with reading(resource):
            named = _network_mode_by_name(resource, declared)
            joined.append(_networks_by_name(named, declared, originals.get(named.urn, named)))
    return joined


# networkMode values that name no network: Docker's default bridge, the host's network stack,
# no network, and another container's namespace (`container:<name>`, judged on its own).
_MODES_WITHOUT_NETWORK: Final = frozenset({"", "bridge", "default", "host", "none"})


def network_mode_network(props: Mapping[str, Any]) -> str:
    """The network a container joins through `networkMode` (`docker run --network NAME`,
    Terraform's `network_mode = docker_network.x.name`), or "" when the mode names none."""
    mode = text(props.get("networkMode"), "networkMode") or ""
    if mode in _MODES_WITHOUT_NETWORK or mode.startswith("container:"):
        return ""
    return mode


def _network_mode_by_name(resource: Resource, declared: Mapping[str, Resource]) -> Resource:
    """The container with a network it joins by ID through networkMode (`network_mode =
    network.id`) named by that network's name, as _networks_by_name does for networksAdvanced:
    the network whose `id` output the value is (in full or as Docker's short ID), or, where no
    ID is known, the one network whose outputs flowed into networkMode (the property holds that
    one string, so nothing else in it can have carried them). Otherwise it stays as written: a
    network this stack does not declare."""
    mode = network_mode_network(resource.props) if resource.type == CONTAINER else ""
    if not mode or mode in declared:
        return resource
    found = _network_with_id(mode, {n: known_text(r.props, "id") for n, r in declared.items()})
    if found is None:
        by_urn = {network.urn: name for name, network in declared.items()}
        flowed = {
            by_urn[u] for u in dict(resource.property_dependencies).get("networkMode", ())
            if u in by_urn
        }  # fmt: skip
        found = flowed.pop() if len(flowed) == 1 else None
    if found is None:
        return resource
    return dataclasses.replace(resource, props={**resource.props, "networkMode": found})


def _networks_by_name(
    resource: Resource, declared: Mapping[str, Resource], declared_as: Resource
) -> Resource:
    """The resource with a network it joins by ID (`network.id`, as pulumi-docker recommends
    for services) named by that network's name, so the rules that look networks up by name see
    it; or, where the records cannot tell, with the reason on `undecided_networks`.

    An entry equal to a network's `id` output, or to 12 or more of its leading hex digits
    (Docker's short ID), is that network, whatever computed it (an `apply` included). The
    records carry that output only where the engine hands the pack a resource's outputs: a
    stack policy under `pulumi up`, or a `pulumi stack export`'s `outputs`. Where every
    network's `id` is known, an ID-shaped entry that matches none is none of them.

    Otherwise (a first preview, a render, records of inputs), the pack never sees a
    network's ID, and the engine's
    property dependencies name only the top-level property a network's outputs flowed into
    (`networksAdvanced`; a service's whole `taskSpec`). So an entry naming no network of the
    stack is that network's ID only if nothing else in the property can have carried the
    network's outputs: its name or logical name as a word of a string (an alias, a service's
    env: a plain string and one that flowed in read the same), an ID-shaped string (Docker's
    64 hex digits, Swarm's 25 characters, a render's `<logical name>-id`: its ID in a task
    label), or an IP address from it
    (`ipv4Address` taken from its IPAM output: an address when it declares no subnet, else
    one inside its subnets). With as many such entries as networks that no other string can
    account for, those are the networks it joins (in name order: which entry is which cannot
    be told, what it joins can). What an `apply` made of the network's outputs is not
    visible then: a value computed from them is taken for the network's ID, as `network.id`
    is. Records without property dependencies (written by hand)
    tie no ID to a network: their `dependencies` also hold `depends_on`.
    `declared_as` is the resource as declared (a service's task spec, before its shaping).
    """
    entries = items(resource.props.get("networksAdvanced"), "networksAdvanced")
    names = [
        text(mapping(e, f"networksAdvanced[{i}]").get("name"), f"networksAdvanced[{i}].name") or ""
        for i, e in enumerate(entries)
    ]
    unresolved = [i for i, name in enumerate(names) if name and name not in declared]
    if not unresolved:
        return resource
    ids = {name: known_text(network.props, "id") for name, network in declared.items()}
    by_value = {i: _network_with_id(names[i], ids) for i in unresolved}
    matched = {i: name for i, name in by_value.items() if name}
    if matched:
        named = [dict(e) for e in entries]
        for index, name in matched.items():
            named[index]["name"] = name
        resource = dataclasses.replace(
            resource, props={**resource.props, "networksAdvanced": named}
        )
        entries, names = named, [str(e.get("name") or "") for e in named]
    every_id_known = all(ids.values())
    unresolved = [
        i
        for i in unresolved
        if i not in matched and not (every_id_known and _SHORT_ID.fullmatch(names[i]))
    ]
    if not unresolved:
        return resource
    by_urn = {network.urn: name for name, network in declared.items()}
    # A service's networks sit inside its task spec: the engine reports the top property.
    key = "taskSpec" if resource.type == SERVICE else "networksAdvanced"
    flowed = sorted(
        {by_urn[u] for u in dict(resource.property_dependencies).get(key, ()) if u in by_urn}
        - set(names)
    )
    joined_by = {names[i] for i in unresolved}
    others = [
        (path, value)
        for path, value in _leaves(declared_as.props.get(key), key)
        if value not in joined_by and not _NETWORK_ENTRY.search(path)
    ]
    carried = {name: _carriers(declared[name], others) for name in flowed}
    candidates = [name for name in flowed if not carried[name]]
    if len(unresolved) == len(candidates):
        resolved = [dict(e) for e in entries]
        for index, name in zip(unresolved, candidates, strict=True):
            resolved[index]["name"] = name
        return dataclasses.replace(resource, props={**resource.props, "networksAdvanced": resolved})
    if not flowed:
        return resource
    why = "; ".join(
        f"{label(declared[name], 'network')}'s outputs flowed into {key}"
        + (f", but {carried[name][0]} may hold them instead" if carried[name] else "")
        for name in flowed
    )
    fix = (
        f" Join it by name (the network's `name` output), or keep the network's outputs and "
        f"name out of the rest of {key}."
    )
    notes = tuple((names[i], f"one of these networks' ID: {why}.{fix}") for i in unresolved)
    return dataclasses.replace(resource, undecided_networks=notes)


_SHORT_ID: Final = re.compile(r"[0-9a-f]{12,64}")


def _network_with_id(entry: str, ids: Mapping[str, str]) -> str | None:
    """The network whose `id` output `entry` is, in full or as Docker's short ID."""
    found = [
        name
        for name, network_id in ids.items()
        if network_id
        and (entry == network_id or (_SHORT_ID.fullmatch(entry) and network_id.startswith(entry)))
    ]
    return found[0] if len(found) == 1 else None


def undecided_network(resource: Resource, entry: str) -> str | None:
    """Why the pack cannot tell which network of the stack `entry` is, if that is so."""
    return dict(resource.undecided_networks).get(entry)


# Where an entry names the network it joins; other strings of the property may carry a
# network's outputs too. A Swarm config's or secret's ID sits in configId/secretId: a network
# ID there fails the deployment, so those never account for a network.
_NETWORK_ENTRY: Final = re.compile(
    r"networksAdvanceds?\[\d+\]\.(name|id)$|networks\[\d+\]$|\.(configId|secretId)$"
)
_ID_SHAPED: Final = re.compile(r"[0-9a-f]{64}|[0-9a-z]{25}")


def _carriers(network: Resource, others: Sequence[tuple[str, str]]) -> list[str]:
    """Where the rest of a property may hold this network's outputs (see _networks_by_name)."""
    named = [
        re.compile(rf"(?<![\w-]){re.escape(n)}(?![\w-])")
        for n in {network.name, known_text(network.props, "name")}
        if n
    ]
    # The ID infra/mock_engine.py gives a network in a render (`policies.check --stack`).
    rendered_id = f"{network.name}-id"
    subnets = []
    for index, ipam in enumerate(items(network.props.get("ipamConfigs"), "ipamConfigs")):
        where = f"ipamConfigs[{index}]"
        try:
            subnet = text(mapping(ipam, where).get("subnet"), f"{where}.subnet") or ""
            subnets.append(ipaddress.ip_network(subnet, False))
        except ValueError:
            continue
    found = []
    for path, value in others:
        address = _address(value)
        if (
            any(n.search(value) for n in named)
            or _ID_SHAPED.fullmatch(value)
            or rendered_id in value
            or (address is not None and (not subnets or any(address in s for s in subnets)))
        ):
            found.append(f"{path} ({value!r})")
    return found


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_interface(value).ip
    except ValueError:
        return None


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a property value with its path, at any depth (under the engine, props
    are pulumi_policy's Mapping/Sequence proxies: policies/rules/_props.py)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")


def _networks(task: Mapping[str, Any]) -> list[dict[str, Any]]:
    """pulumi-docker v4 `networksAdvanceds` ({name, aliases}; v5 prefers `id`, the network's
    ID, which stands in the name's place until _networks_by_name resolves it) or v3 `networks`
    (names)."""
    advanced = []
    for index, entry in enumerate(items(task.get("networksAdvanceds"), "networksAdvanceds")):
        where = f"taskSpec.networksAdvanceds[{index}]"
        network = dict(mapping(entry, where))
        text(network.get("name"), f"{where}.name")
        text(network.get("id"), f"{where}.id")
        if not network.get("name") and network.get("id"):
            network["name"] = network["id"]
        advanced.append(network)
    plain = [{"name": name} for name in strings(task.get("networks"), "taskSpec.networks")]
    return advanced + plain
