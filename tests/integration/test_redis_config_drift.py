"""What the reload identity's CONFIG SET can change at runtime shows in the exporter's scrape.

The reload job's user may run CONFIG SET (infra/redis_acl.py RELOAD_COMMANDS; Redis 7.0 cannot
narrow it to the TLS files it re-reads). On a real TLS redis-server with the stack's redis.conf
and that user's exact rules, it opens a plaintext port, lifts maxmemory and raises maxclients;
the exporter, as its own identity, reports each (`redis_plaintext_port`, `redis_memory_max_bytes`,
`redis_max_clients`), which monitoring/alerts.yml's config-drift rules alert on. What INFO does
not show is seen another way: client certificates made optional and a TLS version below the
floor by the listener's own answer to a handshake (app/secure_cache/tls_probe.py), a longer
ACL LOG by the ninth entry the exporter reads.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from infra.redis_acl import RELOAD_USER, password_hash, reload_user_line
from infra.redis_conf import ACL_LOG_MAX_LEN, MAX_CLIENTS
from secure_cache.redis_exporter import connect, probe_target, registry_for
from secure_cache.tls_probe import TlsPolicyProbe
from tests.support.cache_env import raw_client
from tests.support.exporter_redis import ExporterRedis
from tests.support.tls_redis import REDIS_SERVER, free_port


@pytest.fixture
def drift(tmp_path: Path) -> Iterator[tuple[ExporterRedis, redis.Redis]]:
    """The exporter's server with the reload job's user too; that user's client."""
    yield from _drift_setup(tmp_path, ("TLSv1.2", "TLSv1.3"))


@pytest.fixture
def production_drift(tmp_path: Path) -> Iterator[tuple[ExporterRedis, redis.Redis]]:
    """As `drift`, TLS 1.3 only, as a production stack's Redis."""
    yield from _drift_setup(tmp_path, ("TLSv1.3",))


def _drift_setup(
    tmp_path: Path, tls_protocols: tuple[str, ...]
) -> Iterator[tuple[ExporterRedis, redis.Redis]]:
    if shutil.which(REDIS_SERVER) is None:
        pytest.skip("redis-server is not installed; run scripts/bootstrap.sh as root")
    setup = ExporterRedis(tmp_path, tls_protocols)
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


def test_persistence_and_eviction_policy_changed_at_runtime__are_exported(
    drift: tuple[ExporterRedis, redis.Redis],
) -> None:
    """appendonly and maxmemory-policy are in INFO (persistence, memory): the exporter's
    grant sees them. Other limits the reload identity can change are in no INFO field
    (docs/monitoring.md)."""
    setup, reload_client = drift

    def policy() -> str:
        body = generate_latest(registry_for(connect(setup.settings()))).decode()
        (family,) = [
            f for f in text_string_to_metric_families(body) if f.name == "redis_maxmemory_policy"
        ]
        return str([s.labels["policy"] for s in family.samples if s.value == 1])

    assert _scrape(setup)["redis_aof_enabled"] == 1
    assert policy() == "['allkeys-lru']"
    reload_client.config_set("appendonly", "no")
    reload_client.config_set("maxmemory-policy", "noeviction")
    assert _scrape(setup)["redis_aof_enabled"] == 0
    assert policy() == "['noeviction']"


def _probed(setup: ExporterRedis, environment: str = "development") -> dict[str, float]:
    """One scrape with the TLS drift probes, run just before it (as `scrape` does)."""
    settings = setup.settings(ENVIRONMENT=environment)
    tls_probe = TlsPolicyProbe(probe_target(settings))
    tls_probe.refresh()
    registry = registry_for(connect(settings), tls_probe=tls_probe)
    body = generate_latest(registry).decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if not s.labels
    }


@pytest.mark.parametrize("value", ["no", "optional"])
def test_client_certificates_made_optional_at_runtime__are_exported(
    drift: tuple[ExporterRedis, redis.Redis], value: str
) -> None:
    """tls-auth-clients is neither in INFO nor readable with the exporter's grant; a
    handshake without a certificate shows it (app/secure_cache/tls_probe.py)."""
    setup, reload_client = drift
    assert _probed(setup)["redis_tls_client_certificate_required"] == 1
    reload_client.config_set("tls-auth-clients", value)
    # What the alert is about: a client with no certificate reaches AUTH.
    context = ssl.create_default_context(cafile=str(setup.server.material.ca_file))
    with (
        socket.create_connection((setup.server.host, setup.server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=setup.server.host) as tls,
    ):
        tls.sendall(b"PING\r\n")
        assert tls.recv(64).startswith(b"-NOAUTH")
    assert _probed(setup)["redis_tls_client_certificate_required"] == 0


def test_a_protocol_below_the_floor_opened_at_runtime__is_exported(
    drift: tuple[ExporterRedis, redis.Redis],
) -> None:
    """Two CONFIG SETs open TLS 1.1 (OpenSSL 3 needs security level 0 for it), which neither
    INFO nor the exporter's grant shows; a handshake capped at TLS 1.1 does."""
    setup, reload_client = drift
    assert _probed(setup)["redis_tls_protocol_below_floor_accepted"] == 0
    reload_client.config_set("tls-protocols", "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3")
    assert _probed(setup)["redis_tls_protocol_below_floor_accepted"] == 0, "seclevel refuses it"
    reload_client.config_set("tls-ciphers", "ALL:@SECLEVEL=0")
    assert _probed(setup)["redis_tls_protocol_below_floor_accepted"] == 1


def test_a_longer_acl_log_set_at_runtime__shows_in_its_entries(
    drift: tuple[ExporterRedis, redis.Redis],
) -> None:
    """With acllog-max-len raised, any identity's denials of 2 MiB arguments hold memory
    outside maxmemory (on a deployed stack: 120 of them took used_memory to 285 MB, maxmemory
    201 MB). The exporter reads one entry more than the stack keeps, so a ninth shows it."""
    setup, reload_client = drift
    app = raw_client(setup.server)
    try:
        for i in range(2 * ACL_LOG_MAX_LEN):
            with pytest.raises(redis.exceptions.NoPermissionError):
                app.get(f"outside-{i}")
        before = _entries(setup)
        reload_client.config_set("acllog-max-len", 1000)
        for i in range(2 * ACL_LOG_MAX_LEN):
            with pytest.raises(redis.exceptions.NoPermissionError):
                app.get(f"outside-again-{i}")
    finally:
        app.close()
    assert before == ACL_LOG_MAX_LEN
    assert _entries(setup) == ACL_LOG_MAX_LEN + 1


def _entries(setup: ExporterRedis) -> float:
    body = generate_latest(registry_for(connect(setup.settings()))).decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == "redis_acl_log_entries"
    )


def test_tls_1_2_opened_on_a_production_server__is_exported(
    production_drift: tuple[ExporterRedis, redis.Redis],
) -> None:
    """Production's floor is TLS 1.3: the probe below it is TLS 1.2, which one CONFIG SET opens."""
    setup, reload_client = production_drift
    before = _probed(setup, "production")
    reload_client.config_set("tls-protocols", "TLSv1.2 TLSv1.3")
    after = _probed(setup, "production")
    assert before["redis_tls_protocol_below_floor_accepted"] == 0
    assert before["redis_tls_client_certificate_required"] == 1
    assert after["redis_tls_protocol_below_floor_accepted"] == 1
