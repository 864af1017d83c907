"""What SecureCache and AsyncSecureCache share: keys, envelopes, fallback state, status.

No I/O here. The two clients differ only in how they talk to Redis (transport.Transport or
transport.AsyncTransport) and which lock guards the fallback; every decision - which names
to read, how to seal, when a value is a miss, when to probe Redis again, what status()
reports - is made in this module, once.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from secure_cache.crypto import CIPHER_NAME, MAX_LOGICAL_KEY_BYTES, NAME_HASH, Keyring
from secure_cache.errors import (
    BackendUnavailable,
    CommandRejected,
    FailureKind,
    IntegrityError,
)
from secure_cache.memory import MemoryCache, Pending
from secure_cache.metrics import Event, SecurityEvents
from secure_cache.settings import Settings
from secure_cache.transport import (
    NO_EXPIRY,
    Expiry,
    TlsInfo,
    pack_command,
    pack_set,
    resp_args,
)

Clock = Callable[[], float]

PROBE_BACKOFF_INITIAL_S: Final = 0.25
PROBE_BACKOFF_MAX_S: Final = 10.0
_FAILURE_EVENTS: Final[dict[str, Event]] = {
    "auth": "auth_failure",
    "tls": "tls_failure",
    "timeout": "timeout",
    "connection": "connection_failure",
    "pool": "connection_failure",
}
_REPLAY_CHUNK: Final = 200


def logical_key(key: str) -> bytes:
    """The UTF-8 bytes of a cache key; TypeError/ValueError for programming errors."""
    if type(key) is not str:
        raise TypeError(f"cache keys are str, not {type(key).__name__}")
    try:
        data = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("cache keys must be valid Unicode (no lone surrogates)") from None
    if len(data) > MAX_LOGICAL_KEY_BYTES:
        raise ValueError(f"cache keys may be at most {MAX_LOGICAL_KEY_BYTES} bytes as UTF-8")
    return data


def value_bytes(value: bytes | bytearray | memoryview) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(
        f"cache values are bytes, not {type(value).__name__}; use set_json() for objects"
    )


def ttl_args(ttl: float | None) -> Expiry:
    """SET's expiry arguments, RESP-encoded: EX for whole seconds, PX otherwise."""
    if ttl is None:
        return NO_EXPIRY
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise TypeError(f"ttl is seconds as int or float, not {type(ttl).__name__}")
    if not ttl > 0:
        raise ValueError("ttl must be positive (or None for no expiry)")
    if isinstance(ttl, int):
        return (2, resp_args(b"EX", b"%d" % ttl))
    return (2, resp_args(b"PX", b"%d" % max(1, round(ttl * 1000))))


def dump_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class RotationReport:
    """What one rotation pass did. `complete` means no previous key still owns an entry."""

    scanned: int = 0
    migrated: int = 0
    superseded: int = 0  # a newer value already existed under the primary key
    discarded: int = 0  # failed authentication: unreadable by every key, removed
    conflicts: int = 0  # batches left for the next run after repeated WATCH aborts
    batches: int = 0
    remaining: int = 0
    complete: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchPlan:
    """The MULTI/EXEC body that moves one SCAN batch to the primary key."""

    commands: list[tuple[bytes, ...]] = field(default_factory=list)
    sets: int = 0  # SET ... NX commands, each followed by the DEL of its old name
    discarded: int = 0


class CacheCore:
    """Keyring, fallback memory, events and backend state for one client."""

    def __init__(
        self,
        settings: Settings,
        *,
        events: SecurityEvents | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.keyring = Keyring(
            settings.data_key,
            settings.previous_keys,
            prefix=settings.key_prefix,
            compress_min_bytes=settings.compress_min_bytes,
        )
        self.primary = self.keyring.primary
        self.primary_name = self.keyring.primary_name
        self.single_key = not self.keyring.previous
        self.memory = MemoryCache(
            settings.fallback_max_entries, clock=clock, max_bytes=settings.fallback_max_bytes
        )
        self.events = events or SecurityEvents()
        self._clock = clock
        self.degraded = False
        self.degraded_since: float | None = None  # wall clock, for status()
        self.last_failure: FailureKind | None = None
        self._backoff = PROBE_BACKOFF_INITIAL_S
        self._next_probe = 0.0

    # -- reading --------------------------------------------------------------------------

    def open(self, name: bytes, logical: bytes, raw: bytes) -> bytes | None:
        """The value, or None (a miss and a counted event) when it fails authentication."""
        try:
            return self.keyring.open_value(name, logical, raw)
        except IntegrityError:
            self.events.record("integrity_failure", key=name)
            return None

    def pick(self, names: tuple[bytes, ...], logical: bytes, raws: list[Any]) -> bytes | None:
        """First entry found, primary key's name first (rotation in progress)."""
        for name, raw in zip(names, raws, strict=True):
            if raw is not None:
                return self.open(name, logical, raw)
        return None

    # -- writing --------------------------------------------------------------------------

    def set_command(self, logical: bytes, value: bytes, expiry: Expiry) -> bytes:
        name = self.primary_name(logical)
        return pack_set(name, self.keyring.seal(name, logical, value), expiry)

    def replay_commands(self, pending: list[Pending]) -> list[tuple[bytes, int]]:
        """(packed commands, count) chunks that apply an outage's writes and deletes, in order."""
        chunks: list[tuple[bytes, int]] = []
        packed: list[bytes] = []
        for item in pending:
            logical = logical_key(item.key)
            if item.value is None:
                packed.append(pack_command((b"DEL", *self.keyring.names(logical))))
            else:
                expiry = (
                    NO_EXPIRY
                    if item.ttl_seconds is None
                    else ttl_args(max(item.ttl_seconds, 0.001))
                )
                packed.append(self.set_command(logical, item.value, expiry))
            if len(packed) == _REPLAY_CHUNK:
                chunks.append((b"".join(packed), len(packed)))
                packed = []
        if packed:
            chunks.append((b"".join(packed), len(packed)))
        return chunks

    def restore(self, pending: list[Pending]) -> None:
        """Put drained changes back after a failed replay (newer memory entries win)."""
        for item in pending:
            if item.key in self.memory:
                continue
            if item.value is None:
                self.memory.delete(item.key)
            else:
                self.memory.set(item.key, item.value, item.ttl_seconds)

    # -- backend state --------------------------------------------------------------------

    def failed(self, exc: BackendUnavailable) -> None:
        """A command could not reach Redis: count it and switch to the memory fallback."""
        self.events.record(_FAILURE_EVENTS[exc.kind], kind=exc.kind, during="command")
        self.last_failure = exc.kind
        if not self.degraded:
            self.degraded = True
            self.degraded_since = time.time()
            self._backoff = PROBE_BACKOFF_INITIAL_S
            self._next_probe = self._clock() + self._backoff
            self.events.record("fallback", backend="memory", cause=exc.kind)

    def rejected(self, exc: CommandRejected, name: bytes | None = None) -> None:
        self.events.record("acl_denied" if exc.acl else "command_error", key=name)

    def probe_due(self) -> bool:
        return self._clock() >= self._next_probe

    def probe_failed(self, exc: BackendUnavailable | CommandRejected) -> None:
        if isinstance(exc, BackendUnavailable):
            self.events.record(_FAILURE_EVENTS[exc.kind], kind=exc.kind, during="probe")
            self.last_failure = exc.kind
        else:
            self.events.record("replay_failure", cause="rejected")
        self._backoff = min(self._backoff * 2, PROBE_BACKOFF_MAX_S)
        # Jitter keeps many clients from reconnecting in lockstep after an outage.
        self._next_probe = self._clock() + self._backoff * random.uniform(0.8, 1.2)  # noqa: S311

    def recovered(self) -> None:
        self.degraded = False
        self.degraded_since = None
        self._backoff = PROBE_BACKOFF_INITIAL_S
        self.events.record("reconnect", backend="redis")

    # -- status ---------------------------------------------------------------------------

    def status(self, tls: TlsInfo | None) -> dict[str, Any]:
        s = self.settings
        not_after = tls.server_cert_not_after if tls else None
        return {
            "backend": "memory" if self.degraded else "redis",
            "environment": s.environment,
            "redis": {
                "host": s.host,
                "port": s.port,
                "acl_user": s.username,
                "tls_min_version": s.min_tls_version.name.replace("_", "."),
                "tls_version": tls.version if tls else None,
                "tls_cipher": tls.cipher if tls else None,
                "server_certificate_not_after": _iso(not_after),
                "server_certificate_days_left": (
                    round((not_after - time.time()) / 86400, 1) if not_after else None
                ),
            },
            "encryption": {
                "cipher": CIPHER_NAME,
                "key_names": NAME_HASH,
                "key_prefix": s.key_prefix,
                "primary_key_id": self.primary.key_id_hex,
                "previous_key_ids": [k.key_id_hex for k in self.keyring.previous],
                "compress_min_bytes": s.compress_min_bytes,
            },
            "fallback": {
                "active": self.degraded,
                "entries": len(self.memory),
                "max_entries": self.memory.max_entries,
                "degraded_since": _iso(self.degraded_since),
                "last_failure": self.last_failure,
            },
            "counters": self.events.snapshot(),
        }

    # -- rotation -------------------------------------------------------------------------

    def scan_patterns(self) -> list[bytes]:
        return [k.name_prefix + b"*" for k in self.keyring.previous]

    def plan_batch(self, names: list[bytes], raws: list[Any], pttls: list[Any]) -> BatchPlan:
        """Reseal each entry under the primary key: SET new NX (keeping the TTL), DEL old.

        NX keeps a value written under the primary key since (newer) instead of the old one;
        the DEL runs either way, so the old entry never resurfaces.
        """
        plan = BatchPlan()
        for name, raw, pttl in zip(names, raws, pttls, strict=True):
            if raw is None or pttl == -2:
                continue  # deleted or expired since SCAN saw it
            try:
                new_name, envelope, _ = self.keyring.reseal(name, raw)
            except IntegrityError:
                self.events.record("integrity_failure", key=name)
                plan.commands.append((b"DEL", name))
                plan.discarded += 1
                continue
            expiry: tuple[bytes, ...] = (b"PX", b"%d" % pttl) if pttl > 0 else ()
            plan.commands.append((b"SET", new_name, envelope, b"NX", *expiry))
            plan.commands.append((b"DEL", name))
            plan.sets += 1
        return plan

    @staticmethod
    def tally(plan: BatchPlan, results: list[Any], report: RotationReport) -> None:
        report.discarded += plan.discarded
        for command, result in zip(plan.commands, results, strict=True):
            if command[0] == b"SET":
                if result is None:
                    report.superseded += 1
                else:
                    report.migrated += 1


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


def json_value(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


__all__ = [
    "BatchPlan",
    "CacheCore",
    "RotationReport",
    "dump_json",
    "json_value",
    "logical_key",
    "ttl_args",
    "value_bytes",
]
