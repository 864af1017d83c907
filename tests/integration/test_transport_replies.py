"""How the transports read a batch's replies (transport._drain), against a real TLS
redis-server: the replies already in hiredis's buffer are taken from its reader instead of
one redis-py read_response each, and every reply still lands in its place, error replies
included, with the connection left in step.

How many replies went through read_response is observed with a spy that counts the calls
and then reads unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secure_cache.errors import BackendUnavailable, CommandRejected
from secure_cache.resp import pack_command
from secure_cache.settings import load_settings
from secure_cache.transport import (
    AsyncTransport,
    Transport,
    TransportConfig,
    _AsyncTlsConnection,
    _TlsConnection,
)
from tests.support.cache_env import cache_environ, rotation_environ
from tests.support.tls_redis import TlsRedisServer

BATCH = 100


def _config(server: TlsRedisServer, tmp_path: Path) -> TransportConfig:
    settings = load_settings(cache_environ(server, tmp_path / "s"))
    return TransportConfig.from_settings(settings, retries=0)


def _rotation_config(server: TlsRedisServer, tmp_path: Path) -> TransportConfig:
    """The rotation pass's identity: its ACL user may run MULTI/EXEC (infra/redis_acl.py)."""
    settings = load_settings(rotation_environ(server, tmp_path / "r"))
    return TransportConfig.from_settings(settings, retries=0)


def _packed(*commands: tuple[bytes, ...]) -> tuple[bytes]:
    return (b"".join(pack_command(command) for command in commands),)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per read_response call, sync or async."""
    calls: list[int] = []
    sync_read = _TlsConnection.read_response
    async_read = _AsyncTlsConnection.read_response

    def counted(self: _TlsConnection, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return sync_read(self, *args, **kwargs)

    async def acounted(self: _AsyncTlsConnection, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await async_read(self, *args, **kwargs)

    monkeypatch.setattr(_TlsConnection, "read_response", counted)
    monkeypatch.setattr(_AsyncTlsConnection, "read_response", acounted)
    return calls


@pytest.fixture
def transport(tls_redis: TlsRedisServer, tmp_path: Path) -> Iterator[Transport]:
    t = Transport(_config(tls_redis, tmp_path))
    try:
        t.execute(b"PING")
        yield t
    finally:
        t.close()


def test_a_batch_s_buffered_replies__come_from_the_reader_each_in_its_place(
    transport: Transport, reads: list[int]
) -> None:
    keys = [b"cache:drain:%d" % i for i in range(BATCH)]
    sets = [(b"SET", key, b"value %d" % i) for i, key in enumerate(keys)]
    assert transport.execute_many(_packed(*sets), BATCH) == [b"OK"] * BATCH
    # 100 short replies arrive in one or a few TLS records: without the drain every one
    # of them was a read_response call.
    assert len(reads) < BATCH // 4
    del reads[:]
    gets = [(b"GET", key) for key in keys]
    assert transport.execute_many(_packed(*gets), BATCH) == [b"value %d" % i for i in range(BATCH)]
    assert len(reads) < BATCH // 4


def test_an_error_reply_inside_a_drained_batch__rejects_it_and_the_connection_stays_in_step(
    transport: Transport,
) -> None:
    commands = [(b"SET", b"cache:drain:err", b"1"), (b"FLUSHDB",), (b"GET", b"cache:drain:err")]
    with pytest.raises(CommandRejected, match="flushdb"):
        transport.execute_many(_packed(*commands * 20), 60)
    # The same pooled connection: its next reply is its own, not one left from the batch.
    assert transport.execute(b"GET", b"cache:drain:err") == b"1"
    assert transport.execute(b"PING") == b"PONG"


def test_a_connection_error_reply_inside_a_drained_batch__fails_as_redis_py_raises_it(
    transport: Transport,
) -> None:
    # WRONGPASS is a ConnectionError for redis-py (AuthenticationError), raised, not returned.
    commands = [(b"PING",)] * 10 + [(b"AUTH", b"app", b"not-the-password")] + [(b"PING",)] * 10
    with pytest.raises(BackendUnavailable, match="AuthenticationError"):
        transport.execute_many(_packed(*commands), len(commands))
    assert transport.execute(b"PING") == b"PONG"  # on a fresh connection


def test_coalesced_callers__each_get_their_own_replies_mostly_from_the_reader(
    tls_redis: TlsRedisServer, tmp_path: Path, reads: list[int]
) -> None:
    async def run() -> None:
        transport = AsyncTransport(_config(tls_redis, tmp_path))
        try:
            await transport.execute(b"PING")
            await asyncio.gather(
                *(transport.execute(b"SET", b"cache:drain:a%d" % i, b"%d" % i) for i in range(50))
            )
            del reads[:]
            got = await asyncio.gather(
                *(transport.execute(b"GET", b"cache:drain:a%d" % i) for i in range(50))
            )
            assert got == [b"%d" % i for i in range(50)]
            # The 50 GETs share one write (test_async_coalescing.py); their replies arrive
            # together and most are taken from the reader.
            assert len(reads) < 25
        finally:
            await transport.close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


def test_a_session_s_transaction__reads_its_queued_replies_from_the_reader(
    tls_redis: TlsRedisServer, tmp_path: Path, reads: list[int]
) -> None:
    # What a rotation batch sends (client.rotate): MULTI, its SETs, EXEC.
    sets = [(b"SET", b"cache:drain:t%d" % i, b"%d" % i) for i in range(BATCH)]
    transport = Transport(_rotation_config(tls_redis, tmp_path))
    try:
        with transport.session() as run:
            replies = run([(b"MULTI",), *sets, (b"EXEC",)])
    finally:
        transport.close()
    assert replies[0] == b"OK"
    assert replies[1:-1] == [b"QUEUED"] * BATCH
    assert replies[-1] == [b"OK"] * BATCH
    assert len(reads) < BATCH // 4


def test_an_async_session_s_transaction__reads_its_queued_replies_from_the_reader(
    tls_redis: TlsRedisServer, tmp_path: Path, reads: list[int]
) -> None:
    sets = [(b"SET", b"cache:drain:u%d" % i, b"%d" % i) for i in range(BATCH)]

    async def run() -> list[Any]:
        transport = AsyncTransport(_rotation_config(tls_redis, tmp_path))
        try:
            async with transport.session() as send:
                return await send([(b"MULTI",), *sets, (b"EXEC",)])
        finally:
            await transport.close()

    loop = asyncio.new_event_loop()
    try:
        replies = loop.run_until_complete(run())
    finally:
        loop.close()
    assert replies[1:-1] == [b"QUEUED"] * BATCH
    assert replies[-1] == [b"OK"] * BATCH
    assert len(reads) < BATCH // 4


def test_a_connection_error_reply_among_coalesced_callers__fails_its_owner_and_those_after(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    # With no retries, what each caller gets is what its read gave it: the callers before
    # the WRONGPASS reply were answered, as when each caller read its own reply.
    async def run() -> list[Any]:
        transport = AsyncTransport(_config(tls_redis, tmp_path))
        try:
            for i in range(10):
                await transport.execute(b"SET", b"cache:drain:c%d" % i, b"%d" % i)
            return await asyncio.gather(
                *(transport.execute(b"GET", b"cache:drain:c%d" % i) for i in range(5)),
                transport.execute(b"AUTH", b"app", b"not-the-password"),
                *(transport.execute(b"GET", b"cache:drain:c%d" % i) for i in range(5, 10)),
                return_exceptions=True,
            )
        finally:
            await transport.close()

    loop = asyncio.new_event_loop()
    try:
        got = loop.run_until_complete(run())
    finally:
        loop.close()
    assert got[:5] == [b"0", b"1", b"2", b"3", b"4"]
    assert all(isinstance(result, BackendUnavailable) for result in got[5:]), got[5:]
    assert "AuthenticationError" in str(got[5])
