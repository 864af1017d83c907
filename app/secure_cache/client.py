"""SecureCache and AsyncSecureCache: an encrypted cache over TLS Redis with a memory fallback.

    cache = SecureCache.from_env()          # validates everything, then connects
    cache.set("user:42", b"...", ttl=300)   # AES-256-GCM sealed, stored under a keyed-hash name
    cache.get("user:42")                    # -> bytes | None
    cache.delete("user:42")                 # -> bool
    cache.status()                          # -> dict (backend, TLS, key ids, counters)

There is one code path and it is the secure one: no option turns TLS, authentication or
encryption off. Cache calls never raise because Redis is unavailable: the client switches to
a bounded in-memory LRU, probes Redis with backoff, replays the writes and deletes made
meanwhile once it is back, and status() says which backend is live. A stored value that
fails authentication is a miss and a counted security event. Only programming errors (a
non-str key, a non-bytes value, a bad ttl) raise, with TypeError or ValueError.

Rotated material is picked up from its files while the process runs: the client
certificate and key, the CA bundle, the password file and the data keyring are checked
(a stat of each file) at most once per `reload_interval` seconds, and at once when Redis
refuses the password or certificate. New connections use the new material; pooled ones
finish their request and reconnect (see transport.py and material.py).

Both classes are thin shells over one sans-IO core (core.CacheCore): the core builds each
call and decides what its reply means; a shell only sends it, synchronously or with
asyncio, and guards the fallback with the lock its concurrency model needs. Their public
APIs are the same (tests/unit/test_cache_client_api.py). Use one AsyncSecureCache per
event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from secure_cache.core import (
    DEFAULT_RELOAD_INTERVAL_S,
    DEFAULT_ROTATION_BATCH,
    CacheCore,
    Call,
    Clock,
    RotationReport,
    dump_json,
    json_value,
)
from secure_cache.crypto import WallClock
from secure_cache.errors import BackendUnavailable, CommandRejected, ConfigurationError
from secure_cache.material import MaterialFiles
from secure_cache.metrics import SecurityEvents
from secure_cache.settings import Settings, max_value_bytes_from_env
from secure_cache.transport import (
    AsyncTransport,
    BaseTransport,
    Transport,
    TransportConfig,
    cache_options,
    material_from,
    reply_values,
)

if TYPE_CHECKING:
    from secure_cache.prometheus import CacheMetrics

T = TypeVar("T")


def _env_options(environ: Mapping[str, str] | None, options: dict[str, Any]) -> dict[str, Any]:
    """from_env's transport options: those of the deployment's largest value
    (HTTP_MAX_VALUE_BYTES, transport.cache_options, as the HTTP service's), then the caller's."""
    return {**cache_options(max_value_bytes_from_env(environ)), **options}


class _Shell:
    """What both clients do the same way, sync or async: views of the core, and reloads."""

    _core: CacheCore
    _transport: BaseTransport
    _files: MaterialFiles[Settings]

    def _attach(
        self,
        settings: Settings,
        transport: BaseTransport,
        events: SecurityEvents | None,
        clock: Clock,
        reload_interval: float | None,
        wall_clock: WallClock,
    ) -> None:
        config = transport.config
        self._core = CacheCore(
            settings,
            events=events,
            clock=clock,
            wall_clock=wall_clock,
            max_reply_bytes=config.max_reply_bytes,
            reply_values=reply_values(config.max_reply_bytes, config.max_value_bytes),
        )
        self._files = MaterialFiles(settings, clock=clock, interval=reload_interval)
        self._reloading = threading.Lock()
        transport.on_refused = self._reload_refused

    @property
    def events(self) -> SecurityEvents:
        return self._core.events

    def attach_metrics(self, metrics: CacheMetrics) -> None:
        """Feed `metrics` (prometheus.py) from this client; without it the hooks cost one
        `is None` test each."""
        self._core.metrics = metrics
        self._transport.on_connected = metrics.connected
        metrics.attach_client(self._core, self._transport)

    @property
    def backend(self) -> str:
        """Which backend serves now: `redis`, or `memory` while the fallback is active."""
        return "memory" if self._core.degraded else "redis"

    def stored_name(self, key: str) -> bytes:
        """The opaque name `key` is stored under in Redis (for operators and tests)."""
        return self._core.stored_name(key)

    # -- material reload (file I/O only; the same for both clients) -----------------------

    def reload_if_due(self) -> None:
        """Adopt changed material files when the timed check is due: before every command,
        status and metrics scrape (the HTTP API's /metrics), so that what the client reports
        is what its files name now, not what they named at its last command."""
        if self._files.due():
            self._reload_due()

    def _reload_due(self) -> None:
        if self._reloading.acquire(blocking=False):  # another thread is on it otherwise
            try:
                self._reload()
            finally:
                self._reloading.release()

    def _reload_refused(self) -> bool:
        """Redis refused the password or certificate: reread now; True if they changed
        (here, or in another thread that was reloading while this one waited)."""
        before = self._transport.material.current
        with self._reloading:
            return self._reload() or self._transport.material.current is not before

    def _reload(self) -> bool:
        """Adopt changed material files; True when the connection material changed."""
        core = self._core
        try:
            found = self._files.poll()
        except ConfigurationError as exc:
            core.reload_failed(exc)
            return False
        if found is None:
            return False
        settings, changed, snapshot = found
        plan = core.plan_reload(settings, changed)
        if plan.connection:
            transport = self._transport
            try:
                material = material_from(settings, None if plan.tls else transport.material.current)
            except ConfigurationError as exc:
                self._files.rejected(snapshot)
                core.reload_failed(exc)
                return False
            transport.reconfigure(material)
        core.reloaded(plan)
        self._files.applied(settings, snapshot)
        return plan.connection


class SecureCache(_Shell):
    """The synchronous client; thread-safe."""

    _transport: Transport

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport | None = None,
        events: SecurityEvents | None = None,
        clock: Clock = time.monotonic,
        reload_interval: float | None = DEFAULT_RELOAD_INTERVAL_S,
        wall_clock: WallClock = time.time,
        **transport_options: Any,
    ) -> None:
        """Build the client; nothing connects until the first command (or from_env()).

        Args:
            settings: validated settings (Settings.from_env() or load_settings()).
            transport: a ready transport (tests, benchmarks); built from settings otherwise.
            events: where security events are counted and logged.
            clock: monotonic clock for TTLs, reconnect backoff and reload checks (tests).
            reload_interval: seconds between checks of the material files (None: only
                when Redis refuses the credentials or certificate).
            wall_clock: Unix time in seconds, which envelope expiries are written and
                checked with (crypto.py, "Expiry"; tests).
            transport_options: socket_timeout, connect_timeout, max_connections, retries,
                max_reply_bytes (the most one reply may hold; transport.reply_limit_bytes of
                the largest value stored, 32 MiB by default for values up to 1 MiB) and
                max_value_bytes (that largest value, 1 MiB by default): pass both with
                **transport.cache_options(largest); from_env() derives them from
                HTTP_MAX_VALUE_BYTES.
        """
        self._transport = transport or Transport(
            TransportConfig.from_settings(settings, **transport_options)
        )
        self._attach(settings, self._transport, events, clock, reload_interval, wall_clock)
        self._lock = threading.Lock()  # guards the fallback and the switch back to Redis
        self._recovering = threading.Lock()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, connect: bool = True, **options: Any
    ) -> Self:
        """Validate the environment (ConfigurationError lists every problem), then connect.

        An unreachable Redis at startup is not an error: the cache starts on the fallback.
        """
        cache = cls(Settings.from_env(environ), **_env_options(environ, options))
        if connect:
            cache.ping()
        return cache

    # -- the cache API --------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The value of `key`, or None (absent, expired, or failed authentication)."""
        return self._call(self._core.get(key))

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store `value` (sealed) for `ttl` seconds (None: until evicted or deleted)."""
        self._call(self._core.set(key, value, ttl))

    def delete(self, key: str) -> bool:
        """Remove `key` under every configured data key; true if something was removed."""
        return self._call(self._core.delete(key))

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The found values of `keys` in one round trip; misses are left out. One MGET, or
        MGETs of at most as many keys as one reply holds (transport.reply_values), in one
        write (docs/client.md, "Large values and `get_many`")."""
        return self._call(self._core.get_many(keys))

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store several values in one round trip (pipelined SETs). Not atomic: when the write
        fails partway, the values before the failure may be stored."""
        self._call(self._core.set_many(items, ttl))

    def get_json(self, key: str) -> Any:
        return json_value(self.get(key))

    def set_json(self, key: str, obj: Any, ttl: float | None = None) -> None:
        self.set(key, dump_json(obj), ttl)

    def ping(self) -> bool:
        """True when Redis answers; otherwise the fallback takes over (and False)."""
        return self._call(self._core.ping())

    def status(self) -> dict[str, Any]:
        """Backend, negotiated TLS, key ids and security counters (no secrets).

        The material files are checked first, as before a command: an idle app otherwise
        reported the data key it had before a rotation until some command arrived."""
        self.reload_if_due()
        need = self._core.status_needs()
        if need == "probe":
            self._try_recover()
        elif need == "handshake":
            self._handshake()
        return self._core.status(self._transport.tls_info)

    def _handshake(self) -> None:
        """One new connection (TLS, AUTH, PING, closed; transport.probe), whose handshake is
        the transport's tls_info then; a failure is a failed command's (the fallback)."""
        try:
            self._transport.probe()
        except BackendUnavailable as exc:
            self._failed(exc)
        except CommandRejected as exc:
            self._core.rejected(exc)

    def rotate(
        self, *, batch_size: int = DEFAULT_ROTATION_BATCH, max_batches: int | None = None
    ) -> RotationReport:
        """Move every entry of the previous keys to the primary key, in SCAN batches.

        Each batch moves in WATCH/MULTI/EXEC transactions of at most 8 MiB of values
        (core.ROTATION_GROUP_BYTES), or half of a smaller max_reply_bytes
        (core.rotation_group_bytes), so the pass can be interrupted at
        any point and run again; `max_batches` bounds the work of one call. When the report
        says `complete`, the previous keys own no entry and can be removed from the config.
        Raises BackendUnavailable when Redis is unreachable (rotation needs it).
        """
        self.reload_if_due()
        core = self._core
        steps = core.rotation(batch_size, max_batches)
        try:
            commands = next(steps)
        except StopIteration as done:  # a single key: nothing to move
            report: RotationReport = done.value
            return report
        if core.should_probe(force=True):
            self._try_recover(force=True)
        core.require_redis()
        with self._transport.session() as run:
            try:
                while True:
                    commands = steps.send(run(commands))
            except StopIteration as done:
                finished: RotationReport = done.value
        return finished

    # -- I/O ------------------------------------------------------------------------------

    def _call(self, call: Call[T]) -> T:
        """Send one call to Redis, or serve it from the fallback."""
        self.reload_if_due()
        core = self._core
        if core.degraded:
            served, result = self._in_memory(call)
            if served:
                return result
        # A thread has a connection of its own: only the asyncio shell counts the values.
        packed, replies, finish, _, default, _ = call
        try:
            if replies == 1:
                reply = self._transport.execute_packed(packed)
            elif replies:
                reply = self._transport.execute_many(packed, replies)
            else:
                return default
        except BackendUnavailable as exc:
            self._failed(exc)
            return self._in_memory(call)[1]
        except CommandRejected as exc:
            core.rejected(exc)
            return default
        return finish(reply)

    def _failed(self, exc: BackendUnavailable) -> None:
        with self._lock:
            self._core.failed(exc)

    def _in_memory(self, call: Call[T]) -> tuple[bool, T]:
        """Run `call` on the fallback if it is (still) serving: (served, result)."""
        core = self._core
        if core.probe_due():
            self._try_recover()
        with self._lock:
            if core.degraded:
                return True, call[3]()
        return False, call[4]

    def _try_recover(self, *, force: bool = False) -> None:
        """Probe Redis; if it answers, replay the outage's changes and switch back."""
        if not self._recovering.acquire(blocking=False):
            return  # another thread is probing; this call uses the fallback meanwhile
        core = self._core
        try:
            if not core.should_probe(force=force):
                return
            try:
                self._transport.probe()
            except (BackendUnavailable, CommandRejected) as exc:
                core.probe_failed(exc)
                return
            self._transport.reset()
            with self._lock:
                pending, chunks = core.replay()
                try:
                    for packed, count in chunks:
                        self._transport.execute_many(packed, count)
                except (BackendUnavailable, CommandRejected) as exc:
                    core.replay_failed(pending, exc)
                    return
                core.recovered()
        finally:
            self._recovering.release()

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncSecureCache(_Shell):
    """The asyncio client: SecureCache's API with `await`, the same core. Calls made
    concurrently by many tasks share writes on few connections (transport.AsyncTransport)."""

    _transport: AsyncTransport

    def __init__(
        self,
        settings: Settings,
        *,
        transport: AsyncTransport | None = None,
        events: SecurityEvents | None = None,
        clock: Clock = time.monotonic,
        reload_interval: float | None = DEFAULT_RELOAD_INTERVAL_S,
        wall_clock: WallClock = time.time,
        **transport_options: Any,
    ) -> None:
        """See SecureCache."""
        self._transport = transport or AsyncTransport(
            TransportConfig.from_settings(settings, **transport_options)
        )
        self._attach(settings, self._transport, events, clock, reload_interval, wall_clock)
        self._lock = asyncio.Lock()  # guards the switch back to Redis
        self._recovering = asyncio.Lock()

    @classmethod
    async def from_env(
        cls, environ: Mapping[str, str] | None = None, *, connect: bool = True, **options: Any
    ) -> Self:
        """See SecureCache.from_env."""
        cache = cls(Settings.from_env(environ), **_env_options(environ, options))
        if connect:
            await cache.ping()
        return cache

    # -- the cache API --------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """See SecureCache.get."""
        return await self._call(self._core.get(key))

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """See SecureCache.set."""
        await self._call(self._core.set(key, value, ttl))

    async def delete(self, key: str) -> bool:
        """See SecureCache.delete."""
        return await self._call(self._core.delete(key))

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """See SecureCache.get_many."""
        return await self._call(self._core.get_many(keys))

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """See SecureCache.set_many."""
        await self._call(self._core.set_many(items, ttl))

    async def get_json(self, key: str) -> Any:
        return json_value(await self.get(key))

    async def set_json(self, key: str, obj: Any, ttl: float | None = None) -> None:
        await self.set(key, dump_json(obj), ttl)

    async def ping(self) -> bool:
        """See SecureCache.ping."""
        return await self._call(self._core.ping())

    async def status(self) -> dict[str, Any]:
        """See SecureCache.status."""
        self.reload_if_due()
        need = self._core.status_needs()
        if need == "probe":
            await self._try_recover()
        elif need == "handshake":
            await self._handshake()
        return self._core.status(self._transport.tls_info)

    async def _handshake(self) -> None:
        """See SecureCache._handshake."""
        try:
            await self._transport.probe()
        except BackendUnavailable as exc:
            self._failed(exc)
        except CommandRejected as exc:
            self._core.rejected(exc)

    async def rotate(
        self, *, batch_size: int = DEFAULT_ROTATION_BATCH, max_batches: int | None = None
    ) -> RotationReport:
        """See SecureCache.rotate."""
        self.reload_if_due()
        core = self._core
        steps = core.rotation(batch_size, max_batches)
        try:
            commands = next(steps)
        except StopIteration as done:
            report: RotationReport = done.value
            return report
        if core.should_probe(force=True):
            await self._try_recover(force=True)
        core.require_redis()
        async with self._transport.session() as run:
            try:
                while True:
                    commands = steps.send(await run(commands))
            except StopIteration as done:
                finished: RotationReport = done.value
        return finished

    # -- I/O ------------------------------------------------------------------------------

    async def _call(self, call: Call[T]) -> T:
        """See SecureCache._call."""
        self.reload_if_due()
        core = self._core
        if core.degraded:
            served, result = await self._in_memory(call)
            if served:
                return result
        packed, replies, finish, _, default, values = call
        try:
            if replies == 1:
                reply = await self._transport.execute_packed(packed, values)
            elif replies:
                reply = await self._transport.execute_many(packed, replies, values)
            else:
                return default
        except BackendUnavailable as exc:
            self._failed(exc)
            return (await self._in_memory(call))[1]
        except CommandRejected as exc:
            core.rejected(exc)
            return default
        return finish(reply)

    def _failed(self, exc: BackendUnavailable) -> None:
        # No lock: nothing awaits between the check and the switch, so on one event loop
        # no other task can interleave (the sync client needs its lock for threads).
        self._core.failed(exc)

    async def _in_memory(self, call: Call[T]) -> tuple[bool, T]:
        """See SecureCache._in_memory."""
        core = self._core
        if core.probe_due():
            await self._try_recover()
        async with self._lock:
            if core.degraded:
                return True, call[3]()
        return False, call[4]

    async def _try_recover(self, *, force: bool = False) -> None:
        """See SecureCache._try_recover."""
        if self._recovering.locked():
            return  # another task is probing; this call uses the fallback meanwhile
        core = self._core
        async with self._recovering:
            if not core.should_probe(force=force):
                return
            try:
                await self._transport.probe()
            except (BackendUnavailable, CommandRejected) as exc:
                core.probe_failed(exc)
                return
            self._transport.reset()
            async with self._lock:
                pending, chunks = core.replay()
                try:
                    for packed, count in chunks:
                        await self._transport.execute_many(packed, count)
                except (BackendUnavailable, CommandRejected) as exc:
                    core.replay_failed(pending, exc)
                    return
                core.recovered()

    # -- lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


__all__ = ["DEFAULT_ROTATION_BATCH", "AsyncSecureCache", "RotationReport", "SecureCache"]
