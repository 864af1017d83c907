"""An outsider's first tries against the deployed stack's newer surfaces: the Redis exporter's
/metrics on the frontend network (app/secure_cache/redis_exporter.py).

Each test is one attack, run from a throwaway probe container on the stack's frontend network
(tests/e2e/probes.py), the network the app and the exporter share; the behaviour behind each
fix is also shown without Docker in tests/unit/test_metrics_server.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import docker
import pytest
from docker.errors import APIError

from infra.components.exporter import EXPORTER_NPROC, EXPORTER_PORT, exporter_healthcheck_test
from infra.docker_exec import exec_run
from infra.naming import APP_HTTP_PORT
from tests.e2e.probes import ProbeContainer, app_image
from tests.e2e.stacks import Stack

pytestmark = pytest.mark.security("operations")

# More idle connections than the exporter's whole nproc budget (threads of its uid).
SLOWLORIS_CONNECTIONS: Final = EXPORTER_NPROC + 36
HOLD_S: Final = 8.0
# When the health check runs: well after the probe opened its connections, well before it
# lets them go (opening 100 connections on a bridge takes milliseconds).
HEALTHCHECK_AFTER_S: Final = 4.0


@pytest.fixture
def frontend_probe(stack: Stack, docker_client: docker.DockerClient) -> Iterator[ProbeContainer]:
    container = ProbeContainer(
        docker_client,
        app_image(docker_client, stack),
        network=stack.frontend,
        mounts={},
        purpose=f"{stack.name}-frontend-attack",
    )
    yield container
    container.remove()


def _exporter_healthcheck(client: docker.DockerClient, stack: Stack) -> tuple[int | None, str]:
    """The exporter container's own health check, run now (exit code, output)."""
    container = client.containers.get(stack.exporter)
    try:
        result = exec_run(container, exporter_healthcheck_test()[1:])
    except APIError as exc:  # the engine could not even start the process
        return 126, str(exc)
    return result.exit_code, result.output.decode(errors="replace")


# A fault test (after the checks of the undisturbed stacks; beside the other stack's fault
# tests, never beside another test of this stack: scripts/test.sh). The held connections
# come from one address, which holds at most 4 of the exporter's 8 slots; each one past that
# closes the oldest idle one of its address (app/secure_cache/metrics_server.py), so the
# probe opens all of them. Before, a full cap refused every other client, and a Prometheus
# scraping every 3 s with `for: 2s` (tests/e2e/test_e2e_monitoring.py) could read up == 0.
@pytest.mark.fault
def test_attack__idle_connections_to_the_exporter_leave_it_healthy_and_quiet(
    stack: Stack, docker_client: docker.DockerClient, frontend_probe: ProbeContainer
) -> None:
    """Slowloris from the frontend network: connections that never send a request. Before,
    each held a server thread forever, so the exporter's uid ran out of its nproc budget: no
    new thread for a scrape, no process for its health check, a traceback per refused
    connection in its log."""
    since = int(time.time())
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(
            frontend_probe.run,
            "hold_connections",
            host=stack.exporter,
            port=EXPORTER_PORT,
            count=SLOWLORIS_CONNECTIONS,
            seconds=HOLD_S,
        )
        time.sleep(HEALTHCHECK_AFTER_S)
        code, output = _exporter_healthcheck(docker_client, stack)
        attack = held.result()
    assert attack["opened"] == SLOWLORIS_CONNECTIONS, f"positive control: {attack}"
    assert code == 0, f"the exporter's health check failed under the attack: {output[-300:]}"
    logs = docker_client.containers.get(stack.exporter).logs(since=since).decode(errors="replace")
    assert "Traceback" not in logs, logs[-1000:]


def test_attack__the_exporters_port_is_closed_to_the_backend_network(
    stack: Stack,
    docker_client: docker.DockerClient,
    probe: ProbeContainer,
    frontend_probe: ProbeContainer,
) -> None:
    """A container on the backend network alone (Redis, a reload job, the rotation pass) read
    the exporter's /metrics and could hold its connection slots from Prometheus (TargetDown)
    while it listened on 0.0.0.0. It listens on its frontend address only: at its backend
    address nothing listens, and the frontend address has no route from the backend."""
    networks = docker_client.api.inspect_container(stack.exporter)["NetworkSettings"]["Networks"]
    addresses = {name: str(networks[name]["IPAddress"]) for name in (stack.backend, stack.frontend)}
    from_backend = {
        name: probe.run("connect", host=address, port=EXPORTER_PORT)
        for name, address in addresses.items()
    }
    by_name = probe.run("connect", host=stack.exporter, port=EXPORTER_PORT)
    from_frontend = frontend_probe.run("connect", host=stack.exporter, port=EXPORTER_PORT)
    assert from_frontend["connected"], f"positive control (Prometheus's side): {from_frontend}"
    assert not any(r["connected"] for r in (*from_backend.values(), by_name)), (
        f"the exporter's port is reachable from the backend network: {from_backend} {by_name}"
    )


def test_attack__the_apps_port_is_closed_to_the_backend_network(
    stack: Stack,
    docker_client: docker.DockerClient,
    probe: ProbeContainer,
    frontend_probe: ProbeContainer,
) -> None:
    """The app listened on 0.0.0.0, so a container on the backend network alone (Redis, a
    reload job, the rotation pass, or anything else attached there) reached its HTTP API at
    its backend address and by its name: /healthz without the token, and the 400 connection
    slots the host's clients and Prometheus share (attack pass of 2026-12-03 on s92). It
    listens on its frontend address and on loopback (its health check) only."""
    networks = docker_client.api.inspect_container(stack.app)["NetworkSettings"]["Networks"]
    addresses = {name: str(networks[name]["IPAddress"]) for name in (stack.backend, stack.frontend)}
    from_backend = {
        name: probe.run("connect", host=address, port=APP_HTTP_PORT)
        for name, address in addresses.items()
    }
    by_name = probe.run("connect", host=stack.app, port=APP_HTTP_PORT)
    from_frontend = frontend_probe.run("connect", host=stack.app, port=APP_HTTP_PORT)
    assert from_frontend["connected"], f"positive control (Prometheus's side): {from_frontend}"
    assert not any(r["connected"] for r in (*from_backend.values(), by_name)), (
        f"the app's port is reachable from the backend network: {from_backend} {by_name}"
    )
