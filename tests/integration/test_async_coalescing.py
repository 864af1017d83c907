"""AsyncTransport's coalescing of concurrent calls (auto-pipelining), against a real TLS
redis-server: ordering, per-caller errors, cancellation and a connection lost mid-batch,
each on asyncio's loop and on uvloop's (the `run` fixture, tests/integration/conftest.py).

Which calls share a write is observed with a spy around redis-py's send_packed_command
that records each write and then sends it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from secure_cache.errors import BackendUnavailable, CommandRejected
from secure_cache.resp import Deferred, pack_get
from secure_cache.settings import load_settings
from secure_cache.transport import (
    AsyncTransport,
    TransportConfig,
    _AsyncTlsConnection,
    shared_write,
)
from tests.support.cache_env import cache_environ
from tests.support.event_loops import RunOnLoop
from tests.support.tls_redis import TlsRedisServer


class Writes:
    """Every write the transports make: (connection, number of commands in it)."""

    def __init__(self) -> None:
        self.log: list[tuple[_AsyncTlsConnection, int]] = []
        self.sent = asyncio.Event()
        # Set by a test: called instead of sending; True means the write was lost.
        self.lose: Callable[[_AsyncTlsConnection], bool] = lambda _conn: False


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    spy = Writes()
    real = _AsyncTlsConnection.send_packed_command

    async def recording(self: _AsyncTlsConnection, command: Any, check_health: bool = True) -> None:
        if self.is_connected and spy.lose(self):
            return
        await real(self, command, check_health)
        spy.log.append((self, b"".join(command).count(b"\r\n*") + 1))
        spy.sent.set()

    monkeypatch.setattr(_AsyncTlsConnection, "send_packed_command", recording)
    return spy


def _transport(server: TlsRedisServer, tmp_path: Path, **options: Any) -> AsyncTransport:
    settings = load_settings(cache_environ(server, tmp_path / "s"))
    return AsyncTransport(TransportConfig.from_settings(settings, **options))


@contextlib.asynccontextmanager
async def _connected(
    server: TlsRedisServer, tmp_path: Path, writes: Writes, **options: Any
) -> AsyncIterator[AsyncTransport]:
    """A transport with one connection open; `writes` counts from here on."""
    transport = _transport(server, tmp_path, **options)
    try:
        await transport.execute(b"PING")
        writes.log.clear()
        writes.sent.clear()
        yield transport
    finally:
        await transport.close()


def test_concurrent_calls__share_one_write_and_each_gets_its_own_reply_in_order(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop, writes: Writes
) -> None:
    async def scenario() -> list[Any]:
        async with _connected(tls_redis, tmp_path, writes) as transport:
            sets = [transport.execute(b"SET", b"cache:co:%d" % i, b"v%d" % i) for i in range(50)]
            await asyncio.gather(*sets)
            gets = [transport.execute(b"GET", b"cache:co:%d" % i) for i in range(50)]
            return list(await asyncio.gather(*gets))

    assert run(scenario()) == [b"v%d" % i for i in range(50)]
    # 100 calls, two turns of the event loop: one write each, on the one connection.
    assert [count for _, count in writes.log] == [50, 50]
    assert len({id(conn) for conn, _ in writes.log}) == 1


def test_calls_reading_values__share_a_write_only_up_to_one_reply_s_worth(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop, writes: Writes
) -> None:
    # 40 GETs of one value each and 10 SETs in one turn. With the default limits one reply
    # holds 16 of the largest values (transport.reply_values), so the GETs go in writes of
    # at most 16 stored values, each on a connection of its own; the SETs, which read none,
    # ride along. Coalesced into one write, 40 large values were cut by the server together
    # (tests/integration/test_cache_reply_limit.py).
    async def scenario() -> list[Any]:
        async with _connected(tls_redis, tmp_path, writes) as transport:
            await transport.execute(b"SET", b"cache:co:v", b"v")
            writes.log.clear()
            gets = [transport.execute_packed((pack_get(b"cache:co:v"),), 1) for _ in range(40)]
            sets = [transport.execute(b"SET", b"cache:co:%d" % i, b"s") for i in range(10)]
            return list(await asyncio.gather(*gets, *sets))

    assert run(scenario()) == [b"v"] * 40 + [b"OK"] * 10
    # Each new connection's AUTH is a write of one command of its own.
    batches = [(conn, count) for conn, count in writes.log if count > 1]
    assert sorted(count for _, count in batches) == [16, 16, 18]
    assert len({id(conn) for conn, _ in batches}) == 3


def test_shared_write__takes_callers_while_their_values_fit_and_always_the_first() -> None:
    def queued(values: int) -> Any:
        return ((), 1, None, values)

    assert shared_write([queued(1)] * 20, 16) == 16
    assert shared_write([queued(0)] * 100, 16) == 100
    assert shared_write([queued(40), queued(1)], 16) == 1  # a get_many of its own
    assert shared_write([queued(10), queued(6), queued(1)], 16) == 2
    assert shared_write([], 16) == 0


def test_an_error_reply__rejects_only_its_own_caller(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop, writes: Writes
) -> None:
    async def scenario() -> list[Any]:
        async with _connected(tls_redis, tmp_path, writes) as transport:
            return list(
                await asyncio.gather(
                    transport.execute(b"SET", b"cache:err:a", b"a"),
                    transport.execute(b"FLUSHALL"),  # outside the app's ACL
                    transport.execute_many((b"*1\r\n$4\r\nPING\r\n*1\r\n$7\r\nFLUSHDB\r\n",), 2),
                    transport.execute(b"GET", b"cache:err:a"),
                    return_exceptions=True,
                )
            )

    ok, denied, denied_many, value = run(scenario())
    assert ok == b"OK"
    assert value == b"a"
    assert isinstance(denied, CommandRejected)
    assert denied.acl
    assert isinstance(denied_many, CommandRejected)  # its PING succeeded, its FLUSHDB did not
    assert [count for _, count in writes.log] == [5]  # all four callers in one write


def test_a_caller_cancelled_mid_batch__its_reply_is_dropped_and_the_connection_stays_in_step(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop, writes: Writes
) -> None:
    async def scenario() -> tuple[Any, ...]:
        async with _connected(tls_redis, tmp_path, writes) as transport:
            await transport.execute(b"SET", b"cache:cx:b", b"b")
            writes.log.clear()
            writes.sent.clear()
            first = asyncio.ensure_future(transport.execute(b"SET", b"cache:cx:a", b"a"))
            middle = asyncio.ensure_future(transport.execute(b"GET", b"cache:cx:b"))
            last = asyncio.ensure_future(transport.execute(b"GET", b"cache:cx:a"))
            await writes.sent.wait()  # written; the replies have not been read yet
            middle.cancel()
            results = await asyncio.gather(first, middle, last, return_exceptions=True)
            # The next call on the same connection reads its own reply, not a stale one.
            after = await transport.execute(b"GET", b"cache:cx:b")
            return (*results, after, len(transport._all))

    first, middle, last, after, connections = run(scenario())
    assert first == b"OK"
    assert isinstance(middle, asyncio.CancelledError)
    assert last == b"a"
    assert after == b"b"
    assert connections == 1
    assert [count for _, count in writes.log] == [3, 1]


def test_a_caller_cancelled_before_the_write__is_not_sent(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop, writes: Writes
) -> None:
    async def scenario() -> Any:
        async with _connected(tls_redis, tmp_path, writes) as transport:
            await transport.execute(b"SET", b"cache:cb:k", b"before")
            cancelled = asyncio.ensure_future(transport.execute(b"SET", b"cache:cb:k", b"after"))
            await asyncio.sleep(0)  # queued, not yet written
            cancelled.cancel()
            return await transport.execute(b"GET", b"cache:cb:k")

    assert run(scenario()) == b"before"
    assert [count for _, count in writes.log] == [1, 1]  # the cancelled SET never went out


def test_a_caller_whose_chunks_cannot_be_made__fails_alone_before_the_write(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop, writes: Writes
) -> None:
    """A set_many's values are sealed as its chunks are taken (resp.Deferred), here in the
    flush: an error there belongs to that caller, not to the others sharing the write, and
    the connection (nothing of that call written) stays in the pool."""

    def unsealable() -> Iterator[bytes]:
        yield b"*3\r\n$3\r\nSET\r\n$12\r\ncache:made:x\r\n"
        raise OverflowError("a value too large to seal")

    async def scenario() -> tuple[Any, ...]:
        async with _connected(tls_redis, tmp_path, writes) as transport:
            generation = transport.generation
            results = await asyncio.gather(
                transport.execute(b"SET", b"cache:made:a", b"a"),
                transport.execute_many(Deferred(unsealable()), 1),
                transport.execute(b"GET", b"cache:made:a"),
                return_exceptions=True,
            )
            return (*results, await transport.execute(b"GET", b"cache:made:x"),
                    transport.generation - generation, len(transport._all))  # fmt: skip

    ok, failed, value, stored, reconnects, connections = run(scenario())
    assert (ok, value) == (b"OK", b"a")
    assert isinstance(failed, OverflowError)
    assert stored is None  # not a byte of the failed SET went out
    assert (reconnects, connections) == (0, 1)
    assert [count for _, count in writes.log] == [2, 1]


@pytest.mark.parametrize("retries", [1, 0])
def test_connection_lost_mid_batch__every_waiter_retries_or_fails(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop, writes: Writes, retries: int
) -> None:
    async def scenario() -> list[Any]:
        async with _connected(tls_redis, tmp_path, writes, retries=retries) as transport:
            await transport.execute(b"SET", b"cache:lost:k", b"v")
            dropped: list[_AsyncTlsConnection] = []

            def drop_once(conn: _AsyncTlsConnection) -> bool:
                # The connection dies with the batch's write: nothing reaches Redis, and
                # every reply the waiters expect is lost with it.
                if dropped or conn._writer is None:
                    return False
                dropped.append(conn)
                conn._writer.transport.abort()
                return True

            writes.lose = drop_once
            calls = [transport.execute(b"GET", b"cache:lost:k") for _ in range(20)]
            return list(await asyncio.gather(*calls, return_exceptions=True))

    results = run(scenario())
    # The lost write is not logged; with a retry, the 20 waiters' retries share one write.
    assert [count for _, count in writes.log if count > 1] == ([20] if retries else [])
    if retries:
        assert results == [b"v"] * 20  # each waiter retried on a fresh connection
    else:
        assert all(isinstance(r, BackendUnavailable) for r in results), results
        assert {r.kind for r in results} == {"connection"}


def test_the_flush_cancelled_while_waiting_for_a_connection__its_waiters_fail_not_hang(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop
) -> None:
    async def scenario() -> list[Any]:
        transport = _transport(tls_redis, tmp_path, retries=0, max_connections=1)
        try:
            async with transport.session() as held:  # holds the only connection
                calls = [asyncio.ensure_future(transport.execute(b"PING")) for _ in range(5)]
                while not transport._waiters:  # the flush waits for the connection
                    await asyncio.sleep(0)
                for flush in list(transport._flushes):
                    flush.cancel()
                results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
                await held([(b"PING",)])
            return [*results, await transport.execute(b"PING")]  # and the transport goes on
        finally:
            await transport.close()

    *failed, after = run(scenario())
    assert all(isinstance(r, BackendUnavailable) for r in failed), failed
    assert after == b"PONG"


def test_the_flush_cancelled_before_it_ran__the_next_call_flushes_the_queue(
    tls_redis: TlsRedisServer, tmp_path: Path, run: RunOnLoop
) -> None:
    async def scenario() -> list[Any]:
        transport = _transport(tls_redis, tmp_path)
        try:
            first = asyncio.ensure_future(transport.execute(b"PING"))
            await asyncio.sleep(0)  # queued; its flush is created but has not run
            for flush in list(transport._flushes):
                flush.cancel()
            second = transport.execute(b"GET", b"cache:before-it-ran:absent")
            return list(await asyncio.wait_for(asyncio.gather(first, second), 5))
        finally:
            await transport.close()

    assert run(scenario()) == [b"PONG", None]
