# redis-py's connection classes are unannotated; their calls are checked by tests instead.
# mypy: disable-error-code="no-untyped-call"
"""TLS transport to Redis: redis-py connections over one shared SSLContext, pooled.

The I/O half of the client: it writes the bytes core.py built and reads the replies. It
decides nothing about the cache; failures are classified by core.classify.

Why not `redis.Redis(...)` directly:
  * redis-py builds a new SSLContext for every new connection (CA bundle parsed, key loaded):
    about 30 ms each. Here one context is built per material version and every connection's
    handshake uses it.
  * the generic command path (observability hooks, response callbacks, pool health checks)
    costs more than TLS and AES-GCM together on a 1 KiB GET. The cache needs a handful of
    commands, so core.py packs them and they are read with redis-py's hiredis parser on
    redis-py connections, from a small LIFO pool.

What is fixed and not configurable: certificate verification against the CA with hostname
check, a client certificate, ACL username + password, TLS 1.3 minimum in staging and
production (1.2 in development, ECDHE + AEAD suites only), no CLIENT SETINFO (nothing the
app's ACL needs to allow), and bounded retries: after a failed first attempt `retries`
more attempts on fresh connections, with redis-py's equal-jitter backoff (a pooled socket
may predate a server restart), then BackendUnavailable is raised for the client to fall
back. An authentication or TLS refusal is not retried as such: the client rereads its
material files (`on_refused`) and, when they changed, makes exactly one more attempt with
the new material - so a rotated password or certificate never fails a request. These
decisions are made once, without I/O (`Retrying`); the sync and async loops only sleep and
attempt.

The asyncio transport coalesces concurrent calls into one write (see AsyncTransport); the
synchronous one gives each call a pooled connection of its own.

Material (TLS context, password) is swapped whole by `reconfigure()`: new connections use
the new material; pooled connections finish what they are doing and reconnect at their next
use (the pool's generation), so no in-flight request is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import ssl
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import redis.asyncio.connection as aio_connection
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser, _HiredisParser
from redis._parsers.socket import SERVER_CLOSED_CONNECTION_ERROR
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.connection import SSLConnection
from redis.credentials import CredentialProvider
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.utils import SENTINEL

from secure_cache import crypto
from secure_cache.core import is_refusal, rejected, unavailable
from secure_cache.errors import BackendUnavailable, CommandRejected, ConfigurationError
from secure_cache.resp import Arg, Buffer, pack_command, pack_many, writes
from secure_cache.settings import DEFAULT_HTTP_MAX_VALUE_BYTES, Settings

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
# The most a sealed value adds to its plaintext (app/secure_cache/crypto.py).
MAX_ENVELOPE_OVERHEAD_BYTES: Final = crypto.MAX_OVERHEAD_BYTES
_MIB: Final = 1 << 20
# How many of the largest values one reply may hold: the stack's Redis disconnects a client
# whose reply outgrows 16 of them (infra/redis_conf.py, output_limit_bytes).
REPLY_VALUES: Final = 16


def _value_share(max_value_bytes: int) -> int:
    """What one of the largest values takes of a reply's limit: its sealed size rounded up to
    a whole MiB and at least 1 MiB, as the stack's Redis rounds its proto-max-bulk-len."""
    sealed = max_value_bytes + MAX_ENVELOPE_OVERHEAD_BYTES
    return max(_MIB, -(-sealed // _MIB) * _MIB)


def reply_limit_bytes(max_value_bytes: int) -> int:
    """The largest reply a client storing values of up to `max_value_bytes` reads: 16 of the
    largest sealed values, each rounded up to a whole MiB and at least 1 MiB, as the stack's
    Redis rounds its proto-max-bulk-len; no larger reply leaves that Redis, which disconnects
    a client whose reply grows past it (client-output-buffer-limit, infra/redis_conf.py;
    tests/unit/test_shared_facts.py pins the two). 32 MiB for the app's 1 MiB values (each
    sealed to just over 1 MiB: 2 MiB)."""
    return REPLY_VALUES * _value_share(max_value_bytes)


def reply_values(max_reply_bytes: int, max_value_bytes: int) -> int:
    """How many of the largest values one reply of at most `max_reply_bytes` holds, at least
    one: the most names one MGET of get_many reads (core.CacheCore.get_many). 16 (REPLY_VALUES)
    for the limit reply_limit_bytes gives the same values; fewer for a smaller limit."""
    return max(1, max_reply_bytes // _value_share(max_value_bytes))


def cache_options(max_value_bytes: int) -> dict[str, int]:
    """The transport options of a client storing values of up to `max_value_bytes`
    (HTTP_MAX_VALUE_BYTES): that size, and the reply limit it gives (reply_limit_bytes). The
    one place they are derived, for the HTTP service (service.py), the CLI and from_env."""
    return {
        "max_value_bytes": max_value_bytes,
        "max_reply_bytes": reply_limit_bytes(max_value_bytes),
    }


# What SecureCache and AsyncSecureCache read at most in one reply unless told otherwise (the
# app passes reply_limit_bytes of its HTTP_MAX_VALUE_BYTES, service.py): the stack's default.
# Not Redis's own proto-max-bulk-len default (512 MiB): one such reply is past the app
# container's memory limit (appMemoryMb, 160 to 256 MiB), and a compromised or replaced Redis
# could send it (docs/attack-surface.md).
DEFAULT_MAX_REPLY_BYTES: Final = reply_limit_bytes(DEFAULT_HTTP_MAX_VALUE_BYTES)
# One socket read (redis-py's socket_read_size): the smallest limit accepted, and what a
# reply may bring beyond its limit: the synchronous parser does not count a reply's first
# read (_DeadlineParser), and a read may end in the next pipelined reply or carry RESP's
# framing of 16 values past the output-buffer limit they fit.
MIN_MAX_REPLY_BYTES: Final = 1 << 16
_READ_BYTES: Final = 1 << 16
RETRY_BACKOFF_BASE_S: Final = 0.05
RETRY_BACKOFF_CAP_S: Final = 0.5
# InvalidResponse: bytes that are not RESP (hiredis' protocol error). Only a broken or
# hostile server sends them; it was raised as it was out of the cache's get, where the
# connection's failure belongs (a fresh connection, then the fallback).
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError, InvalidResponse)
_PING: Final = pack_command((b"PING",))
Reply = Any
T = TypeVar("T")
Commands = Sequence[tuple[Arg, ...]]


def build_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The client context: verify the server against the CA, present the client cert."""
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
    server_cert_not_before: float | None

    @classmethod
    def of(cls, tls: ssl.SSLSocket | ssl.SSLObject) -> TlsInfo:
        cipher = tls.cipher()
        peer = tls.getpeercert() or {}
        return cls(
            version=tls.version(),
            cipher=cipher[0] if cipher else None,
            server_cert_not_after=_cert_time(peer.get("notAfter")),
            server_cert_not_before=_cert_time(peer.get("notBefore")),
        )


def _cert_time(value: object) -> float | None:
    return ssl.cert_time_to_seconds(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class ConnectionMaterial:
    """What a new connection handshakes and authenticates with; replaced whole on reload."""

    ssl_context: ssl.SSLContext
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class TransportConfig:
    host: str
    port: int
    db: int
    material: ConnectionMaterial
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    retries: int = DEFAULT_RETRIES
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    # The largest value stored: with max_reply_bytes, how many names one MGET reads
    # (reply_values). Pass both through cache_options.
    max_value_bytes: int = DEFAULT_HTTP_MAX_VALUE_BYTES

    def __post_init__(self) -> None:
        if self.max_reply_bytes < MIN_MAX_REPLY_BYTES:
            raise ConfigurationError(
                [
                    f"max_reply_bytes is {self.max_reply_bytes}; at least {MIN_MAX_REPLY_BYTES} "
                    "(use transport.reply_limit_bytes of the largest value stored)."
                ]
            )
        if self.max_value_bytes < 1:
            raise ConfigurationError([f"max_value_bytes is {self.max_value_bytes}; at least 1."])

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TransportConfig:
        return cls(
            host=settings.host,
            port=settings.port,
            db=settings.db,
            material=material_from(settings),
            **overrides,
        )

    def connection_kwargs(self, credentials: CredentialProvider) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "credential_provider": credentials,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            "socket_keepalive": True,
            # Retries are this module's job; redis-py's own would multiply them.
            "retry": Retry(NoBackoff(), 0),
            # No CLIENT SETINFO round trips on connect.
            "driver_info": None,
            "protocol": 2,
        }


def material_from(
    settings: Settings, tls_from: ConnectionMaterial | None = None
) -> ConnectionMaterial:
    """Connection material for `settings`; reuses `tls_from`'s context when given."""
    return ConnectionMaterial(
        ssl_context=tls_from.ssl_context if tls_from else build_ssl_context(settings),
        username=settings.username,
        password=settings.password,
    )


class _Material(CredentialProvider):
    """The current ConnectionMaterial; redis-py asks it for credentials at every AUTH."""

    def __init__(self, current: ConnectionMaterial) -> None:
        self.current = current

    def get_credentials(self) -> tuple[str, str]:
        material = self.current
        return material.username, material.password

    async def get_credentials_async(self) -> tuple[str, str]:
        return self.get_credentials()


def _never_refreshed() -> bool:
    return False


class BaseTransport:
    """What both transports share: config, material, the retry policy, handshake info."""

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self.tls_info: TlsInfo | None = None
        # Metrics hook (prometheus.py): seconds to open a connection (TCP, TLS and AUTH).
        self.on_connected: Callable[[float], None] | None = None
        self.material = _Material(config.material)
        # Set by the client: rereads the material files after an auth or TLS refusal and
        # says whether the connection material changed (then one more attempt is made).
        self.on_refused: Callable[[], bool] = _never_refreshed
        self._kwargs = config.connection_kwargs(self.material)
        self.backoff = EqualJitterBackoff(cap=RETRY_BACKOFF_CAP_S, base=RETRY_BACKOFF_BASE_S)

    def _record_handshake(self, info: TlsInfo) -> None:
        self.tls_info = info

    def _record_connect(self, seconds: float) -> None:
        if self.on_connected is not None:
            self.on_connected(seconds)

    def reconfigure(self, material: ConnectionMaterial) -> None:
        """New connections use `material`; pooled ones reconnect at their next use. The last
        handshake is forgotten with them: an idle client kept reporting the server certificate
        of a connection made with the old material (status, the metrics' `server` series)
        after both certificates were renewed; unknown, status() connects once."""
        self.material.current = material
        self.tls_info = None
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def pool_state(self) -> tuple[int, int, int]:
        raise NotImplementedError


class Retrying:
    """The decisions after a failed first attempt, without I/O; both transports' retry
    loops only sleep and attempt as this says (the sans-IO half of redis-py's Retry).

    A transient failure gets `retries` more attempts in all, the first at once and the
    others after redis-py's equal-jitter backoff (a pooled socket may predate a server
    restart). A refusal of the password or certificate is not retried as such: it gets one
    immediate attempt when rereading the material files changed it (`on_refused`).
    """

    def __init__(self, transport: BaseTransport, error: BaseException, retries: int) -> None:
        self.error = error
        self._transport = transport
        self._left = retries
        self._failures = 0
        self._reloaded = False

    def delay(self) -> float | None:
        """Seconds to wait before the next attempt, or None: give up."""
        if is_refusal(self.error):
            if self._reloaded or not self._transport.on_refused():
                return None
            self._reloaded = True
            return 0.0
        if self._left <= 0:
            return None
        self._left -= 1
        self._failures += 1
        return self._transport.backoff.compute(self._failures - 1) if self._failures > 1 else 0.0

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """Around one attempt: a transient failure becomes the error the next delay() sees."""
        try:
            yield
        except _TRANSIENT as exc:
            self.error = exc

    def unavailable(self) -> BackendUnavailable:
        return unavailable(self.error)


def _no_timing(_: float) -> None:
    return None


class _Handshaking:
    """What both connection classes add to redis-py's: the transport's material, where to
    report a handshake, and the pool generation the connection belongs to."""

    def __init__(
        self,
        *,
        material: _Material,
        on_handshake: Callable[[TlsInfo], None],
        generation: int,
        on_connected: Callable[[float], None] = _no_timing,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        **kwargs: Any,
    ) -> None:
        self._material = material
        self._on_handshake = on_handshake
        self._on_connected = on_connected
        self.generation = generation
        self.max_reply_bytes = max_reply_bytes  # read by the parser when it connects
        super().__init__(**kwargs)


def _outcome(replies: list[Reply]) -> list[Reply]:
    """The replies of one caller's commands (all were read), or its first error reply
    raised as CommandRejected."""
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise rejected(reply) from None
    return replies


# --------------------------------------------------------------------------------------------
# synchronous


class _TlsConnection(_Handshaking, SSLConnection):
    """A redis-py SSLConnection whose handshake uses the transport's current context."""

    handshake_context: ssl.SSLContext | None = None

    def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        if self._sock is not None:
            return
        start = time.perf_counter()
        super().connect_check_health(*args, **kwargs)
        self._on_connected(time.perf_counter() - start)

    def _wrap_socket_with_ssl(self, sock: socket.socket) -> ssl.SSLSocket:
        context = self.handshake_context = self._material.current.ssl_context
        tls = context.wrap_socket(sock, server_hostname=self.host)
        self._on_handshake(TlsInfo.of(tls))
        return tls


# redis-py's own methods, called directly: overrides that called them through `super()` with
# *args/**kwargs added 0.65 us of CPU to each reply read, these 0.17 us (one-read replies over
# a socketpair, medians of 7 rounds; per 10 KiB SET+GET pair of the sequential TLS transport,
# cachegrind: 203,400 instructions before the deadline, 228,000 through super(), 220,600 so;
# docs/benchmark.md, "A bound on each whole reply").
_read_response = _HiredisParser.read_response
_read_from_socket = _HiredisParser.read_from_socket


class _DeadlineParser(_HiredisParser):
    """redis-py's hiredis parser with a bound on each whole reply, in time and in bytes.

    redis-py's synchronous connection applies socket_timeout to each read from the socket,
    so a server that sends a byte now and then holds a call for as long as it likes: a
    hostile server dripping a bulk string two bytes a second held a GET 22 s per attempt,
    as long as its drip (the asyncio connection bounds the whole reply and gave up at 2 s;
    tests/integration/test_hostile_redis.py). Here a reply's first read keeps the socket's
    own timeout, and every later read of the same reply shares one more socket_timeout from
    the second read on: a whole reply takes at most twice socket_timeout. A reply that comes
    in one read (the hot path) reads no clock.

    Bytes: what a reply's later reads bring is counted, and past the connection's
    max_reply_bytes the reply is refused (_too_large: a connection failure) before hiredis
    holds more. Within one socket timeout a hostile server had the client read 185 MiB of a
    claimed 2 GiB bulk string, past the app container's memory limit. The first read is not
    counted (the hot path: no instruction added), and the count allows one read more
    (_READ_BYTES), so a reply holds at most max_reply_bytes and two reads (64 KiB each).
    hiredis-py says nothing of a read's size but its buffer's length, which a read grows by
    exactly that size (Reader.len before and after): parsing, which shrinks it, happens
    between reads, not in them.
    """

    # None: the reply's first read is to come; 0.0: it was made; else the monotonic time
    # by which the reply's later reads must be done (inf: no socket timeout).
    _deadline: float | None = None
    _left = 0  # bytes the reply's later reads may still bring
    _max_reply_bytes = DEFAULT_MAX_REPLY_BYTES

    def on_connect(self, connection: Any, **kwargs: Any) -> None:
        super().on_connect(connection, **kwargs)
        self._max_reply_bytes = connection.max_reply_bytes

    def read_response(
        self, disable_decoding: bool = False, push_request: bool = False, timeout: Any = SENTINEL
    ) -> Any:
        self._deadline = None
        try:
            return _read_response(self, disable_decoding, push_request, timeout)
        except MemoryError:
            raise _claimed_too_much() from None

    def read_from_socket(self, timeout: Any = SENTINEL, raise_on_timeout: bool = True) -> Any:
        deadline = self._deadline
        if deadline is None:
            self._deadline = 0.0
            return _read_from_socket(self, timeout, raise_on_timeout)
        if not deadline:
            # The reply's second read: its later reads share one more socket timeout and
            # bring at most max_reply_bytes.
            socket_timeout = self._socket_timeout
            self._deadline = (
                math.inf if socket_timeout is None else time.monotonic() + socket_timeout
            )
            self._left = self._max_reply_bytes + _READ_BYTES
        elif timeout is SENTINEL and deadline < math.inf:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise RedisTimeoutError("Timeout reading from socket")
        reader = self._reader
        if reader is None:  # disconnected: redis-py's read raises for it
            return _read_from_socket(self, timeout, raise_on_timeout)
        held = reader.len()
        read = _read_from_socket(self, timeout, raise_on_timeout)
        self._left -= reader.len() - held
        if self._left < 0:
            raise _too_large(self._max_reply_bytes)
        return read

    def handle_push_response(self, response: Any, **kwargs: Any) -> Any:
        raise _pushed()


def _too_large(limit: int) -> InvalidResponse:
    """A reply past the connection's max_reply_bytes: a protocol error (a fresh connection,
    then the fallback), as a reply no Redis of the stack sends is. What to do is in the
    message; nothing of the reply is."""
    return InvalidResponse(
        f"a reply passed {limit} bytes (max_reply_bytes), more than 16 of the largest values "
        "(HTTP_MAX_VALUE_BYTES) take; for larger values raise HTTP_MAX_VALUE_BYTES (the app) "
        "or pass max_reply_bytes=reply_limit_bytes(largest) (the library)"
    )


def _pushed() -> InvalidResponse:
    """What a RESP3 push frame is here: the client speaks RESP2 ("protocol": 2), in which
    Redis sends none, so only a broken or hostile server does. redis-py handles one and reads
    the reply again by calling itself, a new reply to the sync parser (its time and byte
    bounds started again): 3,000 of them before a GET's reply raised RecursionError out of
    the cache's get, sync and async (tests/integration/test_hostile_redis.py). A protocol
    error instead (a fresh connection, then the fallback). Called only for a push frame, so
    no reply without one runs an instruction more."""
    return InvalidResponse("a RESP3 push frame on a RESP2 connection")


def _claimed_too_much() -> InvalidResponse:
    """What a MemoryError while parsing a reply is: hiredis allocates an array's list when it
    reads its header, before any element, so `*4294967295` alone asks for 32 GiB
    (redis/hiredis#1357) and MemoryError came out of the cache's get. It is the server's
    reply, not this process's memory, that is at fault: a protocol error (a fresh
    connection, then the fallback). The sync parser (_DeadlineParser), the async read
    (_areply) and the buffered replies (_drain) read replies; each raises this."""
    return InvalidResponse("a reply claimed more elements than memory holds")


class _Pool:
    """LIFO pool of at most `max_connections` connections; acquire() waits when all are busy.

    After a transport failure or a material change the generation is bumped: connections
    of an older generation are reconnected before their next use.
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
        if not _in_step(conn):
            conn.generation = -1  # reconnected before its next use, as a stale one is
        self._idle.append(conn)
        if self._waiting:
            with self._cond:
                self._cond.notify()

    def discard(self, conn: _TlsConnection) -> None:
        """A connection failed: close it and reconnect the others before their next use."""
        conn.disconnect()
        self.release(conn)
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


def _in_step(conn: Any) -> bool:
    """Whether a connection that read every reply of its caller's commands holds nothing
    more. Redis answers each command once (RESP2, no pushes); bytes left in the reader are
    replies to commands never sent, which a compromised or replaced server sent, and the
    next caller would read them as its own: a server that answered one GET twice had every
    later call on that connection get the reply of the call before it
    (tests/integration/test_hostile_redis.py). Such a connection goes back to the pool
    marked stale and is reconnected before its next use. It sees what the reader holds
    (what arrived with the replies read), not bytes still in flight: no system call on the
    hot path; a reply that comes later reaches the next caller, whose reply shape core.py
    checks."""
    reader = getattr(conn._parser, "_reader", None)  # None: disconnected, or not hiredis
    return reader is None or not reader.has_data()


def _reply(conn: _TlsConnection) -> Reply:
    """One reply; an error reply is returned (as ResponseError), not raised."""
    try:
        return conn.read_response()
    except ResponseError as exc:
        return exc


def _drain(conn: Any, replies: list[Reply], count: int) -> None:
    """Append to `replies`, up to `count` in all, the replies the connection's hiredis reader
    has already parsed: no socket read, error replies returned as _reply returns them, and
    one redis-py raises (_fatal) the last taken.

    A batch's replies mostly arrive together: set_many's 100 `+OK`s each went through
    redis-py's read_response (its host string, parser call and checks; on asyncio a read
    timeout armed and cancelled), about 6,000 instructions a reply. Taken here, a pipelined
    1 KiB SET+GET pair runs 6% fewer instructions and 50 asyncio tasks on one client 37%
    fewer (cachegrind, 2026-12-03, docs/benchmark.md "Replies taken from the buffer")."""
    reader = getattr(conn._parser, "_reader", None)  # None: disconnected, or not hiredis
    if reader is None:
        return
    while len(replies) < count:
        try:
            reply = reader.gets()
        except MemoryError:
            raise _claimed_too_much() from None
        if reply is NOT_ENOUGH_DATA:
            return
        replies.append(reply)
        if _fatal(reply) is not None:
            return  # nothing after it is read; its owner raises it (_checked)


def _fatal(reply: Reply) -> BaseException | None:
    """The error redis-py's read_response raises for this reply instead of returning it (a
    ConnectionError such as WRONGPASS, alone or first in an array), else None."""
    if isinstance(reply, RedisConnectionError):
        return reply
    if type(reply) is list and reply and isinstance(reply[0], RedisConnectionError):
        return reply[0]
    return None


def _checked(replies: list[Reply]) -> list[Reply]:
    """`replies`, or the first of them redis-py would have raised, raised."""
    for reply in replies:
        if (error := _fatal(reply)) is not None:
            raise error
    return replies


def _replies(conn: _TlsConnection, count: int) -> list[Reply]:
    """`count` replies: one through redis-py's read_response whenever the buffer runs dry
    (its socket reads, timeouts and errors), the rest straight from the reader."""
    replies: list[Reply] = []
    while len(replies) < count:
        replies.append(_reply(conn))
        _drain(conn, replies, count)
        if (error := _fatal(replies[-1])) is not None:
            raise error
    return replies


class Transport(BaseTransport):
    """Packed commands over pooled TLS connections; raises BackendUnavailable/CommandRejected."""

    def __init__(self, config: TransportConfig) -> None:
        super().__init__(config)
        self._pool = _Pool(self._new_connection, config)

    def _new_connection(self, generation: int) -> _TlsConnection:
        return _TlsConnection(
            material=self.material,
            on_handshake=self._record_handshake,
            on_connected=self._record_connect,
            generation=generation,
            parser_class=_DeadlineParser,
            max_reply_bytes=self.config.max_reply_bytes,
            **self._kwargs,
        )

    def execute(self, *args: Arg) -> Reply:
        """One command, one reply."""
        return self.execute_packed((pack_command(args),))

    def execute_packed(self, packed: Iterable[Buffer]) -> Reply:
        """One packed command (in the chunks to write), one reply. The hot path of every
        cache call, so the first attempt is inline (execute_many's, less a list)."""
        pool = self._pool
        conn = pool.acquire()
        try:
            conn.send_packed_command(packed, False)
            reply = conn.read_response()
        except ResponseError as exc:
            pool.release(conn)
            raise rejected(exc) from None
        except _TRANSIENT as exc:
            pool.discard(conn)
            return self._again(lambda: self._attempt(packed, 1)[0], exc)
        except BaseException:
            pool.discard(conn)
            raise
        pool.release(conn)
        return reply

    def execute_many(self, packed: Iterable[Buffer], replies: int) -> list[Reply]:
        """Several packed commands in one write; every reply is read even after an error."""
        try:
            return self._attempt(packed, replies)
        except _TRANSIENT as exc:
            return self._again(lambda: self._attempt(packed, replies), exc)

    def _attempt(self, packed: Iterable[Buffer], replies: int) -> list[Reply]:
        pool = self._pool
        conn = pool.acquire()
        try:
            conn.send_packed_command(packed, False)
            results = _replies(conn, replies)
        except BaseException:
            pool.discard(conn)
            raise
        pool.release(conn)
        return _outcome(results)

    def _again(self, do: Callable[[], T], error: BaseException, retries: int | None = None) -> T:
        """After a failed first attempt: more attempts as Retrying decides."""
        retrying = Retrying(self, error, self.config.retries if retries is None else retries)
        while (delay := retrying.delay()) is not None:
            time.sleep(delay)
            with retrying.attempt():
                return do()
        raise retrying.unavailable() from retrying.error

    @contextlib.contextmanager
    def session(self) -> Iterator[Callable[[Commands], list[Reply]]]:
        """One pinned connection for a command sequence (WATCH/MULTI/EXEC); no retries.

        Yields `run(commands) -> replies`; a failure closes the connection.
        """
        pool = self._pool
        conn = pool.acquire()

        def run(commands: Commands) -> list[Reply]:
            with _unavailable_on_failure():
                conn.send_packed_command((pack_many(list(commands)),), False)
                return _outcome(_replies(conn, len(commands)))

        try:
            yield run
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    def probe(self) -> float:
        """Open a new connection (TCP + TLS + AUTH), PING, close; seconds taken."""
        try:
            return self._probe_once()
        except _TRANSIENT as exc:
            return self._again(self._probe_once, exc, retries=0)

    def _probe_once(self) -> float:
        start = time.perf_counter()
        conn = self._new_connection(self._pool.generation)
        try:
            conn.send_packed_command((_PING,), False)
            _outcome([_reply(conn)])
        finally:
            conn.disconnect()
        return time.perf_counter() - start

    def reset(self) -> None:
        """Reconnect every pooled connection before its next use."""
        self._pool.generation += 1

    def pool_state(self) -> tuple[int, int, int]:
        """(connections open, lent out, the bound), for metrics."""
        pool = self._pool
        return len(pool._all), len(pool._all) - len(pool._idle), pool._max

    def close(self) -> None:
        self._pool.close()


@contextlib.contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    try:
        yield
    except _TRANSIENT as exc:
        raise unavailable(exc) from exc


# --------------------------------------------------------------------------------------------
# asyncio


class _AsyncTlsConnection(_Handshaking, aio_connection.SSLConnection):
    """redis-py's asyncio SSLConnection, handshaking with the transport's current context."""

    async def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        if self.is_connected:
            return
        start = time.perf_counter()
        await super().connect_check_health(*args, **kwargs)
        self._on_connected(time.perf_counter() - start)

    def _connection_arguments(self) -> dict[str, Any]:
        # Not super(): redis-py would build (and cache per connection) a fresh SSLContext.
        return {"host": self.host, "port": self.port, "ssl": self._material.current.ssl_context}

    async def _connect(self) -> None:
        await super()._connect()
        tls = self._writer.get_extra_info("ssl_object") if self._writer else None
        if tls is not None:
            self._on_handshake(TlsInfo.of(tls))


class _CountingParser(_AsyncHiredisParser):
    """redis-py's asyncio hiredis parser with a bound on the bytes of each reply (see
    _DeadlineParser; the asyncio connection already bounds a whole reply in time). _areply
    sets `left` before each reply; every read counts, the first too (asyncio's stream hands
    over each read's bytes, so counting costs a subtraction)."""

    left = 0
    budget = DEFAULT_MAX_REPLY_BYTES + _READ_BYTES  # what each reply starts with
    max_reply_bytes = DEFAULT_MAX_REPLY_BYTES

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)
        self.max_reply_bytes = connection.max_reply_bytes
        # The connection's own replies (AUTH's) are read before any _areply.
        self.left = self.budget = connection.max_reply_bytes + _READ_BYTES

    async def read_from_socket(self) -> bool:
        # redis-py's, with the count.
        stream: Any = self._stream
        buffer = await stream.read(self._read_size)
        if not buffer or not isinstance(buffer, bytes):
            raise RedisConnectionError(SERVER_CLOSED_CONNECTION_ERROR) from None
        self.left -= len(buffer)
        if self.left < 0:
            raise _too_large(self.max_reply_bytes)
        reader: Any = self._reader
        reader.feed(buffer)
        return True

    async def handle_push_response(self, response: Any, **kwargs: Any) -> Any:
        raise _pushed()


async def _areply(conn: _AsyncTlsConnection) -> Reply:
    """See _reply."""
    parser: Any = conn._parser
    parser.left = parser.budget
    try:
        return await conn.read_response()
    except ResponseError as exc:
        return exc
    except MemoryError:
        raise _claimed_too_much() from None


async def _areplies(conn: _AsyncTlsConnection, count: int) -> list[Reply]:
    """See _replies."""
    replies: list[Reply] = []
    while len(replies) < count:
        replies.append(await _areply(conn))
        _drain(conn, replies, count)
        if (error := _fatal(replies[-1])) is not None:
            raise error
    return replies


# A caller's commands in a coalesced write: (chunks, replies to read, where they go, how
# many stored values those replies may carry at most).
_Queued = tuple[Iterable[Buffer], int, "asyncio.Future[list[Reply]]", int]


def shared_write(batch: Sequence[_Queued], values: int) -> int:
    """How many of `batch`'s callers, from the first, one coalesced write takes: as many as
    fit `values` stored values together (transport.reply_values of the limits), and always
    the first, whatever it reads on its own.

    Redis runs every command it has read before it sends a reply, and holds the replies of
    one write together against its output-buffer limit (tests/integration/
    test_cache_reply_limit.py): 40 callers each reading one 900 KiB value, coalesced into
    one write, were cut together, and the client went to its fallback, though each call
    alone was well within the limit. A caller's own commands are never split (a get_many
    already keeps each reply within it: core.CacheCore.get_many)."""
    taken = 0
    for index, queued in enumerate(batch):
        taken += queued[3]
        if taken > values and index:
            return index
    return len(batch)


class AsyncTransport(BaseTransport):
    """Transport for asyncio: the same contract with `await`; use one per event loop.

    Concurrent calls are coalesced (auto-pipelining, as ioredis and StackExchange.Redis's
    multiplexer do): a call queues its commands, and one flush task per event-loop turn
    writes everything queued in one write on one pooled connection and hands each caller
    its own replies. Measured (scripts/bench.py, concurrency mode): with 50 tasks on one
    client, one write and one read per call left the client at a quarter of
    redis-benchmark -c 50, the per-command Python and system-call cost being the limit, not
    Redis. While a flush waits for its replies, the next one takes another connection.

    A write takes callers only while their replies together may carry at most as many
    stored values as one reply holds (shared_write); the rest go in the next write, on
    another connection, at once.

    Per caller: an error reply rejects only that caller's call, and so does an error making
    its chunks (a set_many seals as they are taken, _made); a caller cancelled before
    the write is not sent, one cancelled later has its replies read and dropped (the
    connection stays in step); when the connection fails
    mid-batch, every caller still waiting gets the failure and retries on its own
    (Retrying), as an uncoalesced call would.
    """

    def __init__(self, config: TransportConfig) -> None:
        super().__init__(config)
        self._idle: deque[_AsyncTlsConnection] = deque()
        self._all: list[_AsyncTlsConnection] = []
        self._waiters: deque[asyncio.Future[_AsyncTlsConnection]] = deque()
        self.generation = 0
        self._queue: list[_Queued] = []
        self._next_flush: asyncio.Task[None] | None = None  # will take the queue
        self._flushes: set[asyncio.Task[None]] = set()
        self._write_values = reply_values(config.max_reply_bytes, config.max_value_bytes)

    def _new_connection(self) -> _AsyncTlsConnection:
        return _AsyncTlsConnection(
            material=self.material,
            on_handshake=self._record_handshake,
            on_connected=self._record_connect,
            generation=self.generation,
            parser_class=_CountingParser,
            max_reply_bytes=self.config.max_reply_bytes,
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
        if not _in_step(conn):
            conn.generation = -1  # see _Pool.release
        # Hand the connection straight to the oldest live waiter, else back to the pool.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    async def _discard(self, conn: _AsyncTlsConnection) -> None:
        await conn.disconnect(nowait=True)
        self._release(conn)
        self.generation += 1

    async def execute(self, *args: Arg) -> Reply:
        return await self.execute_packed((pack_command(args),))

    async def execute_packed(self, packed: Iterable[Buffer], values: int = 0) -> Reply:
        """One command's reply; `values`: how many stored values it may carry at most."""
        return (await self.execute_many(packed, 1, values))[0]

    async def execute_many(
        self, packed: Iterable[Buffer], replies: int, values: int = 0
    ) -> list[Reply]:
        """The replies of `packed`'s commands; `values`: how many stored values they may
        carry at most together (what a coalesced write counts, shared_write)."""
        try:
            return await self._submit(packed, replies, values)
        except _TRANSIENT as exc:
            return await self._again(lambda: self._submit(packed, replies, values), exc)

    def _submit(
        self, packed: Iterable[Buffer], replies: int, values: int
    ) -> asyncio.Future[list[Reply]]:
        """Queue one caller's commands for the next flush; the future gets its replies."""
        done: asyncio.Future[list[Reply]] = asyncio.get_running_loop().create_future()
        # The first call of this turn starts the flush (again if that one was cancelled
        # before it ran: the queue must never wait for a flush that will not come).
        if self._next_flush is None or self._next_flush.done():
            self._start_flush()
        self._queue.append((packed, replies, done, values))
        return done

    def _start_flush(self) -> None:
        flush = self._next_flush = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(flush)
        flush.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        """Write the queued calls that fit one write (shared_write) on one connection, and
        start the next flush for the rest; share out the replies."""
        queue, self._queue, self._next_flush = self._queue, [], None
        queue = [queued for queued in queue if not queued[2].done()]  # cancelled: not sent
        taken = shared_write(queue, self._write_values)
        if taken < len(queue):
            # Before this flush awaits anything: callers queued meanwhile join the next one.
            self._queue = queue[taken:]
            self._start_flush()
        batch, pieces = _made(queue[:taken])
        if not batch:
            return
        delivered = 0
        try:
            conn = await self._acquire()
        except BaseException as exc:  # BackendUnavailable("pool"), or the flush cancelled
            if _fail(batch, exc):
                raise
            return
        try:
            # Joined as resp.writes joins a batch: asyncio's SSL transport makes a TLS
            # record of every piece, and the server decrypts each. (redis-py's stub says
            # bytes; it writes any buffer, with StreamWriter.writelines.)
            chunks: list[Any] = writes(pieces)
            await conn.send_packed_command(chunks, False)
            # Every caller's replies in one list, read as _replies reads them: a flush of
            # 50 single GETs has 50 replies, mostly already in the buffer after the first.
            # Nothing is read past a reply redis-py raises; the callers before its owner
            # still get their replies, as when each read its own.
            total = sum([queued[1] for queued in batch])
            got: list[Reply] = []
            taken = 0
            for _, count, done, _ in batch:
                end = taken + count
                while len(got) < end and not (got and _fatal(got[-1])):
                    got.append(await _areply(conn))
                    _drain(conn, got, total)
                replies = _checked(got[taken:end])
                taken = end
                delivered += 1
                if not done.done():
                    _deliver(done, replies)
        except BaseException as exc:
            # Failed or cancelled mid-reply: the connection's read position is unknown.
            # Every caller still waiting hears of it first, whatever closing it does.
            cancelled = _fail(batch[delivered:], exc)
            await self._discard(conn)
            if cancelled:
                raise
            return
        self._release(conn)

    async def _again(
        self, do: Callable[[], Awaitable[T]], error: BaseException, retries: int | None = None
    ) -> T:
        """See Transport._again."""
        retrying = Retrying(self, error, self.config.retries if retries is None else retries)
        while (delay := retrying.delay()) is not None:
            await asyncio.sleep(delay)
            with retrying.attempt():
                return await do()
        raise retrying.unavailable() from retrying.error

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Callable[[Commands], Awaitable[list[Reply]]]]:
        """See Transport.session."""
        conn = await self._acquire()

        async def run(commands: Commands) -> list[Reply]:
            with _unavailable_on_failure():
                await conn.send_packed_command((pack_many(list(commands)),), False)
                return _outcome(await _areplies(conn, len(commands)))

        try:
            yield run
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        finally:
            self._release(conn)

    async def probe(self) -> float:
        """See Transport.probe."""
        try:
            return await self._probe_once()
        except _TRANSIENT as exc:
            return await self._again(self._probe_once, exc, retries=0)

    async def _probe_once(self) -> float:
        start = time.perf_counter()
        conn = self._new_connection()
        try:
            await conn.send_packed_command((_PING,), False)
            _outcome([await _areply(conn)])
        finally:
            await conn.disconnect(nowait=True)
        return time.perf_counter() - start

    def reset(self) -> None:
        self.generation += 1

    def pool_state(self) -> tuple[int, int, int]:
        """See Transport.pool_state."""
        return len(self._all), len(self._all) - len(self._idle), self.config.max_connections

    async def close(self) -> None:
        """Let the flushes in flight finish (their callers get their replies), then close."""
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        conns, self._all = self._all, []
        self._idle.clear()
        for conn in conns:
            await conn.disconnect(nowait=True)


def _made(batch: list[_Queued]) -> tuple[list[_Queued], list[Buffer]]:
    """The callers to send and their chunks, made before anything is written (a set_many's
    values are sealed as its chunks are taken, resp.Deferred): a caller whose chunks cannot be
    made gets that error alone and is left out, rather than failing everyone in the batch."""
    ready: list[_Queued] = []
    pieces: list[Buffer] = []
    for queued in batch:
        try:
            mine = list(queued[0])
        except Exception as exc:
            queued[2].set_exception(exc)
            continue
        ready.append(queued)
        pieces.extend(mine)
    return ready, pieces


def _deliver(done: asyncio.Future[list[Reply]], replies: list[Reply]) -> None:
    try:
        done.set_result(_outcome(replies))
    except CommandRejected as exc:
        done.set_exception(exc)


def _fail(batch: Sequence[_Queued], error: BaseException) -> bool:
    """Give every caller still waiting the batch's failure; True when it is not an
    Exception (the flush itself was cancelled: the callers get a connection error, which
    they may retry, and the caller of this re-raises)."""
    cancelled = not isinstance(error, Exception)
    failure = RedisConnectionError("the connection's batch was cancelled") if cancelled else error
    for queued in batch:
        if not queued[2].done():
            queued[2].set_exception(failure)
    return cancelled


__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "TLS12_CIPHERS",
    "AsyncTransport",
    "BaseTransport",
    "ConnectionMaterial",
    "Retrying",
    "TlsInfo",
    "Transport",
    "TransportConfig",
    "build_ssl_context",
    "cache_options",
    "material_from",
    "reply_limit_bytes",
    "reply_values",
]
