"""After a data-key rotation, the exporter's `rewrite-aof` leaves no envelope of the retired
key in Redis's files.

A real TLS redis-server with the stack's redis.conf (appendonly, `save ""`) and ACL, the
exporter's user among them (tests/support/exporter_redis.py: EXPORTER_COMMANDS, now with
BGREWRITEAOF). What the rotation does to one entry is played as the stack's identities do it:
the app SETs an envelope sealed with the old key under the old key's name; the rotation pass's
identity SETs its re-sealed form under the new name and DELs the old, in one transaction.
Redis's append-only file then holds the old envelope (Redis rewrites it on its own only past
64 MB); after `python -m secure_cache.redis_exporter rewrite-aof` the data directory holds
only the manifest and the parts it names (infra/aof_files.py), with the new envelope and
without the old one.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.aof_files import AOF_DIR, MANIFEST, left_behind
from secure_cache import redis_exporter
from tests.support.cache_env import raw_client
from tests.support.exporter_redis import ExporterRedis, running_exporter_redis

AOF_WAIT_S = 10.0
OLD_KEY_ID = bytes.fromhex("0badc0de")
NEW_KEY_ID = bytes.fromhex("5eed1e55")


@pytest.fixture
def exporter_redis(tmp_path: Path) -> Iterator[ExporterRedis]:
    with running_exporter_redis(tmp_path) as setup:
        yield setup


def _envelope(key_id: bytes) -> bytes:
    """Version byte, key id, then what a sealed value looks like: random bytes."""
    return b"\x03" + key_id + secrets.token_bytes(200)


def _files(data_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(data_dir)): p.read_bytes() for p in data_dir.rglob("*") if p.is_file()
    }


def _holding(needle: bytes, data_dir: Path) -> list[str]:
    return sorted(name for name, data in _files(data_dir).items() if needle in data)


def _rotate_one_entry(setup: ExporterRedis) -> tuple[bytes, bytes]:
    prefix = setup.server.key_prefix
    old, new = _envelope(OLD_KEY_ID), _envelope(NEW_KEY_ID)
    app = raw_client(setup.server)
    app.set(f"{prefix}{OLD_KEY_ID.hex()}:entry", old)
    app.close()
    rotation = raw_client(setup.server, rotation=True)
    with rotation.pipeline(transaction=True) as pipe:
        pipe.set(f"{prefix}{NEW_KEY_ID.hex()}:entry", new, nx=True)
        pipe.delete(f"{prefix}{OLD_KEY_ID.hex()}:entry")
        pipe.execute()
    rotation.close()
    return old, new


def _wait_until_the_aof_holds(needle: bytes, data_dir: Path) -> None:
    """appendfsync everysec: Redis may answer before it writes (test_redis_aof_transactions)."""
    deadline = time.monotonic() + AOF_WAIT_S
    while not _holding(needle, data_dir):
        assert time.monotonic() < deadline, f"the write is not in {data_dir} after {AOF_WAIT_S} s"
        time.sleep(0.05)


def test_rewrite_aof__the_retired_keys_envelopes_are_in_the_aof_before_and_gone_after(
    exporter_redis: ExporterRedis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = exporter_redis.server.data_dir
    old, new = _rotate_one_entry(exporter_redis)
    _wait_until_the_aof_holds(new, data_dir)
    assert _holding(old, data_dir) == [f"{AOF_DIR}/appendonly.aof.1.incr.aof"]

    settings = exporter_redis.settings()
    env = {
        "REDIS_URL": exporter_redis.server.url,
        "REDIS_USERNAME": settings.username,
        "REDIS_PASSWORD": settings.password,
        "REDIS_TLS_CA_CERT": settings.ca_file,
        "REDIS_TLS_CERT_FILE": settings.cert_file,
        "REDIS_TLS_KEY_FILE": settings.key_file,
        "ENVIRONMENT": "development",
    }
    monkeypatch.setattr(os, "environ", env)
    assert redis_exporter.main(["rewrite-aof", "--timeout", "60"]) == 0
    assert "rewrite-aof: Redis rewrote its append-only file" in capsys.readouterr().out

    # Redis deletes the older parts from a background thread, right after the rewrite.
    deadline = time.monotonic() + AOF_WAIT_S
    while left := left_behind(_files(data_dir), (data_dir / AOF_DIR / MANIFEST).read_text()):
        assert time.monotonic() < deadline, f"older files left after the rewrite: {left}"
        time.sleep(0.05)
    assert _holding(old, data_dir) == []
    assert _holding(new, data_dir) == [f"{AOF_DIR}/appendonly.aof.2.base.rdb"]
    assert (
        raw_client(exporter_redis.server).get(
            f"{exporter_redis.server.key_prefix}{NEW_KEY_ID.hex()}:entry"
        )
        == new
    )
