"""A connection flood from the backend network against the deployed Redis (maxclients), and
connection names, which held memory outside every client limit (HELLO renamed away).

Every connection Redis accepts costs it about 31 KiB that neither maxmemory nor
maxmemory-clients counts; with Redis's default maxclients, plain TCP connections from any
container on the backend network (no certificate needed) got Redis OOM-killed
(infra/redis_conf.py MAX_CLIENTS; docs/attack-surface.md, "What a container on the backend
network can still do to Redis"). Here a probe on the backend network opens twice the limit and holds
them: Redis keeps at most MAX_CLIENTS, refuses the rest, stays inside its container's memory limit
without
a restart, and serves the app again once the flood ends. The same on a local server with the
stack's redis.conf: tests/integration/test_redis_connection_flood.py.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import docker
import pytest

from infra.redis_conf import MAX_CLIENTS
from tests.e2e.probes import ProbeContainer, app_auth
from tests.e2e.stacks import Stack
from tests.e2e.test_e2e_hardening import restarts, session, wait_healthy

pytestmark = pytest.mark.security("runtime")

FLOOD: Final = 2 * MAX_CLIENTS
HOLD_S: Final = 6.0
# When Redis's memory is read: after the probe has opened every connection (a bridge takes
# well under a second for a thousand), before it lets them go.
SAMPLE_AFTER_S: Final = 3.0


def _memory(client: docker.DockerClient, container: str) -> tuple[int, int]:
    """The container's memory use and limit (bytes), as the engine's cgroup reads them."""
    stats = client.containers.get(container).stats(stream=False)["memory_stats"]
    return int(stats["usage"]), int(stats["limit"])


@pytest.mark.fault  # while it lasts Redis refuses every new client, its health check included
@pytest.mark.one_stack(
    "maxclients is the same on every stack, and every profile's memory limit counts its "
    "connections (infra/redis_conf.py min_memory_limit_mb)"
)
def test_attack__a_connection_flood_is_refused_past_maxclients_and_redis_serves_again(
    stack: Stack, docker_client: docker.DockerClient, probe: ProbeContainer
) -> None:
    before = restarts(docker_client, stack.redis)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(
            probe.run, "hold_connections", host="redis", port=stack.settings.redis_port,
            count=FLOOD, seconds=HOLD_S,
        )  # fmt: skip
        time.sleep(SAMPLE_AFTER_S)
        used, limit = _memory(docker_client, stack.redis)
        flood = held.result()
    assert flood["opened"] == FLOOD, f"positive control: the probe opened {flood}"
    kept = flood["opened"] - flood["closed_by_server"]
    assert kept <= MAX_CLIENTS, f"Redis held {kept} connections, past maxclients {MAX_CLIENTS}"
    # Within its memory limit: the kernel would have OOM-killed it otherwise (the cgroup's
    # usage itself never passes the limit, so comparing the two could not fail).
    assert restarts(docker_client, stack.redis)[:2] == (before[0], False), (
        f"Redis restarted or was OOM-killed; it used {used >> 20} of {limit >> 20} MiB"
    )
    wait_healthy(docker_client, stack.redis)
    # A new client (the app's certificate and password) is served again.
    replies = session(probe, stack, [app_auth(), ["PING"]])
    assert replies == ["+OK", "+PONG"], replies


def test_attack__no_identity_can_name_its_connection(stack: Stack, probe: ProbeContainer) -> None:
    """HELLO bypasses the ACL and its SETNAME kept up to 2 MiB per connection outside
    maxmemory-clients (tests/integration/test_redis_client_names.py); the stack's Redis has no
    HELLO, and CLIENT SETNAME is not granted."""
    replies = session(
        probe,
        stack,
        [app_auth(), ["HELLO", "2", "SETNAME", "named"], ["CLIENT", "SETNAME", "named"], ["PING"]],
    )
    assert replies[0] == "+OK"
    assert replies[1].startswith("-ERR unknown command 'HELLO'"), replies[1]
    assert replies[2].startswith("-NOPERM"), replies[2]
    assert replies[3] == "+PONG"
