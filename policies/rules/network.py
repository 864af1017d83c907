"""Network exposure and isolation: host namespaces, bridges, published ports, drivers, the API.

Resource rules judge one container, network or provider; stack rules join containers to the
networks this stack declares (docs/security-catalog.md, NET).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from policies.rules._model import (
    ADVISORY,
    CONTAINER,
    DOCKER_PROVIDER,
    NETWORK,
    SERVICE,
    Resource,
    ResourceRule,
    StackRule,
    Violation,
)
from policies.rules._props import (
    argv_words,
    entries,
    flag,
    items,
    known_text,
    label,
    mapping,
    names_per_stack,
    number,
    of_type,
    reading,
    redis_label,
    stack_token_in,
    strings,
    text,
    text_at,
)
from policies.rules._redisconf import (
    RedisServer,
    aliases,
    namespace_owner,
    network_names,
    redis_servers,
)
from policies.rules._service_shape import (
    network_mode_network,
    task_containers,
    undecided_network,
)
from policies.rules.clients import is_redis_client

_DEFAULT_BRIDGE_MODES: Final = frozenset({"", "bridge", "default"})
_EDGE_PORTS: Final = frozenset({80.0, 443.0})


def no_host_network(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if text(resource.props.get("networkMode"), "networkMode") == "host":
        yield (
            f"{label(resource)} must not set networkMode to host; it shares the host's network "
            f"stack (CIS Docker 5.10)."
        )


def user_defined_network(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    mode = text(resource.props.get("networkMode"), "networkMode") or ""
    if not network_names(resource.props) and mode in _DEFAULT_BRIDGE_MODES:
        yield (
            f"{label(resource)} must join a user-defined network (networksAdvanced) or set "
            f"networkMode none; it is on Docker's default bridge (CIS Docker 5.30)."
        )


def ports_bound_to_interface(
    resource: Resource, _config: Mapping[str, Any], default_ip: str = ""
) -> Iterator[str]:
    """`default_ip`: where Docker binds a port given no `ip` (ports_bound_in_stack)."""
    for index, port in enumerate(items(resource.props.get("ports"), "ports")):
        entry = mapping(port, f"ports[{index}]")
        ip = text(entry.get("ip"), f"ports[{index}].ip")
        if number(entry.get("external"), f"ports[{index}].external") in _EDGE_PORTS:
            continue  # an edge (HTTP/HTTPS) listener is meant to be reachable from outside
        if _every_interface(default_ip if ip is None else ip):
            yield (
                f"{label(resource)} must bind ports[{index}] to a specific host address "
                f"(ip: 127.0.0.1); it listens on every interface (CIS Docker 5.14)."
            )


def _every_interface(address: str) -> bool:
    """Whether a port published on this host address listens on every interface: no address,
    or the unspecified one however it is spelled (0.0.0.0, ::, [::], ::0, 0:0:0:0:0:0:0:0,
    ::ffff:0.0.0.0; Go's net.IP.IsUnspecified is true for each, and Docker binds them all
    as the unspecified address)."""
    value = address.strip().removeprefix("[").removesuffix("]")
    if not value:
        return True
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False  # Docker refuses to create the container ("invalid IP address")
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_unspecified or (mapped is not None and mapped.is_unspecified)


# A bridge network's address for ports published with none (Docker's port-publishing docs:
# the option is the default bind address of a user-defined bridge network).
_HOST_BINDING: Final = "com.docker.network.bridge.host_binding_ipv4"


def ports_bound_in_stack(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[Violation]:
    """ports_bound_to_interface for each container, where a port with no `ip` binds to the
    address every network it joins gives by default (it publishes through one of them, which
    one is Docker's choice); a network of another stack, the default bridge (the daemon's
    `--ip`), a networkMode or one network without the option: every interface."""
    declared = _declared_networks(resources)
    for container in of_type(resources, CONTAINER):
        with reading(container):
            joined = [declared.get(name) for name in network_names(container.props)]
            mode = text(container.props.get("networkMode"), "networkMode") or ""
            defaults = {_default_binding(n) for n in joined}
            # networkMode bridge or default beside networks puts the container on the default
            # bridge too, whose default the stack does not show: every interface. A network
            # networkMode names is among `joined`.
            one = (
                joined
                and len(defaults) == 1
                and (not mode or network_mode_network(container.props) == mode)
            )
            default_ip = defaults.pop() if one else ""
            for message in ports_bound_to_interface(container, config, default_ip):
                yield Violation(message, container.urn)


def _default_binding(network: Resource | None) -> str:
    if network is None:
        return ""
    with reading(network):
        options = mapping(network.props.get("options"), "options")
        return text(options.get(_HOST_BINDING), f"options[{_HOST_BINDING}]") or ""


def redis_no_published_port(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    containers: Sequence[Resource] | None = None
    for server in redis_servers(resources):
        props = server.resource.props
        with reading(server.resource):
            if server.resource.type == SERVICE:
                published, where = bool(items(props.get("ports"), "ports")), "(endpointSpec.ports)"
            else:
                published = bool(items(props.get("ports"), "ports")) or (
                    flag(props.get("publishAllPorts"), "publishAllPorts") is True
                )
                where = "to the Docker host"
        through = ""
        if not published and server.resource.type != SERVICE:
            containers = containers if containers is not None else task_containers(resources)
            through = _published_by_namespace_owner(server, containers)
        if published or through:
            yield Violation(
                f"{redis_label(server.resource, sentinel=server.sentinel)} must not publish ports "
                f"{where}; "
                f"clients reach it over an internal network.{through}",
                server.resource.urn,
            )


def _published_by_namespace_owner(server: RedisServer, containers: Sequence[Resource]) -> str:
    """Where a Redis server sharing another container's network namespace (`networkMode
    container:web`) is published by that container: a port it publishes that Redis listens
    on is Redis's (Docker publishes the namespace's port, whoever listens). "" otherwise."""
    owner = namespace_owner(server.resource, containers)
    if owner is None:
        return ""
    # Its ports as far as known; an unknown `port` may be Redis's default, 6379.
    s = server.settings
    listening = set() if s.known("port") else {6379.0}
    for name, default in (("port", "6379"), ("tls-port", "")):
        value = (s.value(name) or default) if s.known(name) else ""
        if value.isdigit() and int(value):
            listening.add(float(value))
    with reading(owner):
        ports = [
            number(port.get("internal"), f"{where}.internal")
            for where, port in entries(owner.props, "ports")
        ]
        everything = flag(owner.props.get("publishAllPorts"), "publishAllPorts") is True
    mine = sorted({int(p) for p in ports if p in listening})
    if not mine and not everything:
        return ""
    what = (
        f"publishes its port{'s' if len(mine) > 1 else ''} {', '.join(map(str, mine))}"
        if mine
        else "publishes all its ports (publishAllPorts)"
    )
    mode = text(server.resource.props.get("networkMode"), "networkMode")
    return (
        f" It listens in the network namespace of {label(owner).lower()} "
        f"(networkMode {mode}), which {what}."
    )


def no_unneeded_ports(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    if flag(props.get("publishAllPorts"), "publishAllPorts") is True:
        yield (
            f"{label(resource)} must not set publishAllPorts; publish only the ports it needs "
            f"(CIS Docker 5.9)."
        )
    if any(number(p.get("internal"), f"{w}.internal") == 22 for w, p in entries(props, "ports")):
        yield f"{label(resource)} must not publish SSH port 22 (CIS Docker 5.7)."
    if any(w.rsplit("/", 1)[-1] == "sshd" for w in argv_words(props)):
        yield f"{label(resource)} must not run sshd; use docker exec (CIS Docker 5.7)."


def unprivileged_host_ports(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    for where, port in entries(resource.props, "ports"):
        external = number(port.get("external"), f"{where}.external")
        if external is not None and 0 < external < 1024:
            yield (
                f"{label(resource)} should publish {where} on a host port of 1024 or "
                f"above (CIS Docker 5.8)."
            )


def driver_isolated(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    driver = (text(resource.props.get("driver"), "driver") or "bridge").lower()
    if driver in ("host", "macvlan", "ipvlan"):
        yield (
            f"{label(resource)} must use the bridge driver; host, macvlan and ipvlan expose "
            f"containers on the host's network."
        )
    if resource.props.get("ingress") is True:
        yield f"{label(resource)} must not be a swarm ingress network (set ingress false)."


def driver_not_attachable(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    driver = (text(resource.props.get("driver"), "driver") or "bridge").lower()
    if driver == "overlay" or resource.props.get("attachable") is True:
        yield (
            f"{label(resource)} should not be an attachable or overlay network; any swarm "
            f"container could join it."
        )


def docker_api_authenticated(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    host = (text(props.get("host"), "host") or "").lower()
    if not host.startswith(("tcp://", "http://")):
        return
    has_tls = bool(text(props.get("certPath"), "certPath")) or all(
        text(props.get(k), k) for k in ("caMaterial", "certMaterial", "keyMaterial")
    )
    if not has_tls:
        yield (
            f"Docker provider {resource.name} must reach a tcp:// Docker host with TLS client "
            f"certificates (certPath, or caMaterial, certMaterial and keyMaterial), or use "
            f"unix:// or ssh://; the Engine API is unauthenticated (CIS Docker 2.7)."
        )


def _declared_networks(resources: Sequence[Resource]) -> dict[str, Resource]:
    declared: dict[str, Resource] = {}
    for network in of_type(resources, NETWORK):
        declared[text(network.props.get("name"), "name") or network.name] = network
    return declared


def redis_internal_only(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    declared = _declared_networks(resources)
    for server in redis_servers(resources):
        resource = server.resource
        subject = redis_label(resource, sentinel=server.sentinel)
        service = resource.type == SERVICE
        with reading(resource):
            mode = text(resource.props.get("networkMode"), "networkMode") or ""
            names = network_names(resource.props)
        if service:
            yield from _service_outside_stack_networks(resource, subject, names, mode)
        elif (
            mode == "host"
            or mode.startswith("container:")
            or (not names and mode in _DEFAULT_BRIDGE_MODES)
        ):
            if mode == "host":
                where = "it is on the host's network (networkMode host)"
            elif mode.startswith("container:"):
                where = f"it shares the network of another container (networkMode {mode})"
            else:
                where = "it is on Docker's default bridge network"
            yield Violation(
                f"{subject} must attach only to internal networks of "
                f"this stack (networksAdvanced); {where}.",
                resource.urn,
            )
        for index, name in enumerate(names):
            network = declared.get(name)
            if service and name == "host":
                continue  # Swarm's predefined host network: reported above as the host's
            if network is None and (note := undecided_network(resource, name)):
                yield Violation(
                    f"{subject} must attach only to networks this stack "
                    f"declares with internal: true; the pack cannot tell whether "
                    f"{_which(resource, index, name, value=True)} is {note}",
                    resource.urn,
                )
            elif network is None:
                which = _which(resource, index, name)
                yield Violation(
                    f"{subject} must attach only to networks this stack "
                    f"declares with internal: true; {which} is not declared here, so it cannot "
                    f"be verified{_as_an_id(name, declared)}. Declare it in this stack with "
                    f"internal: true and join it by its name output.",
                    resource.urn,
                )
            elif not _internal(network):
                yield Violation(
                    f"{label(network)} must set internal: true, because "
                    f"{subject} joins it; it has a route to other networks.",
                    network.urn,
                )


def _which(resource: Resource, index: int, name: str, *, value: bool = False) -> str:
    """Where a container names a network: its networksAdvanced entry, its networkMode (the
    last of network_names), or the network's name when the index would be ambiguous (a
    service's v4 networksAdvanceds and v3 networks, a container's v3 networks)."""
    if (
        resource.type != SERVICE
        and name == network_mode_network(resource.props)
        and index == len(network_names(resource.props)) - 1
    ):
        return f"networkMode ({name!r})"
    if resource.type == SERVICE or "networks" in resource.props:
        return f"its network {name!r}"
    return f"networksAdvanced[{index}] ({name!r})" if value else f"networksAdvanced[{index}]"


def _as_an_id(entry: str, declared: Mapping[str, Resource]) -> str:
    """Why an entry that looks like a Docker network ID is none of the stack's networks."""
    if not re.fullmatch(r"[0-9a-f]{12,64}", entry):
        return ""
    if declared and all(known_text(n.props, "id") for n in declared.values()):
        return " (an ID that is no network's id output in this stack)"
    return (
        " (an ID: the pack ties one to a network of this stack by that network's id output, "
        "or by that network's outputs flowing into the property, and the records show "
        "neither)"
    )


def _internal(network: Resource) -> bool:
    with reading(network):
        return flag(network.props.get("internal"), "internal") is True


def _service_outside_stack_networks(
    service: Resource, subject: str, names: list[str], mode: str
) -> Iterator[Violation]:
    """A Redis service on no network, or on Swarm's predefined host network.

    A service has no network mode: with no network its tasks run on each node's default
    bridge, and on the swarm-wide ingress network when it publishes a port; the predefined
    `host` network is the node's own network stack (docs/security-catalog.md, NET-01, NET-02).
    """
    where = ""
    if not names:
        where = (
            "it joins none, so Swarm runs its tasks on each node's default bridge network, and "
            "on the ingress network if it publishes a port"
        )
    elif mode == "host":
        where = "it joins Swarm's predefined host network, the node's own network stack"
    if where:
        yield Violation(
            f"{subject} must join internal networks of this stack "
            f"(taskSpec.networksAdvanceds); {where}.",
            service.urn,
        )


def stack_network_scoped(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[Violation]:
    declared = _declared_networks(resources)
    allowed = [
        _network(s) for s in strings(config.get("allowedSubnets"), "policy config allowedSubnets")
    ]
    per_stack = names_per_stack(resources)
    for name, network in declared.items():
        stack = network.stack
        if per_stack and stack and not stack_token_in(name, stack):
            yield Violation(
                f"{label(network)} must carry the stack name in its Docker name so stacks never "
                f"share a network.",
                network.urn,
            )
        for index, (where, ipam) in enumerate(entries(network.props, "ipamConfigs")):
            subnet = _network(text_at(ipam, where, "subnet") or "")
            allowed_here = subnet is not None and any(
                a is not None and subnet.version == a.version and subnet.subnet_of(a)  # type: ignore[arg-type]
                for a in allowed
            )
            if allowed and not allowed_here:
                yield Violation(
                    f"{label(network)} must take ipamConfigs[{index}].subnet from this stack's "
                    f"allowedSubnets so stacks never overlap.",
                    network.urn,
                )
    for container in task_containers(resources):
        for index, name in enumerate(network_names(container.props)):
            if name in declared or (container.type == SERVICE and name == "host"):
                continue
            which = _which(container, index, name)
            if note := undecided_network(container, name):
                entry = _which(container, index, name, value=True)
                yield Violation(
                    f"{label(container)} must join only networks this stack declares; the "
                    f"pack cannot tell whether {entry} is {note}",
                    container.urn,
                )
            else:
                yield Violation(
                    f"{label(container)} must join only networks this stack declares; "
                    f"{which} belongs to something else{_as_an_id(name, declared)}. Declare "
                    f"the network in this stack and join it by its name output.",
                    container.urn,
                )


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def redis_network_dedicated(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    servers = redis_servers(resources)
    redis_networks = {n for s in servers for n in network_names(s.resource.props)}
    server_urns = {s.resource.urn for s in servers}
    hosts = {h.lower() for s in servers for h in aliases(s.resource.props)}
    for container in task_containers(resources):
        if container.urn in server_urns or is_redis_client(container.props, hosts):
            continue
        if redis_networks & set(network_names(container.props)):
            yield Violation(
                f"{label(container)} should not join a Redis server's network; it is neither "
                f"Redis nor a Redis client (CIS Docker 2.2).",
                container.urn,
            )


RULES: Final = (
    ResourceRule(
        name="network-container-no-host-network",
        description="Containers do not share the host's network namespace.",
        resource_types=(CONTAINER,),
        check=no_host_network,
        refs=("NET-01", "cis-docker-5.10"),
    ),
    ResourceRule(
        name="network-container-user-defined-network",
        description="Containers join user-defined networks, not Docker's default bridge.",
        resource_types=(CONTAINER,),
        check=user_defined_network,
        refs=("NET-02", "cis-docker-5.30"),
    ),
    StackRule(
        name="network-port-bound-to-interface",
        description="Published ports are bound to a specific host address.",
        check=ports_bound_in_stack,
        refs=("NET-03", "cis-docker-5.14"),
    ),
    StackRule(
        name="network-redis-no-published-port",
        description="Redis servers publish no port to the Docker host.",
        check=redis_no_published_port,
        refs=("NET-04",),
    ),
    ResourceRule(
        name="network-container-no-unneeded-ports",
        description="Containers publish only needed ports and run no SSH daemon.",
        resource_types=(CONTAINER,),
        check=no_unneeded_ports,
        refs=("NET-05", "cis-docker-5.9", "cis-docker-5.7"),
    ),
    ResourceRule(
        name="network-port-unprivileged",
        description="Published host ports are unprivileged (1024 and above).",
        resource_types=(CONTAINER,),
        check=unprivileged_host_ports,
        refs=("NET-06", "cis-docker-5.8"),
        enforcement=ADVISORY,
    ),
    ResourceRule(
        name="network-driver-isolated",
        description="Networks use an isolating driver and are not swarm ingress networks.",
        resource_types=(NETWORK,),
        check=driver_isolated,
        refs=("NET-08", "cis-docker-5.10"),
    ),
    ResourceRule(
        name="network-driver-not-attachable",
        description="Networks are neither overlay nor attachable.",
        resource_types=(NETWORK,),
        check=driver_not_attachable,
        refs=("NET-08",),
        enforcement=ADVISORY,
    ),
    ResourceRule(
        name="network-docker-api-authenticated",
        description="The Docker provider reaches the Engine API over an authenticated channel.",
        resource_types=(DOCKER_PROVIDER,),
        check=docker_api_authenticated,
        refs=("NET-11", "cis-docker-2.7"),
    ),
    StackRule(
        name="network-redis-internal-only",
        description="Redis servers are reachable only through internal networks of their stack.",
        check=redis_internal_only,
        refs=("NET-07", "NET-02", "NET-01"),
    ),
    StackRule(
        name="stack-network-scoped",
        description="Networks belong to one stack: stack-named, declared here, on allowed subnets.",
        check=stack_network_scoped,
        refs=("NET-09",),
        config_schema={
            "allowedSubnets": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "CIDRs this stack's networks may use; empty: any.",
            }
        },
    ),
    StackRule(
        name="network-redis-network-dedicated",
        description="Only Redis and its clients share a Redis server's network.",
        check=redis_network_dedicated,
        refs=("NET-10", "cis-docker-2.2"),
        enforcement=ADVISORY,
    ),
)
