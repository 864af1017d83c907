"""Key rotation end to end: old entries stay readable, move in batches, none is lost.

The pass runs as a stack runs it: under its own ACL user (`rotation`, infra/redis_acl.py), in
a client of its own beside the serving app's, which may not WATCH."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from infra.redis_conf import output_limit_bytes
from secure_cache import SecureCache
from secure_cache.core import BatchPlan
from secure_cache.crypto import Keyring
from tests.support.cache_env import (
    FakeClock,
    cache_environ,
    new_data_key,
    raw_client,
    rotation_environ,
    stored_names,
)
from tests.support.cache_shells import open_cache
from tests.support.envelopes import version_2_envelope
from tests.support.tls_redis import TlsRedisServer

WITH_TTL = 120
WITHOUT_TTL = 40


def _kid(data_key: str) -> str:
    return Keyring(base64.b64decode(data_key)).primary.key_id_hex


@pytest.fixture
def old_entries(server: TlsRedisServer, tmp_path: Path) -> dict[str, bytes]:
    """Entries written by a client that only knows the old (current fixture) key."""
    entries = {f"rot:{i}": os.urandom(100 + i) for i in range(WITH_TTL + WITHOUT_TTL)}
    keys = list(entries)
    with SecureCache.from_env(cache_environ(server, tmp_path / "old")) as before:
        before.set_many({k: entries[k] for k in keys[:WITH_TTL]}, ttl=3600)
        before.set_many({k: entries[k] for k in keys[WITH_TTL:]})
    return entries


def test_rotation__moves_every_entry_and_loses_none(
    shell: str, server: TlsRedisServer, old_entries: dict[str, bytes], tmp_path: Path
) -> None:
    old_key, new_key = server.material.data_key, new_data_key()
    prefix = server.key_prefix.encode()
    rotating_env = cache_environ(
        server, tmp_path / "rotating", data_key=new_key, previous_keys=(old_key,)
    )
    rotator_env = rotation_environ(
        server, tmp_path / "rotator", data_key=new_key, previous_keys=(old_key,)
    )
    expected = dict(old_entries)
    with open_cache(shell, rotating_env) as rotating, open_cache(shell, rotator_env) as rotator:
        # Reads find entries under the previous key's names before any rotation.
        assert rotating.get_many(list(old_entries)) == old_entries
        assert rotating.get("rot:3") == old_entries["rot:3"]
        # New writes use the primary key.
        rotating.set("rot:new", b"fresh")
        assert rotating.stored_name("rot:new").startswith(prefix + _kid(new_key).encode())
        expected["rot:new"] = b"fresh"
        # A value rewritten during the rotation period must win over its old entry...
        rotating.set("rot:0", b"rewritten")
        expected["rot:0"] = b"rewritten"
        # ... and a key deleted meanwhile must not come back.
        assert rotating.delete("rot:1") is True
        del expected["rot:1"]

        # An interrupted pass (one batch) leaves every entry readable.
        partial = rotator.rotate(batch_size=40, max_batches=1)
        assert not partial.complete
        assert partial.migrated > 0
        assert partial.remaining > 0
        assert rotating.get_many(list(expected)) == expected

        # Running it again finishes the job.
        final = rotator.rotate(batch_size=40)
        assert final.complete
        assert final.remaining == 0
        assert partial.migrated + final.migrated + partial.superseded + final.superseded == (
            len(old_entries) - 1  # rot:1 was deleted before the rotation
        )
        assert partial.superseded + final.superseded == 1  # rot:0

    old_kid = prefix + _kid(old_key).encode()
    assert not [n for n in stored_names(server) if n.startswith(old_kid)]

    # The old key can now be dropped: a client with only the new key reads everything.
    with open_cache(shell, cache_environ(server, tmp_path / "after", data_key=new_key)) as after:
        assert after.get_many([*old_entries, "rot:new"]) == expected
        assert after.get("rot:1") is None
        raw = raw_client(server, rotation=True)  # PTTL: the app's user may not
        keys = list(old_entries)
        assert raw.pttl(after.stored_name(keys[5])) > 0  # TTL carried over
        assert raw.pttl(after.stored_name(keys[-1])) == -1  # no TTL stays no TTL


def test_rotation__discards_unreadable_entries_and_counts_them(
    shell: str, server: TlsRedisServer, old_entries: dict[str, bytes], tmp_path: Path
) -> None:
    old_key, new_key = server.material.data_key, new_data_key()
    env = cache_environ(server, tmp_path / "r", data_key=new_key, previous_keys=(old_key,))
    pass_env = rotation_environ(server, tmp_path / "p", data_key=new_key, previous_keys=(old_key,))
    with open_cache(shell, env) as rotating, open_cache(shell, pass_env) as rotator:
        victim = Keyring(base64.b64decode(old_key), prefix=server.key_prefix).primary.name(b"rot:7")
        raw_client(server).set(victim, b"tampered, not an envelope")
        report = rotator.rotate(batch_size=100)
        assert report.complete
        assert report.discarded == 1
        assert rotator.events.count("integrity_failures") == 1
        assert rotating.get("rot:7") is None
        assert rotating.get("rot:8") == old_entries["rot:8"]


def test_rotation__concurrent_change_aborts_the_batch_and_is_retried(
    shell: str, server: TlsRedisServer, old_entries: dict[str, bytes], tmp_path: Path
) -> None:
    """WATCH catches a delete made between reading a batch and committing it."""
    old_key, new_key = server.material.data_key, new_data_key()
    env = cache_environ(server, tmp_path / "r", data_key=new_key, previous_keys=(old_key,))
    pass_env = rotation_environ(server, tmp_path / "p", data_key=new_key, previous_keys=(old_key,))
    raw = raw_client(server)
    with open_cache(shell, env) as rotating, open_cache(shell, pass_env) as rotator:
        core = rotator._core
        real_plan = core.plan_batch
        deleted: list[bytes] = []

        def plan_with_concurrent_delete(
            names: list[bytes], raws: list[Any], pttls: list[Any]
        ) -> BatchPlan:
            plan = real_plan(names, raws, pttls)
            if not deleted:  # another client deletes an entry of this batch right now
                deleted.append(names[0])
                raw.delete(names[0])
            return plan

        core.plan_batch = plan_with_concurrent_delete  # type: ignore[method-assign]
        report = rotator.rotate(batch_size=500)
        assert report.complete
        assert report.conflicts == 0  # the retry succeeded
        assert report.migrated == len(old_entries) - 1
        assert len(deleted) == 1
        missing = [k for k in old_entries if rotating.get(k) is None]
        assert len(missing) == 1  # the concurrently deleted entry stayed deleted


def test_rotation__without_previous_keys_is_a_complete_no_op(
    shell: str, server: TlsRedisServer, tmp_path: Path
) -> None:
    with open_cache(shell, rotation_environ(server, tmp_path / "r")) as cache:
        report = cache.rotate()
    assert report.complete
    assert report.batches == 0


def test_rotation__values_larger_than_one_reply_move_with_the_default_batch(
    tls_redis_factory: Any, tmp_path: Path
) -> None:
    # One MGET of this batch would be a 36 MiB reply, past the output-buffer limit Redis
    # disconnects at; the pass reads and writes it in byte-bounded groups instead (core.py).
    server = tls_redis_factory(maxmemory_mb=192)
    count, size = 40, 900 * 1024
    assert count * size > output_limit_bytes()
    entries = {f"large:{i}": os.urandom(size) for i in range(count)}
    with SecureCache.from_env(cache_environ(server, tmp_path / "old")) as before:
        for key, value in entries.items():
            before.set(key, value)
    old_key, new_key = server.material.data_key, new_data_key()
    rotating_env = cache_environ(
        server, tmp_path / "rotating", data_key=new_key, previous_keys=(old_key,)
    )
    rotator_env = rotation_environ(
        server, tmp_path / "rotator", data_key=new_key, previous_keys=(old_key,)
    )
    with SecureCache.from_env(rotating_env) as rotating, SecureCache.from_env(rotator_env) as rot:
        report = rot.rotate()
        assert (report.complete, report.migrated, report.batches) == (True, count, 1)
        for key, value in entries.items():
            assert rotating.get(key) == value
    old_kid = server.key_prefix.encode() + _kid(old_key).encode()
    assert not [n for n in stored_names(server) if n.startswith(old_kid)]


def test_rotation__keeps_each_entry_s_expiry_and_redis_s_ttl_consistent_with_it(
    shell: str, server: TlsRedisServer, tmp_path: Path
) -> None:
    """The expiry sealed in a version-3 envelope (crypto.py, "Expiry") moves with the entry
    byte for byte, Redis's TTL with it (never longer than before); a version-2 entry, which
    carries none, is given the expiry of its remaining TTL. The wall clock is injected, so
    the expiry the rotator writes is checked by order alone, not by timing."""
    old_key, new_key = server.material.data_key, new_data_key()
    old_ring = Keyring(base64.b64decode(old_key), prefix=server.key_prefix)
    app, rotation = raw_client(server), raw_client(server, rotation=True)
    wall = FakeClock(1_800_000_000.0)  # the writer's and the rotator's
    with open_cache(shell, cache_environ(server, tmp_path / "old"), wall_clock=wall) as before:
        before.set("exp:v3", b"sealed with its expiry", ttl=3600)
        before.set("exp:none", b"no ttl")
        old_v3 = app.get(before.stored_name("exp:v3"))
    name_v2, envelope_v2 = version_2_envelope(old_ring, b"exp:v2", b"written by version 2")
    app.set(name_v2, envelope_v2, ex=1800)
    assert isinstance(old_v3, bytes)
    assert old_v3[0] == 3
    pttl_v3 = rotation.pttl(old_ring.primary.name(b"exp:v3"))
    pttl_v2 = rotation.pttl(name_v2)
    env = rotation_environ(server, tmp_path / "p", data_key=new_key, previous_keys=(old_key,))
    with open_cache(shell, env, wall_clock=wall) as rotator:
        report = rotator.rotate(batch_size=10)
    assert (report.migrated, report.expired, report.complete) == (3, 0, True)
    with open_cache(shell, cache_environ(server, tmp_path / "new", data_key=new_key)) as after:
        new_v3, new_v2, new_none = (after.stored_name(k) for k in ("exp:v3", "exp:v2", "exp:none"))
        moved_v3, moved_v2, moved_none = (app.get(n) for n in (new_v3, new_v2, new_none))
        assert isinstance(moved_v3, bytes)
        assert isinstance(moved_v2, bytes)
        assert isinstance(moved_none, bytes)
        assert moved_v3[18:26] == old_v3[18:26]  # the same expiry, byte for byte
        assert int.from_bytes(moved_v3[18:26], "big") == 1_800_003_600_000
        assert 0 < rotation.pttl(new_v3) <= pttl_v3  # and Redis's TTL carried, not renewed
        assert 0 < rotation.pttl(new_v2) <= pttl_v2
        # Version 2's entry: the rotator's now plus the TTL it read, which lies between the
        # TTL before the pass and the TTL left after it.
        given = int.from_bytes(moved_v2[18:26], "big") - 1_800_000_000_000
        assert rotation.pttl(new_v2) <= given <= pttl_v2
        assert moved_none[18:26] == bytes(8)
        assert rotation.pttl(new_none) == -1
        assert after.get_many(["exp:v3", "exp:v2", "exp:none"]) == {
            "exp:v3": b"sealed with its expiry",
            "exp:v2": b"written by version 2",
            "exp:none": b"no ttl",
        }
