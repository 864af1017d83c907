"""Idle connections cannot grow Redis past its memory budget (infra/redis_conf.py MAX_CLIENTS).

Every connection Redis accepts costs it memory before a byte is sent (its client and its TLS
session, mostly OpenSSL's, which neither maxmemory nor maxmemory-clients counts): about 31 KiB
each on Redis 7.0.15. With Redis's default maxclients (10000, or the open-file limit less 32)
any container on the backend network could hold about 310 MiB of it with plain TCP
connections, no certificate needed, and get Redis OOM-killed once the cache is full. The
server started here runs the stack's own redis.conf.
"""

from __future__ import annotations

import resource
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import redis

from infra.redis_conf import MAX_CLIENTS, connections_limit_bytes
from tests.integration.conftest import ServerFactory
from tests.support.tls_redis import OBSERVER, TlsRedisServer, observer_acl

OBSERVER_PASSWORD = secrets.token_urlsafe(24)  # this run's only
# Four times the limit: without it, every one is accepted (and held) by Redis.
FLOOD = 4 * MAX_CLIENTS


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@contextmanager
def _idle_connections(server: TlsRedisServer, count: int) -> Iterator[None]:
    """`count` TCP connections that never start a TLS handshake, held open."""
    with ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(socket.create_connection((server.host, server.port), 5))
        yield


def _settled(observer: redis.Redis, expected: int) -> dict[str, int]:
    """Wait until Redis has accepted or refused every connection (accepts are batched)."""
    facts: dict[str, int] = {}
    for _ in range(100):
        info = observer.info()
        facts = {k: int(info[k]) for k in ("connected_clients", "rejected_connections")}
        if facts["connected_clients"] + facts["rejected_connections"] >= expected:
            break
        time.sleep(0.05)
    return facts


@pytest.fixture
def enough_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = FLOOD + 256
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} open files, the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.mark.usefixtures("enough_descriptors")
def test_idle_connections_past_maxclients__are_refused_and_redis_stays_within_budget(
    tls_redis_factory: ServerFactory,
) -> None:
    server = tls_redis_factory(extra_acl=observer_acl(OBSERVER_PASSWORD))
    observer = server.app_redis(username=OBSERVER, password=OBSERVER_PASSWORD)
    pid = int(observer.info("server")["process_id"])
    before = _rss_bytes(pid)
    with _idle_connections(server, FLOOD):
        facts = _settled(observer, FLOOD + 1)
        grown = _rss_bytes(pid) - before
    assert facts["connected_clients"] <= MAX_CLIENTS, facts
    assert facts["rejected_connections"] >= FLOOD + 1 - MAX_CLIENTS, facts
    assert grown <= connections_limit_bytes(), f"Redis grew by {grown / 2**20:.1f} MiB"
    # Once the flood ends, Redis serves new clients again.
    app = server.app_redis()
    for _ in range(100):
        if int(observer.info("clients")["connected_clients"]) == 1:
            break
        time.sleep(0.05)
    assert app.ping() is True
    app.close()
    observer.close()
