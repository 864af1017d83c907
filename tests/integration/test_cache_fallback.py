"""Failure handling: outages fall back to memory and recover; transport failures are counted."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from secure_cache import SecureCache
from secure_cache.settings import load_settings
from secure_cache.transport import _TlsConnection
from tests.support.cache_env import FakeClock, cache_environ, write_secret
from tests.support.cache_shells import open_cache
from tests.support.tls_redis import TlsMaterial, TlsRedisServer, free_port


def test_redis_killed_mid_workload__callers_never_see_an_error(
    shell: str, server: TlsRedisServer, tmp_path: Path
) -> None:
    """A worker thread keeps using the cache while Redis is killed and restarted."""
    cache = open_cache(shell, cache_environ(server, tmp_path / "s"))
    errors: list[BaseException] = []
    backends: list[str] = []
    ops = 0
    stop = threading.Event()

    def workload() -> None:
        nonlocal ops
        while not stop.is_set():
            key, value = f"work:{ops % 50}", b"value-%d" % ops
            try:
                before = cache.backend
                cache.set(key, value, ttl=600)
                got = cache.get(key)
                after = cache.backend
                # While the backend switches, a value written to one side and read from
                # the other is a miss; otherwise it must read back exactly.
                if got != value and not (got is None and before != after):
                    errors.append(AssertionError(f"op {ops}: read {got!r} on {after}"))
                backends.append(after)
            except BaseException as exc:
                errors.append(exc)
            ops += 1

    worker = threading.Thread(target=workload)
    worker.start()
    try:
        _wait_for(lambda: ops > 50)
        server.kill()
        _wait_for(lambda: cache.backend == "memory")
        marker = ops
        _wait_for(lambda: ops > marker + 50)  # keeps serving from memory
        server.start()
        _wait_for(lambda: cache.backend == "redis", timeout=20)
        marker = ops
        _wait_for(lambda: ops > marker + 50)  # and from Redis again
    finally:
        stop.set()
        worker.join(timeout=10)
        cache.close()
    assert not errors, errors[:3]
    assert "memory" in backends
    assert backends[-1] == "redis"
    counters = cache.events.snapshot()
    assert counters["fallbacks"] >= 1
    assert counters["reconnects"] >= 1
    assert counters["connection_failures"] >= 1, counters


def test_outage_changes__are_replayed_when_redis_returns(
    shell: str, server: TlsRedisServer, tmp_path: Path
) -> None:
    env = cache_environ(server, tmp_path / "s")
    clock = FakeClock()
    cache = open_cache(shell, env, clock=clock)
    cache.set("kept", b"before")
    cache.set("doomed", b"before")
    server.stop()  # graceful: both entries are persisted

    cache.set("written-during-outage", b"during", ttl=600)
    assert cache.delete("doomed") is False  # memory knew nothing of it; the delete is noted
    assert cache.get("written-during-outage") == b"during"
    assert cache.backend == "memory"
    status = cache.status()
    assert status["backend"] == "memory"
    assert status["fallback"]["active"] is True
    assert status["fallback"]["last_failure"] == "connection"

    clock.advance(60)  # a probe is due, but Redis is still down: stays on memory
    assert cache.get("written-during-outage") == b"during"
    assert cache.backend == "memory"

    server.start()
    # Each due probe retries; a server still loading its AOF answers LOADING and the cache
    # stays on memory until a later probe succeeds.
    deadline = time.monotonic() + 10
    while cache.backend != "redis" and time.monotonic() < deadline:
        clock.advance(60)
        cache.status()
        time.sleep(0.01)
    assert cache.backend == "redis"
    assert cache.get("kept") == b"before"
    assert cache.events.count("reconnects") == 1

    with open_cache(shell, env) as other:
        assert other.get("written-during-outage") == b"during"
        assert other.get("doomed") is None  # the outage's delete reached Redis
        assert other.get("kept") == b"before"
    cache.close()


def test_redis_unreachable_at_start__starts_on_memory(
    shell: str, tmp_path: Path, server: TlsRedisServer
) -> None:
    env = cache_environ(server, tmp_path / "s", REDIS_URL=f"rediss://127.0.0.1:{free_port()}")
    with open_cache(shell, env) as cache:
        assert cache.backend == "memory"
        cache.set("k", b"v")
        assert cache.get("k") == b"v"
        assert cache.status()["backend"] == "memory"
        assert cache.events.count("fallbacks") == 1


def test_fallback__is_bounded(shell: str, server: TlsRedisServer, tmp_path: Path) -> None:
    env = cache_environ(
        server,
        tmp_path / "s",
        REDIS_URL=f"rediss://127.0.0.1:{free_port()}",
        CACHE_FALLBACK_MAX_ENTRIES="10",
    )
    with open_cache(shell, env) as cache:
        for i in range(25):
            cache.set(f"k{i}", b"v")
        status = cache.status()
        assert status["fallback"]["entries"] == 10
        assert cache.get("k0") is None  # least recently used went first
        assert cache.get("k24") == b"v"


def test_fallback__honours_ttl(shell: str, server: TlsRedisServer, tmp_path: Path) -> None:
    clock = FakeClock()
    env = cache_environ(server, tmp_path / "s", REDIS_URL=f"rediss://127.0.0.1:{free_port()}")
    with open_cache(shell, env, clock=clock) as cache:
        cache.set("short", b"v", ttl=5)
        assert cache.get("short") == b"v"
        clock.advance(6)
        assert cache.get("short") is None


def test_wrong_password__is_a_counted_auth_failure(
    shell: str, server: TlsRedisServer, tmp_path: Path
) -> None:
    wrong = write_secret(tmp_path / "w", "password", "x" * 32)
    env = cache_environ(server, tmp_path / "s", REDIS_PASSWORD_FILE=str(wrong))
    with open_cache(shell, env) as cache:
        assert cache.get("k") is None
        assert cache.backend == "memory"
        assert cache.events.count("auth_failures") >= 1
        assert cache.status()["fallback"]["last_failure"] == "auth"


def test_server_from_another_ca__is_a_counted_tls_failure(
    shell: str, server: TlsRedisServer, tmp_path: Path
) -> None:
    foreign = TlsMaterial.generate(tmp_path / "foreign")
    env = cache_environ(server, tmp_path / "s", REDIS_TLS_CA_CERT=str(foreign.ca_file))
    with open_cache(shell, env) as cache:
        cache.set("k", b"v")
        assert cache.backend == "memory"
        assert cache.events.count("tls_failures") >= 1


@pytest.fixture
def tls12_only_server(tls_redis_factory: Any) -> TlsRedisServer:
    started: TlsRedisServer = tls_redis_factory(tls_protocols=("TLSv1.2",))
    return started


def test_production__refuses_a_tls12_server(
    shell: str, tls12_only_server: TlsRedisServer, tmp_path: Path
) -> None:
    settings = load_settings(cache_environ(tls12_only_server, tmp_path / "s"))
    production = dataclasses.replace(settings, environment="production")
    with open_cache(shell, settings=production) as cache:
        assert cache.ping() is False
        assert cache.events.count("tls_failures") >= 1
        assert cache.status()["redis"]["tls_min_version"] == "TLSv1.3"


def test_development__accepts_a_tls12_server(
    shell: str, tls12_only_server: TlsRedisServer, tmp_path: Path
) -> None:
    with open_cache(shell, cache_environ(tls12_only_server, tmp_path / "s")) as cache:
        cache.set("k", b"v")
        assert cache.get("k") == b"v"
        status = cache.status()
        assert status["redis"]["tls_version"] == "TLSv1.2"
        assert status["redis"]["tls_cipher"].startswith("ECDHE-")


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_hung_server__times_out_and_falls_back(
    shell: str, server: TlsRedisServer, tmp_path: Path, silent_listener: int
) -> None:
    env = cache_environ(server, tmp_path / "s", REDIS_URL=f"rediss://127.0.0.1:{silent_listener}")
    with open_cache(shell, env, connect_timeout=0.3, socket_timeout=0.3) as cache:
        cache.set("k", b"v")
        assert cache.get("k") == b"v"
        assert cache.backend == "memory"
        assert cache.events.count("timeouts") >= 1


def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached within the deadline")
        time.sleep(0.01)


@pytest.mark.parametrize(("retries", "fell_back"), [(1, False), (0, True)])
def test_stale_pooled_connection__is_retried_on_a_fresh_one(
    shell: str, server: TlsRedisServer, tmp_path: Path, retries: int, fell_back: bool
) -> None:
    """A restart leaves the pool's connection dead: redis-py's Retry (transport.py) makes one
    more attempt on a new connection, so the caller never notices; without it, the cache
    falls back."""
    env = cache_environ(server, tmp_path / "s")
    with open_cache(shell, env, retries=retries) as cache:
        cache.set("kept", b"v")
        server.stop()  # graceful: the entry is persisted
        server.start()
        _wait_for(lambda: _loaded(server, tmp_path))
        got = cache.get("kept")
        assert (cache.backend == "memory") is fell_back
        assert cache.events.count("fallbacks") == int(fell_back)
        assert got == (None if fell_back else b"v")


def _loaded(server: TlsRedisServer, tmp_path: Path) -> bool:
    """The restarted server answers (it says LOADING while it reads its AOF)."""
    with SecureCache.from_env(cache_environ(server, tmp_path / "probe")) as probe:
        return probe.backend == "redis" and probe.get("kept") == b"v"


def test_a_batch_write_lost_midway__is_retried_whole_on_a_fresh_connection(
    tls_redis: TlsRedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """set_many seals its values as the transport writes them (resp.Deferred): the retry after
    a connection lost mid-write sends every chunk again, the ones made before the loss too
    (a one-shot iterator sent only the rest, and the cache fell back to memory)."""
    real: Any = _TlsConnection.send_packed_command  # redis-py's sync side is untyped
    lost: list[int] = []

    def lost_after_two_chunks(conn: Any, command: Any, check_health: bool) -> None:
        if lost:
            real(conn, command, check_health)
            return
        chunks = iter(command)
        real(conn, [next(chunks), next(chunks)], check_health)
        lost.append(1)
        conn.disconnect()
        raise RedisConnectionError("connection lost mid-write")

    values = {f"midway:{i}": os.urandom(100 * 1024) for i in range(6)}
    values |= {f"midway:small:{i}": os.urandom(100) for i in range(6)}
    with SecureCache.from_env(cache_environ(tls_redis, tmp_path / "s")) as cache:
        monkeypatch.setattr(_TlsConnection, "send_packed_command", lost_after_two_chunks)
        cache.set_many(values)
        assert lost, "the first write was lost"
        assert cache.backend == "redis"  # retried, not served by the fallback
        assert cache.get_many(values) == values
