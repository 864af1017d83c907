"""The Redis exporter against a real TLS-only redis-server, as its own least-privilege user.

The server gets the exporter's ACL user with exactly `EXPORTER_COMMANDS` (the module's single
source) and the exporter a client certificate of its own. The tests provoke what the exporter
must report (a wrong-password AUTH, a NOPERM) and check that its identity may do nothing else.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from prometheus_client import generate_latest, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from secure_cache.redis_exporter import EXPORTER_COMMANDS, EXPORTER_USER, connect, registry_for
from tests.support.exporter_redis import ExporterRedis, running_exporter_redis
from tests.support.tls_redis import free_port


@pytest.fixture(scope="module")
def exporter_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterRedis]:
    with running_exporter_redis(tmp_path_factory.mktemp("exporter")) as setup:
        yield setup


@pytest.fixture
def exporter_client(exporter_redis: ExporterRedis) -> Iterator[redis.Redis]:
    client = connect(exporter_redis.settings())
    yield client
    client.close()


def _scrape(client: redis.Redis) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = generate_latest(registry_for(client)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


WRONGPASS = ("redis_errors_total", (("error", "WRONGPASS"),))
NOPERM = ("redis_errors_total", (("error", "NOPERM"),))


def test_scrape__reads_info_as_the_exporter(exporter_client: redis.Redis) -> None:
    values = _scrape(exporter_client)
    assert values[("redis_up", ())] == 1
    assert values[("redis_memory_max_bytes", ())] == 64 * 1024 * 1024
    assert values[("redis_connected_clients", ())] >= 1
    assert ("redis_evicted_keys_total", ()) in values


def test_wrong_password__moves_the_auth_failure_counter(
    exporter_redis: ExporterRedis, exporter_client: redis.Redis
) -> None:
    before = _scrape(exporter_client)
    exporter_redis.wrong_password()
    after = _scrape(exporter_client)
    assert after[WRONGPASS] == before[WRONGPASS] + 1
    assert after[("redis_acl_log_events", (("reason", "auth"),))] >= 1


def test_denied_command__moves_the_acl_denial_counter(
    exporter_redis: ExporterRedis, exporter_client: redis.Redis
) -> None:
    before = _scrape(exporter_client)
    exporter_redis.denied_key()
    after = _scrape(exporter_client)
    assert after[NOPERM] == before[NOPERM] + 1
    assert after[("redis_acl_log_events", (("reason", "key"),))] >= 1


@pytest.mark.parametrize(
    "command",
    [
        ("GET", "cache:anything"),
        ("SET", "cache:x", "1"),
        ("KEYS", "*"),
        ("CONFIG", "GET", "requirepass"),
        ("ACL", "WHOAMI"),
        ("ACL", "LIST"),
        ("ACL", "SETUSER", "exporter", "+@all"),
        ("CLIENT", "LIST"),
        ("MONITOR",),
        ("PING",),
        ("SUBSCRIBE", "news"),
        ("CLIENT", "KILL", "USER", "app"),
        ("SHUTDOWN",),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_exporter_identity__is_refused_everything_else(
    exporter_client: redis.Redis, command: tuple[str, ...]
) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        exporter_client.execute_command(*command)  # type: ignore[no-untyped-call]


def test_exporter_rules__grant_info_and_acl_log_only(
    exporter_redis: ExporterRedis, exporter_client: redis.Redis
) -> None:
    # ACL GETUSER needs @admin, which no user here has: the rule is checked as written in the
    # ACL file Redis loaded; its effect, by the refusals above and the denial count below.
    assert EXPORTER_COMMANDS == "-@all +info +acl|log"
    line = next(
        entry
        for entry in (exporter_redis.server.workdir / "users.acl").read_text().splitlines()
        if entry.startswith(f"user {EXPORTER_USER} ")
    )
    assert line.endswith(f"resetkeys resetchannels {EXPORTER_COMMANDS}")

    def own_denials() -> int:
        entries: list[dict[str, Any]] = exporter_client.acl_log()
        return sum(int(e["count"]) for e in entries if e.get("username") == EXPORTER_USER)

    before = own_denials()
    for _ in range(3):
        assert _scrape(exporter_client)[("redis_up", ())] == 1
    assert own_denials() == before, "scraping made the exporter's identity hit a denial"


def test_wrong_exporter_password__is_redis_up_zero(exporter_redis: ExporterRedis) -> None:
    client = connect(exporter_redis.settings(REDIS_PASSWORD="wrong-password"))
    try:
        values = _scrape(client)
    finally:
        client.close()
    assert values[("redis_up", ())] == 0
    assert not any(name.startswith("redis_memory") for name, _ in values)


def test_served_over_http(exporter_redis: ExporterRedis) -> None:
    client = connect(exporter_redis.settings())
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry_for(client))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            body = reply.read().decode()
    finally:
        server.shutdown()
        thread.join()
        client.close()
    assert "\nredis_up 1.0\n" in body
    assert exporter_redis.password not in body
