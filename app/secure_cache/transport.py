# redis-py's connection classes are unannotated; their calls are checked by tests instead.
# mypy: disable-error-code="no-untyped-call"
"""TLS transport to Redis: redis-py connections over one shared SSLContext, pooled.

Why not `redis.Redis(...)` directly:
  * redis-py builds a new SSLContext for every new connection (CA bundle parsed, key loaded):
    about 30 ms each. Here one context is built once and every connection's handshake uses it.
  * the generic command path (observability hooks, response callbacks, pool health checks)
    costs more than TLS and AES-GCM together on a 1 KiB GET. The cache needs a handful of
    commands, so it packs them with hiredis and reads replies with redis-py's hiredis parser
    on redis-py connections, and keeps its own small LIFO pool.

What is fixed and not configurable: certificate verification against the CA with hostname
check, a client certificate, ACL username + password, TLS 1.3 minimum in staging and
production (1.2 in development, ECDHE + AEAD suites only), no CLIENT SETINFO (nothing the
app's ACL needs to allow), and bounded retries: a failed command is retried once on a fresh
connection (a pooled socket may predate a server restart), then BackendUnavailable is raised
for the client to fall back. Authentication and TLS failures are not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import hiredis
import redis.asyncio.connection as aio_connection
from redis.backoff import NoBackoff
from redis.connection import SSLConnection
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from secure_cache.errors import (
    BackendUnavailable,
    CommandRejected,
    ConfigurationError,
    FailureKind,
)
from secure_cache.settings import Settings

# The TLS 1.2 suites a development server may negotiate: ECDHE + AEAD only (same list as
# the server's redis.conf). TLS 1.3 suites are all AEAD and keep OpenSSL's defaults.
TLS12_CIPHERS: Final = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
)
DEFAULT_SOCKET_TIMEOUT: Final = 2.0
DEFAULT_CONNECT_TIMEOUT: Final = 2.0
DEFAULT_MAX_CONNECTIONS: Final = 64
DEFAULT_RETRIES: Final = 1
_RETRY_BACKOFF_S: Final = 0.05
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
Reply = Any
Arg = bytes | str | int


# RESP-encode one command, in C. (hiredis' stub types the argument as a 1-tuple.)
pack_command: Callable[[tuple[Arg, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]

# GET and SET are built by hand: joining precomputed pieces is about twice as fast as
# pack_command for the commands every cache call sends.
_SET_HEADS: Final = {0: b"*3\r\n$3\r\nSET\r\n$", 2: b"*5\r\n$3\r\nSET\r\n$"}
Expiry = tuple[int, bytes]  # (number of extra arguments, their RESP encoding)
NO_EXPIRY: Final[Expiry] = (0, b"")


def resp_args(*args: bytes) -> bytes:
    """RESP bulk strings for `args`, to append to a command header."""
    return b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def pack_get(name: bytes) -> bytes:
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(name), name)


def pack_set(name: bytes, value: bytes, expiry: Expiry = NO_EXPIRY) -> bytes:
    return b"".join(
        (
            _SET_HEADS[expiry[0]],
            b"%d\r\n" % len(name),
            name,
            b"\r\n$%d\r\n" % len(value),
            value,
            b"\r\n",
            expiry[1],
        )
    )


def build_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The one client context: verify the server against the CA, present the client cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    ctx.minimum_version = settings.min_tls_version
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    # RFC 5280 conformance checks on the chain (Python 3.13 turns this on by default).
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        if settings.ca_file:
            ctx.load_verify_locations(cafile=settings.ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.load_cert_chain(settings.cert_file, settings.key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            [
                f"the TLS material could not be loaded ({type(exc).__name__}: "
                f"{exc.strerror or exc}); check REDIS_TLS_CA_CERT, REDIS_TLS_CERT_FILE and "
                "REDIS_TLS_KEY_FILE."
            ]
        ) from exc
    return ctx


@dataclass(frozen=True)
class TlsInfo:
    """What the latest handshake negotiated."""

    version: str | None
    cipher: str | None
    server_cert_not_after: float | None  # seconds since the epoch

    @classmethod
    def of(cls, tls: ssl.SSLSocket | ssl.SSLObject) -> TlsInfo:
        cipher = tls.cipher()
        peer = tls.getpeercert() or {}
        not_after = peer.get("notAfter")
        return cls(
            version=tls.version(),
            cipher=cipher[0] if cipher else None,
            server_cert_not_after=(
                ssl.cert_time_to_seconds(not_after) if isinstance(not_after, str) else None
            ),
        )


@dataclass(frozen=True)
class TransportConfig:
    host: str
    port: int
    db: int
    username: str
    password: str
    ssl_context: ssl.SSLContext
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    retries: int = DEFAULT_RETRIES

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TransportConfig:
        return cls(
            host=settings.host,
            port=settings.port,
            db=settings.db,
            username=settings.username,
            password=settings.password,
            ssl_context=build_ssl_context(settings),
            **overrides,
        )

    def connection_kwargs(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            "socket_keepalive": True,
            # Retries are this module's job; redis-py's own would multiply them.
            "retry": Retry(NoBackoff(), 0),
            # No CLIENT SETINFO round trips on connect.
            "driver_info": None,
            "protocol": 2,
        }


def classify(exc: BaseException) -> FailureKind:
    """auth, tls, timeout or connection, from the exception and what it was raised from."""
    if isinstance(exc, AuthenticationError):
        return "auth"
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            return "tls"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, RedisTimeoutError | TimeoutError | socket.timeout):
        return "timeout"
    return "connection"


def unavailable(exc: BaseException) -> BackendUnavailable:
    kind = classify(exc)
    return BackendUnavailable(kind, f"{type(exc).__name__}: {exc}"[:300])


def rejected(exc: ResponseError) -> CommandRejected:
    return CommandRejected(acl=isinstance(exc, NoPermissionError), detail=str(exc)[:200])


# --------------------------------------------------------------------------------------------
# synchronous


class _TlsConnection(SSLConnection):
    """A redis-py SSLConnection whose handshake uses the transport's shared context."""

    def __init__(
        self,
        *,
        shared_context: ssl.SSLContext,
        on_handshake: Callable[[TlsInfo], None],
        generation: int,
        **kwargs: Any,
    ) -> None:
        self._shared_context = shared_context
        self._on_handshake = on_handshake
        self.generation = generation
        super().__init__(**kwargs)

    def _wrap_socket_with_ssl(self, sock: socket.socket) -> ssl.SSLSocket:
        tls = self._shared_context.wrap_socket(sock, server_hostname=self.host)
        self._on_handshake(TlsInfo.of(tls))
        return tls


class _Pool:
    """LIFO pool of at most `max_connections` connections; acquire() waits when all are busy.

    After a transport failure the generation is bumped: connections of an older generation
    are reconnected before their next use instead of failing one by one.
    """

    def __init__(self, factory: Callable[[int], _TlsConnection], config: TransportConfig) -> None:
        self._factory = factory
        self._max = config.max_connections
        self._wait_s = config.connect_timeout + config.socket_timeout
        self._idle: deque[_TlsConnection] = deque()
        self._all: list[_TlsConnection] = []
        self._cond = threading.Condition(threading.Lock())
        self._waiting = 0
        self.generation = 0
        _LIVE_POOLS.add(self)

    def acquire(self) -> _TlsConnection:
        try:
            conn = self._idle.pop()  # deque.pop is atomic: no lock on the hot path
        except IndexError:
            conn = self._acquire_slow()
        if conn.generation != self.generation:
            conn.disconnect()
            conn.generation = self.generation
        return conn

    def _acquire_slow(self) -> _TlsConnection:
        with self._cond:
            deadline = time.monotonic() + self._wait_s
            while True:
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self._max:
                    conn = self._factory(self.generation)
                    self._all.append(conn)
                    return conn
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BackendUnavailable(
                        "pool", f"all {self._max} connections stayed busy for {self._wait_s}s"
                    )
                self._waiting += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiting -= 1

    def release(self, conn: _TlsConnection) -> None:
        self._idle.append(conn)
        if self._waiting:
            with self._cond:
                self._cond.notify()

    def invalidate(self) -> None:
        self.generation += 1

    def close(self) -> None:
        with self._cond:
            conns, self._all = self._all, []
            self._idle.clear()
        for conn in conns:
            conn.disconnect()

    def _forget_after_fork(self) -> None:
        # The child must not write into the parent's TLS sessions; just drop the objects.
        self._all, self._idle, self._cond = [], deque(), threading.Condition(threading.Lock())
        self._waiting = 0


_LIVE_POOLS: weakref.WeakSet[_Pool] = weakref.WeakSet()


def _reset_pools_after_fork() -> None:
    for pool in list(_LIVE_POOLS):
        pool._forget_after_fork()


os.register_at_fork(after_in_child=_reset_pools_after_fork)


class Transport:
    """Packed commands over pooled TLS connections; raises BackendUnavailable/CommandRejected."""

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self.tls_info: TlsInfo | None = None
        self._kwargs = config.connection_kwargs()
        self._attempts = 1 + max(0, config.retries)
        self._pool = _Pool(self._new_connection, config)

    def _record_handshake(self, info: TlsInfo) -> None:
        self.tls_info = info

    def _new_connection(self, generation: int) -> _TlsConnection:
        return _TlsConnection(
            shared_context=self.config.ssl_context,
            on_handshake=self._record_handshake,
            generation=generation,
            **self._kwargs,
        )

    def execute(self, *args: Arg) -> Reply:
        """One command, one reply."""
        return self.execute_packed(pack_command(args))

    def execute_packed(self, packed: bytes) -> Reply:
        pool = self._pool
        failure: BaseException | None = None
        for attempt in range(self._attempts):
            conn = pool.acquire()
            try:
                conn.send_packed_command((packed,), False)
                reply = conn.read_response()
            except ResponseError as exc:
                pool.release(conn)
                raise rejected(exc) from None
            except _TRANSIENT as exc:
                failure = exc
                conn.disconnect()
                pool.release(conn)
                pool.invalidate()
                if classify(exc) in ("auth", "tls"):
                    break
                if attempt:
                    time.sleep(_RETRY_BACKOFF_S * attempt)
                continue
            except BaseException:
                conn.disconnect()
                pool.release(conn)
                raise
            pool.release(conn)
            return reply
        assert failure is not None
        raise unavailable(failure) from failure

    def execute_many(self, packed: bytes, replies: int) -> list[Reply]:
        """Several packed commands in one write; every reply is read even after an error."""
        pool = self._pool
        failure: BaseException | None = None
        for attempt in range(self._attempts):
            conn = pool.acquire()
            try:
                conn.send_packed_command((packed,), False)
                results: list[Reply] = []
                error: ResponseError | None = None
                for _ in range(replies):
                    try:
                        results.append(conn.read_response())
                    except ResponseError as exc:
                        error = error or exc
                        results.append(None)
            except _TRANSIENT as exc:
                failure = exc
                conn.disconnect()
                pool.release(conn)
                pool.invalidate()
                if classify(exc) in ("auth", "tls"):
                    break
                if attempt:
                    time.sleep(_RETRY_BACKOFF_S * attempt)
                continue
            except BaseException:
                conn.disconnect()
                pool.release(conn)
                raise
            pool.release(conn)
            if error is not None:
                raise rejected(error) from None
            return results
        assert failure is not None
        raise unavailable(failure) from failure

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One connection for a command sequence (WATCH/MULTI/EXEC); no retries."""
        conn = self._pool.acquire()
        session = Session(conn)
        try:
            yield session
        except BaseException:
            conn.disconnect()
            raise
        finally:
            if session.dirty:
                conn.disconnect()
            self._pool.release(conn)

    def probe(self) -> float:
        """Open a new connection (TCP + TLS + AUTH), PING, close; seconds taken."""
        conn = self._new_connection(self._pool.generation)
        start = time.perf_counter()
        try:
            conn.send_packed_command((pack_command((b"PING",)),), False)
            conn.read_response()
            return time.perf_counter() - start
        except _TRANSIENT as exc:
            raise unavailable(exc) from exc
        except ResponseError as exc:
            raise rejected(exc) from None
        finally:
            conn.disconnect()

    def reset(self) -> None:
        """Reconnect every pooled connection before its next use."""
        self._pool.invalidate()

    def close(self) -> None:
        self._pool.close()


class Session:
    """Commands on one pinned connection; a failure marks it for disconnect."""

    def __init__(self, conn: _TlsConnection) -> None:
        self._conn = conn
        self.dirty = False

    def execute(self, *args: Arg) -> Reply:
        return self.execute_many([args])[0]

    def execute_many(self, commands: Sequence[Sequence[Arg]]) -> list[Reply]:
        conn = self._conn
        try:
            conn.send_packed_command((b"".join(pack_command(tuple(c)) for c in commands),), False)
            results: list[Reply] = []
            error: ResponseError | None = None
            for _ in commands:
                try:
                    results.append(conn.read_response())
                except ResponseError as exc:
                    error = error or exc
                    results.append(exc)
        except _TRANSIENT as exc:
            self.dirty = True
            raise unavailable(exc) from exc
        if error is not None:
            raise rejected(error) from None
        return results


# --------------------------------------------------------------------------------------------
# asyncio


class _AsyncTlsConnection(aio_connection.SSLConnection):
    """redis-py's asyncio SSLConnection, handshaking with the shared context."""

    def __init__(
        self,
        *,
        shared_context: ssl.SSLContext,
        on_handshake: Callable[[TlsInfo], None],
        generation: int,
        **kwargs: Any,
    ) -> None:
        self._shared_context = shared_context
        self._on_handshake = on_handshake
        self.generation = generation
        super().__init__(**kwargs)

    def _connection_arguments(self) -> dict[str, Any]:
        # Not super(): redis-py would build (and cache per connection) a fresh SSLContext.
        return {"host": self.host, "port": self.port, "ssl": self._shared_context}

    async def _connect(self) -> None:
        await super()._connect()
        tls = self._writer.get_extra_info("ssl_object") if self._writer else None
        if tls is not None:
            self._on_handshake(TlsInfo.of(tls))


class AsyncTransport:
    """The asyncio twin of Transport; use one per event loop."""

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self.tls_info: TlsInfo | None = None
        self._kwargs = config.connection_kwargs()
        self._attempts = 1 + max(0, config.retries)
        self._idle: deque[_AsyncTlsConnection] = deque()
        self._all: list[_AsyncTlsConnection] = []
        self._waiters: deque[asyncio.Future[_AsyncTlsConnection]] = deque()
        self.generation = 0

    def _record_handshake(self, info: TlsInfo) -> None:
        self.tls_info = info

    def _new_connection(self) -> _AsyncTlsConnection:
        return _AsyncTlsConnection(
            shared_context=self.config.ssl_context,
            on_handshake=self._record_handshake,
            generation=self.generation,
            **self._kwargs,
        )

    async def _acquire(self) -> _AsyncTlsConnection:
        if self._idle:
            conn = self._idle.pop()
        elif len(self._all) < self.config.max_connections:
            conn = self._new_connection()
            self._all.append(conn)
        else:
            waiter: asyncio.Future[_AsyncTlsConnection] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            wait_s = self.config.connect_timeout + self.config.socket_timeout
            try:
                conn = await asyncio.wait_for(waiter, wait_s)
            except TimeoutError:
                raise BackendUnavailable(
                    "pool", f"all {len(self._all)} connections stayed busy for {wait_s}s"
                ) from None
        if conn.generation != self.generation:
            await conn.disconnect()
            conn.generation = self.generation
        return conn

    def _release(self, conn: _AsyncTlsConnection) -> None:
        # Hand the connection straight to the oldest live waiter, else back to the pool.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    async def execute(self, *args: Arg) -> Reply:
        return await self.execute_packed(pack_command(args))

    async def execute_packed(self, packed: bytes) -> Reply:
        replies = await self._run(packed, 1)
        return replies[0]

    async def execute_many(self, packed: bytes, replies: int) -> list[Reply]:
        return await self._run(packed, replies)

    async def _run(self, packed: bytes, count: int) -> list[Reply]:
        failure: BaseException | None = None
        for attempt in range(self._attempts):
            conn = await self._acquire()
            try:
                await conn.send_packed_command((packed,), False)
                results: list[Reply] = []
                error: ResponseError | None = None
                for _ in range(count):
                    try:
                        results.append(await conn.read_response())
                    except ResponseError as exc:
                        error = error or exc
                        results.append(None)
            except _TRANSIENT as exc:
                failure = exc
                await conn.disconnect(nowait=True)
                self._release(conn)
                self.generation += 1
                if classify(exc) in ("auth", "tls"):
                    break
                if attempt:
                    await asyncio.sleep(_RETRY_BACKOFF_S * attempt)
                continue
            except BaseException:
                # Cancelled mid-reply: the connection's read position is unknown.
                await conn.disconnect(nowait=True)
                self._release(conn)
                raise
            self._release(conn)
            if error is not None:
                raise rejected(error) from None
            return results
        assert failure is not None
        raise unavailable(failure) from failure

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        conn = await self._acquire()
        session = AsyncSession(conn)
        try:
            yield session
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        finally:
            if session.dirty:
                await conn.disconnect(nowait=True)
            self._release(conn)

    async def probe(self) -> float:
        conn = self._new_connection()
        start = time.perf_counter()
        try:
            await conn.send_packed_command((pack_command((b"PING",)),), False)
            await conn.read_response()
            return time.perf_counter() - start
        except _TRANSIENT as exc:
            raise unavailable(exc) from exc
        except ResponseError as exc:
            raise rejected(exc) from None
        finally:
            await conn.disconnect(nowait=True)

    def reset(self) -> None:
        self.generation += 1

    async def close(self) -> None:
        conns, self._all = self._all, []
        self._idle.clear()
        for conn in conns:
            await conn.disconnect(nowait=True)


class AsyncSession:
    def __init__(self, conn: _AsyncTlsConnection) -> None:
        self._conn = conn
        self.dirty = False

    async def execute(self, *args: Arg) -> Reply:
        return (await self.execute_many([args]))[0]

    async def execute_many(self, commands: Sequence[Sequence[Arg]]) -> list[Reply]:
        conn = self._conn
        try:
            await conn.send_packed_command(
                (b"".join(pack_command(tuple(c)) for c in commands),), False
            )
            results: list[Reply] = []
            error: ResponseError | None = None
            for _ in commands:
                try:
                    results.append(await conn.read_response())
                except ResponseError as exc:
                    error = error or exc
                    results.append(exc)
        except _TRANSIENT as exc:
            self.dirty = True
            raise unavailable(exc) from exc
        if error is not None:
            raise rejected(error) from None
        return results


__all__ = [
    "TLS12_CIPHERS",
    "AsyncSession",
    "AsyncTransport",
    "Session",
    "TlsInfo",
    "Transport",
    "TransportConfig",
    "build_ssl_context",
    "classify",
]
