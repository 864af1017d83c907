"""The client's per-reply byte limit (max_reply_bytes, transport.reply_limit_bytes) against a
real TLS redis-server configured as a stack's (infra/redis_conf.py): what the client splits
so that each reply fits it, and what the server itself cuts.

A get_many of more values than one reply holds is MGETs of at most reply_values names, sent
in one write (core.CacheCore.get_many); a rotation transaction reads at most half of the
limit (core.rotation_group_bytes); the CLI's client derives its limit from
HTTP_MAX_VALUE_BYTES as the HTTP service's does (transport.cache_options).
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import hiredis
import pytest

import secure_cache.__main__ as cli
from infra.redis_conf import output_limit_bytes
from secure_cache import AsyncSecureCache
from secure_cache.resp import pack_command
from secure_cache.transport import reply_limit_bytes
from tests.support.cache_env import cache_environ, new_data_key, rotation_environ
from tests.support.cache_shells import open_cache
from tests.support.event_loops import RunOnLoop
from tests.support.tls_redis import TlsRedisServer

_VALUE = 900 << 10


def test_get_many_past_one_reply__is_read_in_mgets_that_each_fit_it(
    shell: str, server: TlsRedisServer, tmp_path: Path
) -> None:
    # 16 values of 900 KiB (14.4 MB) with a limit of 8 MiB: 4 of the largest (1 MiB) values
    # a reply, so 4 MGETs of 4, each about 3.6 MB. One MGET of the 16 was refused past the
    # limit: {} and the fallback. 14.4 MB stays below the server's soft output limit
    # (16 MiB), so a slow read on a loaded machine cannot trip it either.
    env = cache_environ(server, tmp_path / "s")
    with open_cache(shell, env, max_reply_bytes=8 << 20) as cache:
        values = {f"big:{i}": os.urandom(_VALUE) for i in range(16)}  # incompressible
        cache.set_many(values)
        assert cache.get_many(list(values)) == values
        assert cache.get_many(["big:3", "absent", "big:15"]) == {
            "big:3": values["big:3"],
            "big:15": values["big:15"],
        }
        status = cache.status()
        assert status["backend"] == "redis"
        assert status["fallback"]["last_failure"] is None


def _pipelined_mgets(server: TlsRedisServer, names: list[bytes], groups: list[int]) -> int:
    """MGETs of `groups` names each, in one write on a connection of its own: how many of
    their replies were read before the server closed the connection (all: it did not)."""
    ctx = server.client_ssl_context()
    with ctx.wrap_socket(
        socket.create_connection((server.host, server.port), timeout=30),
        server_hostname="localhost",
    ) as conn:
        reader = hiredis.Reader()

        def replies(wanted: int) -> int:
            read = 0
            while read < wanted:
                if reader.gets() is not False:
                    read += 1
                    continue
                try:
                    data = conn.recv(1 << 16)
                except OSError:  # a reset, or TLS's EOF without close_notify (ssl.SSLError)
                    break
                if not data:
                    break
                reader.feed(data)
            return read

        conn.sendall(pack_command((b"AUTH", b"app", server.material.app_password.encode())))
        assert replies(1) == 1
        packed, start = [], 0
        for count in groups:
            packed.append(pack_command((b"MGET", *names[start : start + count])))
            start += count
        conn.sendall(b"".join(packed))
        return replies(len(groups))


def test_the_stack_s_redis__cuts_a_write_of_mgets_whose_replies_together_pass_its_limit(
    tls_redis_factory: Any,
) -> None:
    """What the split cannot change, measured on the stack's redis.conf (Redis 7.0.15):
    Redis runs every command of a write before it sends any reply, so the replies of one
    write are held together against its output-buffer limit (32 MiB for 1 MiB values),
    however fast the client reads. 40 values of 900 KiB (36.9 MB) in MGETs of 16, 16 and 8
    are cut before the first reply; 32 of them (29.5 MB) in two MGETs are read. A get_many
    of more than 32 MiB of values cannot be read from such a Redis in one round trip
    (docs/client.md)."""
    server = tls_redis_factory(maxmemory_mb=256)
    redis = server.app_redis()
    names = [f"{server.key_prefix}big:{i}".encode() for i in range(40)]
    for name in names:
        redis.set(name, os.urandom(_VALUE))
    assert output_limit_bytes() == 32 << 20
    assert _pipelined_mgets(server, names, [16, 16]) == 2
    assert _pipelined_mgets(server, names, [16, 16, 8]) == 0


def test_concurrent_gets_of_large_values__are_not_cut_together_by_the_server_s_limit(
    tls_redis_factory: Any, tmp_path: Path, run: RunOnLoop
) -> None:
    # 40 tasks each GET one 900 KiB value (36.9 MB in all) from one AsyncSecureCache, as the
    # HTTP service's requests do. Each call is far within the limit, but coalesced into one
    # write their replies were held together against the server's 32 MiB output-buffer
    # limit and cut: all 40 failed and the client went to its fallback (memory).
    server = tls_redis_factory(maxmemory_mb=256)  # no eviction: the values and the replies fit
    values = {f"big:{i}": os.urandom(_VALUE) for i in range(40)}

    async def scenario() -> tuple[list[bytes | None], dict[str, Any]]:
        cache = await AsyncSecureCache.from_env(cache_environ(server, tmp_path / "s"))
        try:
            await cache.set_many(values)
            got = await asyncio.gather(*(cache.get(key) for key in values))
            return list(got), await cache.status()
        finally:
            await cache.close()

    got, status = run(scenario())
    assert got == list(values.values())
    assert status["backend"] == "redis"
    assert status["fallback"]["last_failure"] is None


def test_rotation__with_a_smaller_reply_limit__reads_transactions_within_it(
    shell: str, server: TlsRedisServer, tmp_path: Path
) -> None:
    # 24 values of 100 KiB (2.4 MB) under the old key, a rotating client whose replies hold
    # 1 MiB: a transaction reads half of it. With the fixed 8 MiB groups the batch was one
    # MGET of 2.4 MB, refused on every batch (BackendUnavailable out of rotate()).
    old_key, new_key = server.material.data_key, new_data_key()
    values = {f"rot:{i}": os.urandom(100 << 10) for i in range(24)}
    with open_cache(shell, cache_environ(server, tmp_path / "old")) as before:
        before.set_many(values)
    rotator_env = rotation_environ(
        server, tmp_path / "rotator", data_key=new_key, previous_keys=(old_key,)
    )
    with open_cache(shell, rotator_env, max_reply_bytes=1 << 20) as rotator:
        report = rotator.rotate()
    assert (report.migrated, report.complete) == (24, True)
    after_env = cache_environ(server, tmp_path / "new", data_key=new_key)
    with open_cache(shell, after_env) as after:
        assert after.get_many(list(values)) == values


def test_the_cli_s_client__derives_its_limit_from_http_max_value_bytes(
    tls_redis: TlsRedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the HTTP service's (service.cache_options): both go through transport.cache_options.
    # The CLI's used the library's default (32 MiB) whatever HTTP_MAX_VALUE_BYTES said.
    for name, value in cache_environ(tls_redis, tmp_path / "s").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HTTP_MAX_VALUE_BYTES", str(5 << 20))
    seen: dict[str, int] = {}

    def status(cache: Any, _args: object) -> int:
        config = cache._transport.config
        seen.update(reply=config.max_reply_bytes, value=config.max_value_bytes)
        return 0

    monkeypatch.setitem(cli._COMMANDS, "status", status)
    assert cli.main(["status"]) == 0
    assert seen == {"reply": reply_limit_bytes(5 << 20), "value": 5 << 20}
    assert seen["reply"] == output_limit_bytes(5 << 20)
