"""scripts/bench.py's tls_aes column: tls_transport plus the application layer's AES-256-GCM
and nothing else, so that tls_aes / tls_transport is what the cipher alone costs inside a
round trip (docs/client.md, "Benchmark"). A column that skipped the cipher would
report a floor of 1.0 and hide it; these tests read what it stored."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scripts import bench
from secure_cache.crypto import NONCE_BYTES, TAG_BYTES
from tests.support.tls_redis import TlsRedisServer


def _stored(server: TlsRedisServer, name: str) -> bytes:
    admin = server.app_redis()
    try:
        raw = admin.get(name)
    finally:
        admin.close()
    assert isinstance(raw, bytes)
    return raw


def _opens_to(aead: AESGCM, raw: bytes, value: bytes) -> bool:
    nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    return len(sealed) == len(value) + TAG_BYTES and aead.decrypt(nonce, sealed, None) == value


def test_tls_aes__sequential_and_pipelined_store_sealed_values_under_fresh_nonces() -> None:
    value = os.urandom(10 * 1024)
    keys = [f"cache:bench:aes:{i}" for i in range(4)]
    with bench.tls_server() as server:
        column = bench.TlsAes(server)
        try:
            column.check(keys[0], value)
            column.seq(keys, value, 4)
            after_seq = [_stored(server, k) for k in keys]
            column.pipe(keys, value, 1)
            after_pipe = [_stored(server, k) for k in keys]
        finally:
            column.close()
    stored = after_seq + after_pipe
    assert all(value not in raw for raw in stored)
    assert all(_opens_to(column.aead, raw, value) for raw in stored)
    assert len({raw[:NONCE_BYTES] for raw in stored}) == len(stored), "a nonce repeated"
