"""The client against a real TLS-only, ACL-locked redis-server: API, transport, data at rest.

The API tests run against both shells (SecureCache and AsyncSecureCache, see
tests/support/cache_shells.py)."""

from __future__ import annotations

import base64
import os
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest

from secure_cache import SecureCache
from secure_cache.crypto import Keyring
from tests.support.cache_env import (
    aof_bytes,
    cache_environ,
    new_data_key,
    raw_client,
    stored_names,
)
from tests.support.cache_shells import open_cache
from tests.support.tls_redis import TlsRedisServer


def _key(label: str) -> str:
    return f"{label}:{uuid.uuid4().hex}"


def test_set_get_delete__round_trip(cache: SecureCache) -> None:
    key = _key("user")
    value = os.urandom(1024)
    cache.set(key, value)
    assert cache.get(key) == value
    assert cache.delete(key) is True
    assert cache.get(key) is None
    assert cache.delete(key) is False


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00\xff\x00\x80", os.urandom(100 * 1024)],
    ids=["empty", "binary", "100KiB"],
)
def test_set_get__keeps_any_bytes(cache: SecureCache, value: bytes) -> None:
    key = _key("bytes")
    cache.set(key, value)
    assert cache.get(key) == value


def test_unicode_key__round_trips(cache: SecureCache) -> None:
    key = _key("clé/ключ/鍵 with spaces")
    cache.set(key, b"v")
    assert cache.get(key) == b"v"


def test_ttl__is_applied_to_the_stored_entry(cache: SecureCache, tls_redis: TlsRedisServer) -> None:
    key = _key("ttl")
    cache.set(key, b"v", ttl=120)
    ttl_ms = raw_client(tls_redis, rotation=True).pttl(cache.stored_name(key))
    assert 0 < ttl_ms <= 120_000


def test_get_many_set_many__batch_round_trip(cache: SecureCache) -> None:
    keys = [_key("batch") for _ in range(100)]
    values = {k: os.urandom(64) for k in keys}
    cache.set_many(values, ttl=60)
    missing = _key("missing")
    assert cache.get_many([*keys, missing]) == values


def test_get_many__a_large_batch_peaks_at_one_copy_of_its_values(cache: SecureCache) -> None:
    # Each envelope is released once its value is out (core.py, _open_many): the batch
    # never holds every envelope and every value at once.
    count, size = 32, 256 * 1024
    values = {_key("large"): os.urandom(size) for _ in range(count)}
    cache.set_many(values, ttl=60)
    tracemalloc.start()
    try:
        found = cache.get_many(list(values))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == values
    assert peak < 1.5 * count * size


def test_json_helpers__round_trip(cache: SecureCache) -> None:
    key = _key("json")
    cache.set_json(key, {"answer": 42, "text": "héllo"})
    assert cache.get_json(key) == {"answer": 42, "text": "héllo"}
    assert cache.get_json(_key("absent")) is None


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [(b"bytes-key", b"v", TypeError), ("k", "text", TypeError), ("x" * 5000, b"v", ValueError)],
    ids=["bytes-key", "str-value", "key-too-long"],
)
def test_programming_errors__raise_before_any_io(
    cache: SecureCache, key: object, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        cache.set(key, value)  # type: ignore[arg-type]


def test_all_operations__stay_within_the_app_acl(cache: SecureCache) -> None:
    """Everything the client sends (including on connect) is allowed to the `app` user."""
    key = _key("acl")
    cache.set(key, b"v", ttl=5)
    cache.get(key)
    cache.get_many([key])
    cache.set_many({key: b"w"})
    cache.delete(key)
    cache.status()
    counters = cache.status()["counters"]
    assert counters["acl_denied"] == 0
    assert counters["command_errors"] == 0
    assert cache.backend == "redis"


def test_status__reports_a_rotated_data_key_without_a_command_in_between(
    shell: str, tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    """An idle app's /security-status reported the data key it had before a rotation for as
    long as no cache command arrived: the material files were checked only before a command
    (found in the day-2 e2e test on dev, 2026-12-03: a minute after the up, still the old
    key). The status checks them first, on the same timer as a command."""
    now = [0.0]
    secrets = tmp_path / "secrets"
    old_key, new_key = new_data_key(), new_data_key()
    environ = cache_environ(tls_redis, secrets, data_key=old_key, previous_keys=())
    with open_cache(shell, environ, clock=lambda: now[0], reload_interval=1.0) as cache:
        before = cache.status()["encryption"]["primary_key_id"]
        assert before == Keyring(base64.b64decode(old_key)).primary.key_id_hex
        key_file = secrets / "data-key"
        key_file.chmod(0o600)
        key_file.write_text(new_key + "\n")
        key_file.chmod(0o400)
        now[0] += 1.5  # the reload interval has passed; no command was sent
        after = cache.status()["encryption"]
    assert after["primary_key_id"] == Keyring(base64.b64decode(new_key)).primary.key_id_hex


def test_status__reports_transport_and_keys(cache: SecureCache, tls_redis: TlsRedisServer) -> None:
    status = cache.status()
    assert status["backend"] == "redis"
    assert status["redis"]["acl_user"] == "app"
    assert status["redis"]["tls_version"] == "TLSv1.3"
    assert status["redis"]["tls_cipher"].startswith("TLS_")
    assert status["redis"]["server_certificate_days_left"] > 0
    assert status["redis"]["tls_min_version"] == "TLSv1.2"  # development profile
    expected_id = Keyring(base64.b64decode(tls_redis.material.data_key)).primary.key_id_hex
    assert status["encryption"]["primary_key_id"] == expected_id
    assert status["encryption"]["cipher"] == "AES-256-GCM"
    assert set(status["counters"]) >= {
        "auth_failures",
        "tls_failures",
        "integrity_failures",
        "fallbacks",
        "reconnects",
    }


def test_status__contains_no_secret(cache: SecureCache, tls_redis: TlsRedisServer) -> None:
    text = repr(cache.status())
    assert tls_redis.material.app_password not in text
    assert tls_redis.material.data_key not in text


def test_at_rest__names_and_values_reveal_nothing(tls_redis_factory: Any, tmp_path: Path) -> None:
    server: TlsRedisServer = tls_redis_factory()
    # The id has letters hex never uses: names are hex digests, and "4711" alone turned up in
    # one by chance about once in a hundred runs.
    secret_key = "patient:zq4711:diagnosis"
    secret_value = b"the plaintext value nobody may read at rest " * 4
    with SecureCache.from_env(cache_environ(server, tmp_path / "s")) as cache:
        cache.set(secret_key, secret_value, ttl=600)
        cache.set_many({f"{secret_key}:{i}": secret_value for i in range(10)})
        names = stored_names(server)
        raw = raw_client(server)
        stored = [raw.get(n) for n in names]
    assert len(names) == 11
    for name, blob in zip(names, stored, strict=True):
        assert name.startswith(server.key_prefix.encode())
        assert b"patient" not in name
        assert b"zq4711" not in name
        assert blob is not None
        assert b"nobody may read" not in blob
        assert b"patient" not in blob
    server.stop()  # graceful: the AOF is flushed to disk
    persisted = aof_bytes(server)
    assert persisted, "the server persisted nothing; the AOF check would prove nothing"
    assert names[0] in persisted  # the check reads the right files
    assert b"nobody may read" not in persisted
    assert b"patient" not in persisted
    assert b"zq4711" not in persisted


def test_names__differ_per_data_key(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    """Another deployment's key gives other names: stored names are keyed, not plain hashes."""
    key = _key("shared-logical-key")
    env_a = cache_environ(tls_redis, tmp_path / "a")
    env_b = cache_environ(tls_redis, tmp_path / "b", data_key=new_data_key())
    with SecureCache.from_env(env_a) as a, SecureCache.from_env(env_b) as b:
        a.set(key, b"from a")
        b.set(key, b"from b")
        assert a.get(key) == b"from a"
        assert b.get(key) == b"from b"


def test_connection_pool__reuses_one_shared_tls_context(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    cache = SecureCache.from_env(cache_environ(tls_redis, tmp_path / "secrets"))
    transport = cache._transport
    for _ in range(5):
        cache.get(_key("pool"))
    conns = transport._pool._all
    assert conns, "no connection was made"
    shared = transport.material.current.ssl_context
    cache.close()
    assert {id(c.handshake_context) for c in conns} == {id(shared)}
