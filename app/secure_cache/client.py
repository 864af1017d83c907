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

Both classes share core.CacheCore; use one AsyncSecureCache per event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self, TypeVar

from secure_cache.core import (
    CacheCore,
    Clock,
    RotationReport,
    dump_json,
    json_value,
    logical_key,
    ttl_args,
    value_bytes,
)
from secure_cache.errors import BackendUnavailable, CommandRejected
from secure_cache.metrics import SecurityEvents
from secure_cache.settings import Settings
from secure_cache.transport import (
    AsyncSession,
    AsyncTransport,
    Session,
    Transport,
    TransportConfig,
    pack_command,
    pack_get,
)

T = TypeVar("T")
DEFAULT_ROTATION_BATCH = 200
_WATCH_ATTEMPTS = 3


class _CoreViews:
    """What both clients read from their core the same way, sync or async."""

    _core: CacheCore

    @property
    def events(self) -> SecurityEvents:
        return self._core.events

    @property
    def backend(self) -> str:
        """Which backend serves now: `redis`, or `memory` while the fallback is active."""
        return "memory" if self._core.degraded else "redis"

    def stored_name(self, key: str) -> bytes:
        """The opaque name `key` is stored under in Redis (for operators and tests)."""
        return self._core.primary_name(logical_key(key))


class SecureCache(_CoreViews):
    """The synchronous client; thread-safe."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport | None = None,
        events: SecurityEvents | None = None,
        clock: Clock = time.monotonic,
        **transport_options: Any,
    ) -> None:
        """Build the client; nothing connects until the first command (or from_env()).

        Args:
            settings: validated settings (Settings.from_env() or load_settings()).
            transport: a ready transport (tests, benchmarks); built from settings otherwise.
            events: where security events are counted and logged.
            clock: monotonic clock for TTLs and reconnect backoff (tests).
            transport_options: socket_timeout, connect_timeout, max_connections, retries.
        """
        self._core = CacheCore(settings, events=events, clock=clock)
        self._transport = transport or Transport(
            TransportConfig.from_settings(settings, **transport_options)
        )
        self._lock = threading.Lock()  # guards the fallback and the switch back to Redis
        self._recovering = threading.Lock()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, connect: bool = True, **options: Any
    ) -> Self:
        """Validate the environment (ConfigurationError lists every problem), then connect.

        An unreachable Redis at startup is not an error: the cache starts on the fallback.
        """
        cache = cls(Settings.from_env(environ), **options)
        if connect:
            cache.ping()
        return cache

    # -- core API -------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The value of `key`, or None (absent, expired, or failed authentication)."""
        logical = logical_key(key)
        core = self._core
        if core.degraded:
            served, value = self._in_memory(lambda: core.memory.get(key))
            if served:
                return value
        try:
            if core.single_key:
                name = core.primary_name(logical)
                raw = self._transport.execute_packed(pack_get(name))
                return None if raw is None else core.open(name, logical, raw)
            names = core.keyring.names(logical)
            raws = self._transport.execute_packed(pack_command((b"MGET", *names)))
            return core.pick(names, logical, raws)
        except BackendUnavailable as exc:
            self._failed(exc)
            return self._in_memory(lambda: core.memory.get(key))[1]
        except CommandRejected as exc:
            core.rejected(exc)
            return None

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store `value` (sealed) for `ttl` seconds (None: until evicted or deleted)."""
        logical = logical_key(key)
        value = value_bytes(value)
        expiry = ttl_args(ttl)
        core = self._core
        if core.degraded and self._in_memory(lambda: core.memory.set(key, value, ttl))[0]:
            return
        try:
            self._transport.execute_packed(core.set_command(logical, value, expiry))
        except BackendUnavailable as exc:
            self._failed(exc)
            self._in_memory(lambda: core.memory.set(key, value, ttl))
        except CommandRejected as exc:
            core.rejected(exc)

    def delete(self, key: str) -> bool:
        """Remove `key` under every configured data key; true if something was removed."""
        logical = logical_key(key)
        core = self._core
        if core.degraded:
            served, existed = self._in_memory(lambda: core.memory.delete(key))
            if served:
                return bool(existed)
        try:
            removed = self._transport.execute_packed(
                pack_command((b"DEL", *core.keyring.names(logical)))
            )
            return bool(removed)
        except BackendUnavailable as exc:
            self._failed(exc)
            return bool(self._in_memory(lambda: core.memory.delete(key))[1])
        except CommandRejected as exc:
            core.rejected(exc)
            return False

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The found values of `keys` in one round trip (MGET); misses are left out."""
        keys = list(keys)
        logicals = [logical_key(k) for k in keys]
        core = self._core
        if not keys:
            return {}
        if core.degraded:
            served, found = self._in_memory(lambda: _memory_many(core, keys))
            if served:
                return found or {}
        try:
            if core.single_key:
                names = [core.primary_name(lg) for lg in logicals]
                raws = self._transport.execute_packed(pack_command((b"MGET", *names)))
                return _open_many(core, keys, logicals, names, raws)
            per_key = [core.keyring.names(lg) for lg in logicals]
            flat = [n for names in per_key for n in names]
            raws = self._transport.execute_packed(pack_command((b"MGET", *flat)))
        except BackendUnavailable as exc:
            self._failed(exc)
            return self._in_memory(lambda: _memory_many(core, keys))[1] or {}
        except CommandRejected as exc:
            core.rejected(exc)
            return {}
        return _pick_many(core, keys, logicals, per_key, raws)

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store several values in one round trip (pipelined SETs)."""
        pairs = [(k, logical_key(k), value_bytes(v)) for k, v in items.items()]
        expiry = ttl_args(ttl)
        core = self._core
        if not pairs:
            return
        if core.degraded and self._in_memory(lambda: _memory_set_many(core, pairs, ttl))[0]:
            return
        try:
            packed = b"".join(core.set_command(lg, v, expiry) for _, lg, v in pairs)
            self._transport.execute_many(packed, len(pairs))
        except BackendUnavailable as exc:
            self._failed(exc)
            self._in_memory(lambda: _memory_set_many(core, pairs, ttl))
        except CommandRejected as exc:
            core.rejected(exc)

    def get_json(self, key: str) -> Any:
        return json_value(self.get(key))

    def set_json(self, key: str, obj: Any, ttl: float | None = None) -> None:
        self.set(key, dump_json(obj), ttl)

    def ping(self) -> bool:
        """True when Redis answers; otherwise the fallback takes over (and False)."""
        try:
            self._transport.execute(b"PING")
        except BackendUnavailable as exc:
            self._failed(exc)
            return False
        except CommandRejected as exc:
            self._core.rejected(exc)
            return False
        return True

    def status(self) -> dict[str, Any]:
        """Backend, negotiated TLS, key ids and security counters (no secrets)."""
        core = self._core
        if core.degraded:
            if core.probe_due():
                self._try_recover()
        elif self._transport.tls_info is None:
            self.ping()
        return core.status(self._transport.tls_info)

    # -- rotation -------------------------------------------------------------------------

    def rotate(
        self, *, batch_size: int = DEFAULT_ROTATION_BATCH, max_batches: int | None = None
    ) -> RotationReport:
        """Move every entry of the previous keys to the primary key, in SCAN batches.

        Each batch is one WATCH/MULTI/EXEC transaction, so the pass can be interrupted at
        any point and run again; `max_batches` bounds the work of one call. When the report
        says `complete`, the previous keys own no entry and can be removed from the config.
        Raises BackendUnavailable when Redis is unreachable (rotation needs it).
        """
        core = self._core
        report = RotationReport()
        if core.single_key:
            report.complete = True
            return report
        self._require_redis()
        with self._transport.session() as session:
            for pattern in core.scan_patterns():
                cursor: bytes | int = b"0"
                while max_batches is None or report.batches < max_batches:
                    cursor, names = session.execute(
                        b"SCAN", cursor, b"MATCH", pattern, b"COUNT", batch_size
                    )
                    if names:
                        self._rotate_batch(session, list(names), report)
                        report.batches += 1
                    if cursor in (b"0", 0):
                        break
            report.remaining = _count_remaining(session, core, batch_size)
        report.complete = report.remaining == 0
        return report

    def _rotate_batch(self, session: Session, names: list[bytes], report: RotationReport) -> None:
        report.scanned += len(names)
        for _ in range(_WATCH_ATTEMPTS):
            session.execute(b"WATCH", *names)
            replies = session.execute_many([(b"MGET", *names), *[(b"PTTL", n) for n in names]])
            plan = self._core.plan_batch(names, replies[0], replies[1:])
            if not plan.commands:
                session.execute(b"UNWATCH")
                return
            results = session.execute_many([(b"MULTI",), *plan.commands, (b"EXEC",)])
            if results[-1] is not None:  # None: a watched name changed; read again
                self._core.tally(plan, results[-1], report)
                return
        report.conflicts += 1

    def _require_redis(self) -> None:
        core = self._core
        if core.degraded:
            self._try_recover(force=True)
        if core.degraded:
            raise BackendUnavailable(
                core.last_failure or "connection", "redis is unavailable and rotation needs it"
            )

    # -- fallback -------------------------------------------------------------------------

    def _failed(self, exc: BackendUnavailable) -> None:
        with self._lock:
            self._core.failed(exc)

    def _in_memory(self, op: Callable[[], T]) -> tuple[bool, T | None]:
        """Run `op` on the fallback if it is (still) serving: (served, result)."""
        core = self._core
        if core.probe_due():
            self._try_recover()
        with self._lock:
            if core.degraded:
                return True, op()
        return False, None

    def _try_recover(self, *, force: bool = False) -> None:
        """Probe Redis; if it answers, replay the outage's changes and switch back."""
        if not self._recovering.acquire(blocking=False):
            return  # another thread is probing; this call uses the fallback meanwhile
        core = self._core
        try:
            if not core.degraded or not (force or core.probe_due()):
                return
            try:
                self._transport.probe()
            except (BackendUnavailable, CommandRejected) as exc:
                core.probe_failed(exc)
                return
            self._transport.reset()
            with self._lock:
                pending = core.memory.drain()
                try:
                    for packed, count in core.replay_commands(pending):
                        self._transport.execute_many(packed, count)
                except (BackendUnavailable, CommandRejected) as exc:
                    core.restore(pending)
                    core.probe_failed(exc)
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


class AsyncSecureCache(_CoreViews):
    """The asyncio twin of SecureCache: same API with `await`, same core."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: AsyncTransport | None = None,
        events: SecurityEvents | None = None,
        clock: Clock = time.monotonic,
        **transport_options: Any,
    ) -> None:
        self._core = CacheCore(settings, events=events, clock=clock)
        self._transport = transport or AsyncTransport(
            TransportConfig.from_settings(settings, **transport_options)
        )
        self._lock = asyncio.Lock()

    @classmethod
    async def from_env(
        cls, environ: Mapping[str, str] | None = None, *, connect: bool = True, **options: Any
    ) -> Self:
        cache = cls(Settings.from_env(environ), **options)
        if connect:
            await cache.ping()
        return cache

    async def get(self, key: str) -> bytes | None:
        logical = logical_key(key)
        core = self._core
        if core.degraded:
            served, value = await self._in_memory(lambda: core.memory.get(key))
            if served:
                return value
        try:
            if core.single_key:
                name = core.primary_name(logical)
                raw = await self._transport.execute_packed(pack_get(name))
                return None if raw is None else core.open(name, logical, raw)
            names = core.keyring.names(logical)
            raws = await self._transport.execute_packed(pack_command((b"MGET", *names)))
            return core.pick(names, logical, raws)
        except BackendUnavailable as exc:
            core.failed(exc)
            return (await self._in_memory(lambda: core.memory.get(key)))[1]
        except CommandRejected as exc:
            core.rejected(exc)
            return None

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        logical = logical_key(key)
        value = value_bytes(value)
        expiry = ttl_args(ttl)
        core = self._core
        if core.degraded and (await self._in_memory(lambda: core.memory.set(key, value, ttl)))[0]:
            return
        try:
            await self._transport.execute_packed(core.set_command(logical, value, expiry))
        except BackendUnavailable as exc:
            core.failed(exc)
            await self._in_memory(lambda: core.memory.set(key, value, ttl))
        except CommandRejected as exc:
            core.rejected(exc)

    async def delete(self, key: str) -> bool:
        logical = logical_key(key)
        core = self._core
        if core.degraded:
            served, existed = await self._in_memory(lambda: core.memory.delete(key))
            if served:
                return bool(existed)
        try:
            removed = await self._transport.execute_packed(
                pack_command((b"DEL", *core.keyring.names(logical)))
            )
            return bool(removed)
        except BackendUnavailable as exc:
            core.failed(exc)
            return bool((await self._in_memory(lambda: core.memory.delete(key)))[1])
        except CommandRejected as exc:
            core.rejected(exc)
            return False

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(keys)
        logicals = [logical_key(k) for k in keys]
        core = self._core
        if not keys:
            return {}
        if core.degraded:
            served, found = await self._in_memory(lambda: _memory_many(core, keys))
            if served:
                return found or {}
        try:
            if core.single_key:
                names = [core.primary_name(lg) for lg in logicals]
                raws = await self._transport.execute_packed(pack_command((b"MGET", *names)))
                return _open_many(core, keys, logicals, names, raws)
            per_key = [core.keyring.names(lg) for lg in logicals]
            flat = [n for names in per_key for n in names]
            raws = await self._transport.execute_packed(pack_command((b"MGET", *flat)))
        except BackendUnavailable as exc:
            core.failed(exc)
            return (await self._in_memory(lambda: _memory_many(core, keys)))[1] or {}
        except CommandRejected as exc:
            core.rejected(exc)
            return {}
        return _pick_many(core, keys, logicals, per_key, raws)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        pairs = [(k, logical_key(k), value_bytes(v)) for k, v in items.items()]
        expiry = ttl_args(ttl)
        core = self._core
        if not pairs:
            return
        if core.degraded and (await self._in_memory(lambda: _memory_set_many(core, pairs, ttl)))[0]:
            return
        try:
            packed = b"".join(core.set_command(lg, v, expiry) for _, lg, v in pairs)
            await self._transport.execute_many(packed, len(pairs))
        except BackendUnavailable as exc:
            core.failed(exc)
            await self._in_memory(lambda: _memory_set_many(core, pairs, ttl))
        except CommandRejected as exc:
            core.rejected(exc)

    async def get_json(self, key: str) -> Any:
        return json_value(await self.get(key))

    async def set_json(self, key: str, obj: Any, ttl: float | None = None) -> None:
        await self.set(key, dump_json(obj), ttl)

    async def ping(self) -> bool:
        try:
            await self._transport.execute(b"PING")
        except BackendUnavailable as exc:
            self._core.failed(exc)
            return False
        except CommandRejected as exc:
            self._core.rejected(exc)
            return False
        return True

    async def status(self) -> dict[str, Any]:
        core = self._core
        if core.degraded:
            if core.probe_due():
                await self._try_recover()
        elif self._transport.tls_info is None:
            await self.ping()
        return core.status(self._transport.tls_info)

    async def rotate(
        self, *, batch_size: int = DEFAULT_ROTATION_BATCH, max_batches: int | None = None
    ) -> RotationReport:
        """See SecureCache.rotate."""
        core = self._core
        report = RotationReport()
        if core.single_key:
            report.complete = True
            return report
        if core.degraded:
            await self._try_recover(force=True)
        if core.degraded:
            raise BackendUnavailable(
                core.last_failure or "connection", "redis is unavailable and rotation needs it"
            )
        async with self._transport.session() as session:
            for pattern in core.scan_patterns():
                cursor: bytes | int = b"0"
                while max_batches is None or report.batches < max_batches:
                    cursor, names = await session.execute(
                        b"SCAN", cursor, b"MATCH", pattern, b"COUNT", batch_size
                    )
                    if names:
                        await self._rotate_batch(session, list(names), report)
                        report.batches += 1
                    if cursor in (b"0", 0):
                        break
            report.remaining = await _count_remaining_async(session, core, batch_size)
        report.complete = report.remaining == 0
        return report

    async def _rotate_batch(
        self, session: AsyncSession, names: list[bytes], report: RotationReport
    ) -> None:
        report.scanned += len(names)
        for _ in range(_WATCH_ATTEMPTS):
            await session.execute(b"WATCH", *names)
            replies = await session.execute_many(
                [(b"MGET", *names), *[(b"PTTL", n) for n in names]]
            )
            plan = self._core.plan_batch(names, replies[0], replies[1:])
            if not plan.commands:
                await session.execute(b"UNWATCH")
                return
            results = await session.execute_many([(b"MULTI",), *plan.commands, (b"EXEC",)])
            if results[-1] is not None:
                self._core.tally(plan, results[-1], report)
                return
        report.conflicts += 1

    async def _in_memory(self, op: Callable[[], T]) -> tuple[bool, T | None]:
        core = self._core
        if core.probe_due():
            await self._try_recover()
        async with self._lock:
            if core.degraded:
                return True, op()
        return False, None

    async def _try_recover(self, *, force: bool = False) -> None:
        core = self._core
        if self._lock.locked() or not core.degraded or not (force or core.probe_due()):
            return
        async with self._lock:
            if not core.degraded:
                return
            try:
                await self._transport.probe()
            except (BackendUnavailable, CommandRejected) as exc:
                core.probe_failed(exc)
                return
            self._transport.reset()
            pending = core.memory.drain()
            try:
                for packed, count in core.replay_commands(pending):
                    await self._transport.execute_many(packed, count)
            except (BackendUnavailable, CommandRejected) as exc:
                core.restore(pending)
                core.probe_failed(exc)
                return
            core.recovered()

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


# -- helpers shared by both clients ------------------------------------------------------------


def _memory_many(core: CacheCore, keys: Sequence[str]) -> dict[str, bytes]:
    found = {}
    for key in keys:
        value = core.memory.get(key)
        if value is not None:
            found[key] = value
    return found


def _memory_set_many(
    core: CacheCore, pairs: Sequence[tuple[str, bytes, bytes]], ttl: float | None
) -> None:
    for key, _, value in pairs:
        core.memory.set(key, value, ttl)


def _open_many(
    core: CacheCore,
    keys: Sequence[str],
    logicals: Sequence[bytes],
    names: Sequence[bytes],
    raws: Sequence[Any],
) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    open_value = core.open
    for key, logical, name, raw in zip(keys, logicals, names, raws, strict=True):
        if raw is not None:
            value = open_value(name, logical, raw)
            if value is not None:
                found[key] = value
    return found


def _pick_many(
    core: CacheCore,
    keys: Sequence[str],
    logicals: Sequence[bytes],
    per_key: Sequence[tuple[bytes, ...]],
    raws: Sequence[Any],
) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    width = len(per_key[0])
    for index, (key, logical, names) in enumerate(zip(keys, logicals, per_key, strict=True)):
        value = core.pick(names, logical, list(raws[index * width : (index + 1) * width]))
        if value is not None:
            found[key] = value
    return found


def _count_remaining(session: Session, core: CacheCore, batch_size: int) -> int:
    remaining = 0
    for pattern in core.scan_patterns():
        cursor: bytes | int = b"0"
        while True:
            cursor, names = session.execute(
                b"SCAN", cursor, b"MATCH", pattern, b"COUNT", batch_size
            )
            remaining += len(names)
            if cursor in (b"0", 0):
                break
    return remaining


async def _count_remaining_async(session: AsyncSession, core: CacheCore, batch_size: int) -> int:
    remaining = 0
    for pattern in core.scan_patterns():
        cursor: bytes | int = b"0"
        while True:
            cursor, names = await session.execute(
                b"SCAN", cursor, b"MATCH", pattern, b"COUNT", batch_size
            )
            remaining += len(names)
            if cursor in (b"0", 0):
                break
    return remaining


__all__ = ["AsyncSecureCache", "RotationReport", "SecureCache"]
