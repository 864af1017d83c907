"""Security model 3 (network): Redis only on the internal backend network, nothing of it on the
host, and unreachable from an unrelated network (P-11). The app's HTTP port is on loopback only.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from infra.firewall import bridge_name
from tests.e2e import appclient
from tests.e2e.hosts import container_host, local_host
from tests.e2e.probes import app_image, hardened, image_user, probe_labels, run_once
from tests.e2e.stacks import PROBE_LABEL, Stack

pytestmark = pytest.mark.security("network")


@pytest.fixture(scope="module")
def inspected(stack: Stack, docker_client: docker.DockerClient) -> dict[str, dict[str, Any]]:
    return {r: docker_client.api.inspect_container(stack.object(r)) for r in ("redis", "app")}


def redis_ip(inspected: dict[str, dict[str, Any]], stack: Stack) -> str:
    return str(inspected["redis"]["NetworkSettings"]["Networks"][stack.backend]["IPAddress"])


def test_network__redis_publishes_no_port(inspected: dict[str, dict[str, Any]]) -> None:
    assert not inspected["redis"]["HostConfig"].get("PortBindings")
    assert not inspected["redis"]["HostConfig"]["PublishAllPorts"]
    ports = inspected["redis"]["NetworkSettings"].get("Ports") or {}
    assert all(binding is None for binding in ports.values()), f"host bindings: {ports}"


def test_network__redis_is_only_on_the_internal_backend(
    stack: Stack, inspected: dict[str, dict[str, Any]], docker_client: docker.DockerClient
) -> None:
    assert set(inspected["redis"]["NetworkSettings"]["Networks"]) == {stack.backend}
    assert docker_client.api.inspect_network(stack.backend)["Internal"] is True


def test_network__app_joins_backend_and_frontend_only(
    stack: Stack, inspected: dict[str, dict[str, Any]]
) -> None:
    assert set(inspected["app"]["NetworkSettings"]["Networks"]) == {stack.backend, stack.frontend}


def test_network__app_port_is_bound_to_loopback_only(
    stack: Stack, inspected: dict[str, dict[str, Any]], docker_client: docker.DockerClient
) -> None:
    bindings = inspected["app"]["HostConfig"]["PortBindings"]
    assert bindings == {
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(stack.settings.app_host_port)}]
    }
    options = docker_client.api.inspect_network(stack.frontend)["Options"]
    assert options.get("com.docker.network.bridge.host_binding_ipv4") == "127.0.0.1"


def test_network__host_has_no_listener_on_the_redis_port(stack: Stack) -> None:
    port = stack.settings.redis_port
    listening = [s for s in local_host().socket.get_listening_sockets() if s.endswith(f":{port}")]
    assert listening == [], f"something listens on the host on {port}: {listening}"


def test_network__host_loopback_cannot_reach_redis(stack: Stack) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", stack.settings.redis_port), timeout=2).close()


def test_network__app_listens_on_host_loopback_only(stack: Stack) -> None:
    port = stack.settings.app_host_port
    listening = [s for s in local_host().socket.get_listening_sockets() if s.endswith(f":{port}")]
    assert listening, f"the app's port {port} is not listening on the host"
    assert all(s.startswith("tcp://127.0.0.1:") for s in listening), listening


def test_network__from_the_host_over_the_bridge_plaintext_is_refused(
    stack: Stack, inspected: dict[str, dict[str, Any]], docker_client: docker.DockerClient
) -> None:
    """The Docker host has an address on every bridge it runs, so root on it can open a TCP
    connection to Redis; what it gets there is TLS with client certificates, not RESP."""
    ip = redis_ip(inspected, stack)
    route = subprocess.run(["ip", "route", "get", ip], capture_output=True, text=True, check=False)
    network = docker_client.api.inspect_network(stack.backend)
    backend = bridge_name(network["Id"], network.get("Options") or {})
    if f" dev {backend} " not in route.stdout:
        pytest.skip(f"no route to {ip} over a local bridge (would leave this host): never probed")
    with socket.create_connection((ip, stack.settings.redis_port), timeout=3) as conn:
        conn.sendall(b"*1\r\n$4\r\nPING\r\n")
        try:
            reply = conn.recv(64)
        except ConnectionResetError:
            reply = b""
    assert b"PONG" not in reply


def test_network__redis_routes_only_into_its_internal_bridge(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """Docker still gives an internal bridge a gateway (the host's leg on it); what keeps
    Redis in is that the engine drops every packet leaving the bridge for another subnet."""
    network = docker_client.api.inspect_network(stack.backend)
    subnet = ipaddress.ip_network(network["IPAM"]["Config"][0]["Subnet"])
    routes = container_host(stack.redis).file("/proc/net/route").content_string.splitlines()[1:]
    for route in routes:
        iface, _dest, gateway = route.split()[:3]
        assert iface == "eth0", f"Redis has a second interface: {iface}"
        gw = ipaddress.ip_address(bytes(reversed(bytes.fromhex(gateway))))
        assert gw == ipaddress.ip_address("0.0.0.0") or gw in subnet, f"gateway {gw}"
    rules = subprocess.run(
        ["iptables", "-S", "DOCKER-ISOLATION-STAGE-1"], capture_output=True, text=True, check=False
    )
    if rules.returncode != 0:
        pytest.skip(f"cannot read the engine's iptables rules here: {rules.stderr.strip()}")
    bridge = bridge_name(network["Id"], network.get("Options") or {})
    assert f"-A DOCKER-ISOLATION-STAGE-1 ! -d {subnet} -i {bridge} -j DROP" in rules.stdout


@pytest.fixture(scope="module")
def unrelated_network(docker_client: docker.DockerClient) -> Iterator[str]:
    """An ordinary (not internal) bridge network: nothing but Docker's isolation of the stack's
    own networks stands between a container on it and Redis."""
    name = f"secure-redis-e2e-unrelated-{uuid.uuid4().hex[:8]}"
    network = docker_client.networks.create(
        name, driver="bridge", internal=False, labels={PROBE_LABEL: "unrelated"}
    )
    try:
        yield name
    finally:
        network.remove()


_LISTENER = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(8)
print("listening", flush=True)
while True:
    server.accept()[0].close()
"""


@pytest.fixture(scope="module")
def unrelated_listener(
    stack: Stack, docker_client: docker.DockerClient, unrelated_network: str
) -> Iterator[str]:
    """A throwaway TCP listener on the unrelated network, on Redis' port: its address."""
    container = docker_client.containers.run(
        app_image(docker_client, stack),
        entrypoint=["python3", "-c", _LISTENER, str(stack.settings.redis_port)],
        name=f"secure-redis-e2e-listener-{uuid.uuid4().hex[:8]}",
        detach=True,
        network=unrelated_network,
        labels=probe_labels("unrelated-listener"),
        **hardened(image_user(docker_client, app_image(docker_client, stack))),
    )
    try:

        def listening() -> bool:
            container.reload()
            assert container.status in ("created", "running"), f"listener {container.status}"
            return b"listening" in container.logs()

        appclient.wait_for("the unrelated network's listener", listening, 30)
        container.reload()
        yield str(container.attrs["NetworkSettings"]["Networks"][unrelated_network]["IPAddress"])
    finally:
        container.remove(force=True)


def test_network__unrelated_network_is_an_ordinary_bridge(
    docker_client: docker.DockerClient, unrelated_network: str
) -> None:
    """Not internal: the probe there may route off its subnet, so isolation is the engine's."""
    network = docker_client.api.inspect_network(unrelated_network)
    assert (network["Driver"], network["Internal"]) == ("bridge", False)


def test_network__positive_control_unrelated_probe_connects_to_a_listener(
    stack: Stack,
    docker_client: docker.DockerClient,
    unrelated_network: str,
    unrelated_listener: str,
) -> None:
    """The same one-shot probe, on the same network and port, does connect to something that
    is reachable: the refusal below is the stack's isolation, not the probe's inability."""
    result = run_once(
        docker_client,
        app_image(docker_client, stack),
        unrelated_network,
        "connect",
        host=unrelated_listener,
        port=stack.settings.redis_port,
    )
    assert result["connected"] is True, f"the probe could not connect at all: {result['error']}"


@pytest.mark.parametrize("name", ["redis", "{redis}", "{app}"])
def test_network__unrelated_network_cannot_resolve_the_stack(
    stack: Stack, docker_client: docker.DockerClient, unrelated_network: str, name: str
) -> None:
    target = name.format(redis=stack.redis, app=stack.app)
    result = run_once(
        docker_client, app_image(docker_client, stack), unrelated_network, "resolve", name=target
    )
    assert result["addresses"] == [], f"{target} resolved from an unrelated network"


def test_network__positive_control_unrelated_network_resolves_its_own_container(
    stack: Stack,
    docker_client: docker.DockerClient,
    unrelated_network: str,
    unrelated_listener: str,
) -> None:
    """The same lookup finds a container that is on the unrelated network."""
    (listener,) = docker_client.containers.list(
        filters={"network": unrelated_network, "label": f"{PROBE_LABEL}=unrelated-listener"}
    )
    result = run_once(
        docker_client,
        app_image(docker_client, stack),
        unrelated_network,
        "resolve",
        name=listener.name,
    )
    assert result["addresses"] == [unrelated_listener]


def test_network__unrelated_network_cannot_connect_to_redis(
    stack: Stack,
    inspected: dict[str, dict[str, Any]],
    docker_client: docker.DockerClient,
    unrelated_network: str,
) -> None:
    ip = redis_ip(inspected, stack)
    assert ipaddress.ip_address(ip).is_private  # the stack's own bridge, nothing else
    result = run_once(
        docker_client,
        app_image(docker_client, stack),
        unrelated_network,
        "connect",
        host=ip,
        port=stack.settings.redis_port,
    )
    assert result["connected"] is False, f"a container on an unrelated network reached {ip}"
