"""What the reload identity's CONFIG SET can change at runtime shows in the exporter's scrape.

The reload job's user may run CONFIG SET (infra/redis_acl.py RELOAD_COMMANDS; Redis 7.0 cannot
narrow it to the TLS files it re-reads). On a real TLS redis-server with the stack's redis.conf
and that user's exact rules, it opens a plaintext port, lifts maxmemory and raises maxclients;
the exporter, as its own identity, reports each (`redis_plaintext_port`, `redis_memory_max_bytes`,
`redis_max_clients`), which monitoring/alerts.yml's config-drift rules alert on.
"""

from __future__ import annotations

import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from infra.redis_acl import RELOAD_USER, password_hash, reload_user_line
from infra.redis_conf import MAX_CLIENTS
from secure_cache.redis_exporter import connect, registry_for
from tests.support.exporter_redis import ExporterRedis
from tests.support.tls_redis import REDIS_SERVER, free_port


@pytest.fixture
def drift(tmp_path: Path) -> Iterator[tuple[ExporterRedis, redis.Redis]]:
    """The exporter's server with the reload job's user too; that user's client."""
    if shutil.which(REDIS_SERVER) is None:
        pytest.skip("redis-server is not installed; run scripts/bootstrap.sh as root")
    setup = ExporterRedis(tmp_path)
    password = secrets.token_urlsafe(32)
    acl = setup.server.workdir / "users.acl"
    acl.write_text(acl.read_text() + reload_user_line(password_hash(password)) + "\n")
    try:
        setup.server.start()
        reload_client = setup.server.app_redis(username=RELOAD_USER, password=password)
        yield setup, reload_client
    finally:
        setup.server.close()


def _scrape(setup: ExporterRedis) -> dict[str, float]:
    body = generate_latest(registry_for(connect(setup.settings()))).decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if not s.labels
    }


def test_a_plaintext_port_opened_at_runtime__is_exported(
    drift: tuple[ExporterRedis, redis.Redis],
) -> None:
    setup, reload_client = drift
    assert _scrape(setup)["redis_plaintext_port"] == 0
    port = free_port()
    reload_client.config_set("port", port)
    # The listener is real: plaintext RESP, no certificate (what the alert is about).
    with socket.create_connection((setup.server.host, port), timeout=5) as plain:
        plain.sendall(b"PING\r\n")
        assert plain.recv(64).startswith(b"-NOAUTH")
    assert _scrape(setup)["redis_plaintext_port"] == port


def test_maxmemory_and_maxclients_changed_at_runtime__are_exported(
    drift: tuple[ExporterRedis, redis.Redis],
) -> None:
    setup, reload_client = drift
    before = _scrape(setup)
    assert before["redis_memory_max_bytes"] > 0
    assert before["redis_max_clients"] == MAX_CLIENTS
    reload_client.config_set("maxmemory", 0)
    reload_client.config_set("maxclients", 10 * MAX_CLIENTS)
    after = _scrape(setup)
    assert after["redis_memory_max_bytes"] == 0
    assert after["redis_max_clients"] == 10 * MAX_CLIENTS
