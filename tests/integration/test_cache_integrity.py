"""Stored values that fail authentication are misses and counted events, never returned."""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from secure_cache import SecureCache
from secure_cache.crypto import VERSION, Keyring
from tests.support.cache_env import cache_environ, new_data_key, raw_client
from tests.support.envelopes import with_version
from tests.support.tls_redis import TlsRedisServer

SECRET = b"account balance: 1,000,000 - confidential"


def _flip(blob: bytes, index: int) -> bytes:
    data = bytearray(blob)
    data[index] ^= 0x01
    return bytes(data)


def _foreign(name: bytes, key: str) -> bytes:
    """A well-formed envelope for the right name, sealed with someone else's data key."""
    return Keyring(os.urandom(32)).seal(name, key.encode(), SECRET)


# (label, how the stored envelope of the victim key is replaced)
TAMPERINGS: list[tuple[str, Callable[[bytes, bytes, str], bytes]]] = [
    # A version raised above 2 (as a one-bit flip makes 3) is the rollback case, counted
    # apart: test_raised_version__is_a_miss_counted_as_newer_envelope below.
    ("lowered-version", lambda blob, name, key: b"\x01" + blob[1:]),
    ("zeroed-version", lambda blob, name, key: b"\x00" + blob[1:]),
    ("flipped-key-id", lambda blob, name, key: _flip(blob, 2)),
    ("flipped-flags", lambda blob, name, key: _flip(blob, 5)),
    ("flipped-nonce", lambda blob, name, key: _flip(blob, 10)),
    ("flipped-ciphertext", lambda blob, name, key: _flip(blob, 40)),
    ("flipped-tag", lambda blob, name, key: _flip(blob, len(blob) - 1)),
    ("truncated-tag", lambda blob, name, key: blob[:-1]),
    ("truncated-half", lambda blob, name, key: blob[: len(blob) // 2]),
    ("truncated-header", lambda blob, name, key: blob[:5]),
    ("empty", lambda blob, name, key: b""),
    ("plaintext", lambda blob, name, key: SECRET),
    ("json-plaintext", lambda blob, name, key: b'{"balance": 1000000}'),
    ("foreign-key", lambda blob, name, key: _foreign(name, key)),
    ("appended-bytes", lambda blob, name, key: blob + b"\x00"),
]


@pytest.mark.parametrize("tamper", [t[1] for t in TAMPERINGS], ids=[t[0] for t in TAMPERINGS])
def test_tampered_value__is_a_counted_miss(
    cache: SecureCache,
    tls_redis: TlsRedisServer,
    tamper: Callable[[bytes, bytes, str], bytes],
) -> None:
    key = f"victim:{uuid.uuid4().hex}"
    cache.set(key, SECRET)
    name = cache.stored_name(key)
    raw = raw_client(tls_redis)
    stored = raw.get(name)
    assert isinstance(stored, bytes)
    raw.set(name, tamper(stored, name, key))
    before = cache.events.count("integrity_failures")

    assert cache.get(key) is None
    assert cache.events.count("integrity_failures") == before + 1
    assert cache.get_many([key]) == {}
    assert cache.backend == "redis"  # tampering is not an outage


def test_raised_version__is_a_miss_counted_as_newer_envelope(
    cache: SecureCache, tls_redis: TlsRedisServer
) -> None:
    """What a writer to Redis gets by raising a version byte (docs/day2.md, "Rolling back the app"):
    a miss, as from any tampering, counted as newer_envelope (the critical
    CacheNewerEnvelope), not as an integrity failure: the client cannot tell that edit from
    an entry of a newer secure-cache. The value is never returned."""
    key = f"victim:{uuid.uuid4().hex}"
    cache.set(key, SECRET)
    name = cache.stored_name(key)
    raw = raw_client(tls_redis)
    stored = raw.get(name)
    assert isinstance(stored, bytes)
    raw.set(name, with_version(stored, VERSION + 1))  # version 3 -> 4
    before = cache.events.snapshot()
    assert cache.get(key) is None
    assert cache.get_many([key]) == {}
    after = cache.events.snapshot()
    assert after["newer_envelopes"] == before["newer_envelopes"] + 2
    assert after["integrity_failures"] == before["integrity_failures"]


def test_swapped_values__are_misses_for_both_keys(
    cache: SecureCache, tls_redis: TlsRedisServer
) -> None:
    """A value moved to another key's name fails: the stored name is authenticated data."""
    alice, mallory = f"alice:{uuid.uuid4().hex}", f"mallory:{uuid.uuid4().hex}"
    cache.set(alice, b"alice's secret")
    cache.set(mallory, b"mallory's junk")
    raw = raw_client(tls_redis)
    name_a, name_m = cache.stored_name(alice), cache.stored_name(mallory)
    blob_a, blob_m = raw.get(name_a), raw.get(name_m)
    assert blob_a is not None
    assert blob_m is not None
    raw.set(name_a, blob_m)
    raw.set(name_m, blob_a)
    before = cache.events.count("integrity_failures")

    assert cache.get(mallory) is None
    assert cache.get(alice) is None
    assert cache.events.count("integrity_failures") == before + 2


def test_value_from_another_prefix_with_same_key__fails(
    cache: SecureCache, tls_redis: TlsRedisServer
) -> None:
    """Same data key, other namespace: the envelope names its stored name, so it fails."""
    key = f"moved:{uuid.uuid4().hex}"
    data_key = base64.b64decode(tls_redis.material.data_key)
    other = Keyring(data_key, prefix="other:")
    other_name = other.primary.name(key.encode())
    blob = other.seal(other_name, key.encode(), SECRET)
    raw_client(tls_redis).set(cache.stored_name(key), blob)
    assert cache.get(key) is None


def test_value_sealed_for_another_logical_key__fails(
    cache: SecureCache, tls_redis: TlsRedisServer
) -> None:
    """Right key and right name, but sealed for a different logical key: refused."""
    key = f"logical:{uuid.uuid4().hex}"
    keyring = Keyring(base64.b64decode(tls_redis.material.data_key), prefix=tls_redis.key_prefix)
    name = cache.stored_name(key)
    forged = keyring.seal(name, b"some-other-key", SECRET)
    raw_client(tls_redis).set(name, forged)
    assert cache.get(key) is None


def test_integrity_event__logs_only_the_opaque_name(
    cache: SecureCache, tls_redis: TlsRedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"logged:{uuid.uuid4().hex}"
    cache.set(key, SECRET)
    name = cache.stored_name(key)
    raw_client(tls_redis).set(name, SECRET)
    with caplog.at_level(logging.WARNING, logger="secure_cache"):
        assert cache.get(key) is None
    lines = [r.getMessage() for r in caplog.records if r.name == "secure_cache"]
    assert f"event=integrity_failure key={name.decode()}" in lines
    text = "\n".join(lines)
    assert key not in text
    assert "confidential" not in text


def test_wrong_data_key__reads_misses(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    """A client holding another key computes other names and cannot open our envelopes."""
    key = f"wrongkey:{uuid.uuid4().hex}"
    with SecureCache.from_env(cache_environ(tls_redis, tmp_path / "a")) as owner:
        owner.set(key, SECRET)
        name = owner.stored_name(key)
    with SecureCache.from_env(
        cache_environ(tls_redis, tmp_path / "b", data_key=new_data_key())
    ) as intruder:
        assert intruder.get(key) is None  # different name: a plain miss
        blob = raw_client(tls_redis).get(name)
        assert blob is not None
        raw_client(tls_redis).set(intruder.stored_name(key), blob)
        assert intruder.get(key) is None  # our envelope under its name: fails to open
        assert intruder.events.count("integrity_failures") == 1
