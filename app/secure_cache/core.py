"""The sans-IO core of SecureCache and AsyncSecureCache: every decision, no I/O.

The two clients (client.py) are thin shells that only move bytes: each cache call asks the
core for a `Call` (the RESP bytes to send, how many replies to read, what to make of them,
and the same operation on the memory fallback), sends it with its transport, and hands the
reply back. Which names to read, how values are sealed and opened, when a value is a miss,
how failures are classified, when the fallback takes over and when to probe Redis again,
what an outage replays, what a rotation pass sends and what a material reload changes are
decided here, once, in plain code (the style of h11 and hyper-h2). Nothing in this module
touches a socket or a file.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import ssl
import time
from collections.abc import (
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from secure_cache.crypto import (
    CIPHER_NAME,
    MAX_LOGICAL_KEY_BYTES,
    NAME_HASH,
    NO_EXPIRY_STAMP,
    VERSION,
    Keyring,
    WallClock,
    body_bytes,
)
from secure_cache.errors import (
    BackendUnavailable,
    CommandRejected,
    ConfigurationError,
    FailureKind,
    IntegrityError,
)
from secure_cache.memory import MemoryCache, Pending
from secure_cache.metrics import Event, SecurityEvents
from secure_cache.resp import (
    JOIN_BYTES,
    NO_EXPIRY,
    WRITE_BYTES,
    Arg,
    Buffer,
    Deferred,
    Expiry,
    iter_writes,
    pack_command,
    pack_get,
    pack_set,
    resp_args,
    set_frame,
    set_pieces,
    writes,
)
from secure_cache.settings import Settings

if TYPE_CHECKING:
    from secure_cache.prometheus import CacheMetrics

T = TypeVar("T")
Clock = Callable[[], float]
Commands = list[tuple[Arg, ...]]
# A rotation pass: yields the commands for one round trip on a pinned connection, receives
# their replies, returns the report.
RotationSteps = Generator[Commands, list[Any], "RotationReport"]

PROBE_BACKOFF_INITIAL_S: Final = 0.25
PROBE_BACKOFF_MAX_S: Final = 10.0
DEFAULT_RELOAD_INTERVAL_S: Final = 1.0
DEFAULT_ROTATION_BATCH: Final = 200
_WATCH_ATTEMPTS: Final = 3
# The most stored bytes one rotation transaction reads (MGET) and writes back (MULTI/EXEC).
# Redis disconnects a client whose reply outgrows its output-buffer limit, which a stack sets
# to 16 of its largest values and never below 16 MiB (infra/redis_conf.py, output_limit_bytes);
# half of the smallest such limit leaves room for values that grow between STRLEN and MGET.
# A client that reads less in one reply reads half of its own limit (rotation_group_bytes).
ROTATION_GROUP_BYTES: Final = 8 << 20
_FAILURE_EVENTS: Final[dict[str, Event]] = {
    "auth": "auth_failure",
    "tls": "tls_failure",
    "timeout": "timeout",
    "connection": "connection_failure",
    "pool": "connection_failure",
}
_REPLAY_CHUNK: Final = 200
# No bound given (a core built without a transport's limits).
_UNBOUNDED: Final = 1 << 62
_PING: Final = pack_command((b"PING",))
# The newer_envelope event's note (logged once per process, metrics.py): what happened and
# what to do, in the log line an operator finds first.
NEWER_ENVELOPE_NOTE: Final = (
    f"an entry was written by a newer secure-cache; this version reads envelope versions up "
    f"to {VERSION}: it is a miss here (not an integrity failure) and no rotation pass of this "
    "version deletes it. The app was rolled back: upgrade the app again "
    '(docs/day2.md, "Rolling back the app"). Later ones are counted '
    "(secure_cache_newer_envelopes_total), not logged"
)


# -- arguments ---------------------------------------------------------------------------------


def logical_key(key: str) -> bytes:
    """The UTF-8 bytes of a cache key; TypeError/ValueError for programming errors."""
    if type(key) is not str:
        raise TypeError(f"cache keys are str, not {type(key).__name__}")
    try:
        data = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("cache keys must be valid Unicode (no lone surrogates)") from None
    if not data:
        # The CLI and the HTTP API refuse an empty key too: one rule for every entry point.
        raise ValueError("cache keys must not be empty")
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


def ttl_args(ttl: float | None, clock: WallClock = time.time) -> Expiry:
    """SET's expiry arguments, RESP-encoded (EX for whole seconds, PX otherwise), and the
    sealed envelope's expiry field for the same TTL: `clock`'s now (the keyring's,
    Keyring.clock) plus the TTL, in Unix milliseconds (crypto.py, "Expiry").

    The one place a TTL becomes both, for every write that sets one: set, set_many, the
    outage's replay and the rotation pass (for an entry that carries no expiry yet)."""
    if ttl is None:
        return NO_EXPIRY
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise TypeError(f"ttl is seconds as int or float, not {type(ttl).__name__}")
    if not ttl > 0:
        raise ValueError("ttl must be positive (or None for no expiry)")
    if isinstance(ttl, int):
        ms = ttl * 1000
        args = resp_args(b"EX", b"%d" % ttl)
    else:
        ms = max(1, round(ttl * 1000))
        args = resp_args(b"PX", b"%d" % ms)
    # crypto.expiry_stamp written out (this runs once per SET with a TTL); a TTL that does
    # not fit (beyond the year 584 million) raises OverflowError like any bad ttl would.
    return (2, args, (int(clock() * 1000) + ms).to_bytes(8, "big"))


def dump_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_value(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


# -- failures ----------------------------------------------------------------------------------


# SSLError subclasses that say the peer went away (an EOF without close_notify, a close_notify,
# a reset under TLS) or the I/O broke off mid-record (a read or write on the non-blocking
# socket that could not complete), not that it refused us: a Redis killed mid-command raised
# SSLEOFError, and in about one run in twelve SSLWantReadError, which counted as a TLS failure
# (the CacheAuthenticationFailures alert) and not as a connection failure
# (tests/integration/test_cache_fallback.py, red in CI each time).
_PEER_GONE = (
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
    ssl.SSLSyscallError,
    ssl.SSLWantReadError,
    ssl.SSLWantWriteError,
)


def classify(exc: BaseException) -> FailureKind:
    """auth, tls, timeout or connection, from the exception and what it was raised from."""
    if isinstance(exc, AuthenticationError):
        return "auth"
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, _PEER_GONE):
            break  # the connection ended under TLS: Redis stopped or died, nothing refused
        if isinstance(seen, ssl.SSLError):
            return "tls"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, RedisTimeoutError | TimeoutError):  # socket.timeout is TimeoutError
        return "timeout"
    return "connection"


def is_refusal(exc: BaseException) -> bool:
    """The server refused our credentials or certificate: retrying alone cannot help."""
    return classify(exc) in ("auth", "tls")


def unavailable(exc: BaseException) -> BackendUnavailable:
    return BackendUnavailable(classify(exc), f"{type(exc).__name__}: {exc}"[:300])


def rejected(exc: ResponseError) -> CommandRejected:
    return CommandRejected(acl=isinstance(exc, NoPermissionError), detail=str(exc)[:200])


# -- one cache call ----------------------------------------------------------------------------


# One round trip: (the packed RESP to send, in the chunks to write (resp.writes; set_many's
# a resp.Deferred, which makes them as they are written and keeps them for a retry), replies
# to read (0: send nothing, the answer is `default`), what the replies mean (the reply
# itself when there is one, else their list), the same operation on the memory fallback,
# the answer when Redis rejected the command or neither backend served it, and how many
# stored values the replies may carry at most: what the asyncio transport counts against
# one write's share of Redis's output-buffer limit, transport.AsyncTransport). A plain
# tuple: it is built on every cache call, and a tuple costs a fifth of a slotted class.
Call = tuple[Iterable[Buffer], int, Callable[[Any], T], Callable[[], T], T, int]


def _nothing(_reply: Any) -> None:
    return None


def _true(_reply: Any) -> bool:
    return True


def _false() -> bool:
    return False


def _empty(_reply: Any = None) -> dict[str, bytes]:
    return {}


def _joined(counts: list[int], finish: Callable[[list[Any]], T], replies: list[Any]) -> T:
    """`finish` of the values of several MGETs of `counts` names each, in order; a reply that
    is not its names' values (_values) spoils only its own names. Each reply is let go once
    its values are in the joined list, which `finish` then empties as it opens them
    (_open_many): holding the replies too kept every envelope alive beside every value
    (tests/integration/test_cache_client.py, a large batch's peak)."""
    raws: list[Any] = []
    for index, count in enumerate(counts):
        raws += _values(replies[index], count)
        replies[index] = None
    return finish(raws)


def _deleted(reply: Any) -> bool:
    """DEL's answer: true when it removed something. Only its integer counts: bool() of a
    bulk string or an array a hostile server sent instead was true."""
    return type(reply) is int and reply > 0


# What an MGET reply that is not a list of the names' values (_values) is read as, for each
# name: not an envelope, so a miss counted as an integrity failure.
_NOT_AN_ENVELOPE: Final = b""


def _values(raws: Any, count: int) -> list[Any]:
    """An MGET reply of `count` values, as it is when it is one; anything else (an integer,
    a shorter or longer array: a compromised or replaced Redis) as `count` values that open
    as nothing. Each name is then a miss and an integrity failure, as when its envelope was
    damaged, where zip(strict=True) raised ValueError and indexing IndexError out of the
    cache call (tests/integration/test_hostile_redis.py)."""
    if type(raws) is list and len(raws) == count:
        return raws
    return [_NOT_AN_ENVELOPE] * count


@dataclass
class RotationReport:
    """What one rotation pass did. `complete` means no previous key still owns an entry."""

    scanned: int = 0
    migrated: int = 0
    superseded: int = 0  # a newer value already existed under the primary key
    discarded: int = 0  # failed authentication: unreadable by every key, removed
    expired: int = 0  # past its envelope's expiry, which Redis had not yet acted on: removed
    # Written by a newer secure-cache (a rollback; crypto.Keyring.newer_version): left where
    # they are, never deleted, and counted in `remaining` too, so the pass is not complete.
    left_newer: int = 0
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
    expired: int = 0  # past the expiry in their envelope: DEL only
    left_newer: int = 0  # a newer secure-cache's entries: no command at all


@dataclass(frozen=True)
class Reload:
    """What a reread of the material files changes (see CacheCore.plan_reload)."""

    settings: Settings
    keyring: Keyring | None  # None: the data keys are unchanged
    tls: bool  # certificate, key or CA bundle changed: build a new TLS context
    password: bool

    @property
    def connection(self) -> bool:
        return self.tls or self.password


class CacheCore:
    """Keyring, fallback memory, events and backend state for one client."""

    def __init__(
        self,
        settings: Settings,
        *,
        events: SecurityEvents | None = None,
        clock: Clock = time.monotonic,
        wall_clock: WallClock = time.time,
        max_reply_bytes: int | None = None,
        reply_values: int | None = None,
    ) -> None:
        """`max_reply_bytes` and `reply_values`: the most bytes one reply may hold and how many
        of the largest values that is (the transport's, transport.reply_values); they bound
        each MGET of get_many and each rotation transaction. None: unbounded (tests)."""
        self.settings = settings
        # The most names one MGET reads (get_many), and the most stored bytes one rotation
        # transaction reads (rotation_group_bytes).
        self.reply_values = reply_values or _UNBOUNDED
        self.rotation_bytes = rotation_group_bytes(max_reply_bytes or _UNBOUNDED)
        # The wall clock of envelope expiries (crypto.py, "Expiry"): every keyring of this
        # core holds it, and core.ttl_args writes with the keyring's.
        self._wall_clock = wall_clock
        self.keyring = _keyring(settings, settings.previous_keys, wall_clock)
        self.memory = MemoryCache(
            settings.fallback_max_entries, clock=clock, max_bytes=settings.fallback_max_bytes
        )
        self.events = events or SecurityEvents()
        # Prometheus hooks (prometheus.py), attached by the service; None: the library alone.
        self.metrics: CacheMetrics | None = None
        self._clock = clock
        self._replaying = 0
        self.degraded = False
        self.degraded_since: float | None = None  # wall clock, for status()
        self.last_failure: FailureKind | None = None
        self._backoff = PROBE_BACKOFF_INITIAL_S
        self._next_probe = 0.0

    def stored_name(self, key: str) -> bytes:
        return self.keyring.primary_name(logical_key(key))

    # -- calls ----------------------------------------------------------------------------

    def get(self, key: str) -> Call[bytes | None]:
        logical = logical_key(key)
        keyring = self.keyring
        memory = partial(self.memory.get, key)
        if not keyring.previous:
            name = keyring.primary_name(logical)
            finish = partial(self._open, keyring, name, logical)
            if self.metrics is not None:
                finish = partial(self.metrics.looked_up, finish)
            return ((pack_get(name),), 1, finish, memory, None, 1)
        names = keyring.names(logical)
        finish = partial(self._pick, keyring, names, logical)
        if self.metrics is not None:
            finish = partial(self.metrics.looked_up, finish)
        return ((pack_command((b"MGET", *names)),), 1, finish, memory, None, len(names))

    def set(self, key: str, value: bytes, ttl: float | None) -> Call[None]:
        logical = logical_key(key)
        # value_bytes and ttl_args are called only when they have work to do: this runs once
        # per SET, and on a sequential call each call costs more than its share (_sealed_set).
        if type(value) is not bytes:
            value = value_bytes(value)
        keyring = self.keyring
        name = keyring.primary_name(logical)
        expiry = NO_EXPIRY if ttl is None else ttl_args(ttl, keyring.clock)
        packed = self._sealed_set(keyring, name, logical, value, expiry)
        return (packed, 1, _nothing, partial(self.memory.set, key, value, ttl), None, 0)

    def delete(self, key: str) -> Call[bool]:
        logical = logical_key(key)
        packed = pack_command((b"DEL", *self.keyring.names(logical)))
        return ((packed,), 1, _deleted, partial(self.memory.delete, key), False, 0)

    def get_many(self, keys: Iterable[str]) -> Call[dict[str, bytes]]:
        keys = list(keys)
        logicals = [logical_key(k) for k in keys]
        memory = partial(self._memory_many, keys)
        if not keys:
            return ((), 0, _empty, memory, {}, 0)
        keyring = self.keyring
        if not keyring.previous:
            names = [keyring.primary_name(lg) for lg in logicals]
            finish = partial(self._open_many, keyring, keys, logicals, names)
            if self.metrics is not None:
                finish = partial(self.metrics.looked_up_many, len(keys), finish)
            if len(names) <= self.reply_values:
                return ((pack_command((b"MGET", *names)),), 1, finish, memory, {}, len(names))
            return self._mgets(names, 1, finish, memory)
        per_key = [keyring.names(lg) for lg in logicals]
        flat = [n for names in per_key for n in names]
        finish = partial(self._pick_many, keyring, keys, logicals, per_key)
        if self.metrics is not None:
            finish = partial(self.metrics.looked_up_many, len(keys), finish)
        if len(flat) <= self.reply_values:
            return ((pack_command((b"MGET", *flat)),), 1, finish, memory, {}, len(flat))
        return self._mgets(flat, len(per_key[0]), finish, memory)

    def _mgets(
        self,
        names: list[bytes],
        width: int,
        finish: Callable[[list[Any]], dict[str, bytes]],
        memory: Callable[[], dict[str, bytes]],
    ) -> Call[dict[str, bytes]]:
        """get_many of more names than one reply holds (reply_values): MGETs of at most that
        many, whole keys each (`width` names a key), in one write; their replies are joined
        in order for `finish`. Each reply then stays within the transport's limit, which
        refused the one MGET of them all (a connection failure, then the fallback)."""
        step = max(1, self.reply_values // width) * width
        groups = [names[i : i + step] for i in range(0, len(names), step)]
        packed = b"".join([pack_command((b"MGET", *group)) for group in groups])
        counts = [len(group) for group in groups]
        return ((packed,), len(groups), partial(_joined, counts, finish), memory, {}, len(names))

    def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> Call[None]:
        pairs = [(k, logical_key(k), value_bytes(v)) for k, v in items.items()]
        keyring = self.keyring
        expiry = ttl_args(ttl, keyring.clock)
        memory = partial(self._memory_set_many, pairs, ttl)
        names = [keyring.primary_name(lg) for _, lg, _ in pairs]
        batch = [(n, lg, v) for n, (_, lg, v) in zip(names, pairs, strict=True)]
        pieces = self._batch_pieces(keyring, batch, expiry)
        if sum([len(value) for _, _, value in batch]) < WRITE_BYTES:
            # One write holds the batch: there is nothing to overlap, and making it at once
            # is cheaper (a generator and a Deferred less).
            return (writes(pieces), len(pairs), _nothing, memory, None, 0)
        # Sealed as the transport writes: while Redis reads and stores the first values,
        # this thread seals the next ones, instead of sealing the whole batch before the
        # first byte goes out (100 SETs of 100 KiB: 18.7 ms against 24.6 ms, lower quartile
        # of 40 alternating rounds, 2026-11-30, this machine; the TLS transport took 20.4;
        # 100 of 1 KiB, resp.iter_writes).
        # The async transport makes a flush's chunks before its one write (transport._made).
        return (Deferred(iter_writes(pieces)), len(pairs), _nothing, memory, None, 0)

    def _batch_pieces(
        self, keyring: Keyring, batch: list[tuple[bytes, bytes, bytes]], expiry: Expiry
    ) -> Iterator[Buffer]:
        """The pieces of a batch's SETs, each value sealed as its pieces are taken: the small
        ones together (one nonce draw, Keyring.seal_many), a large one in place (_sealed_set)."""
        # A batch whose longest value would still be sealed as pieces (any batch of small
        # values) skips the test of each value (about 0.2 us per value).
        if batch and _in_place(max([len(v) for _, _, v in batch])):
            return self._mixed_pieces(keyring, batch, expiry)
        sealed = self._seal_many(keyring, batch, expiry[2])
        return (
            piece
            for (name, _, _), parts in zip(batch, sealed, strict=True)
            for piece in set_pieces(name, *parts, expiry)
        )

    def _mixed_pieces(
        self, keyring: Keyring, batch: list[tuple[bytes, bytes, bytes]], expiry: Expiry
    ) -> Iterator[Buffer]:
        """_batch_pieces for a batch with values to seal in place."""
        large = [_in_place(len(value)) for _, _, value in batch]
        small = [entry for entry, big in zip(batch, large, strict=True) if not big]
        sealed = self._seal_many(keyring, small, expiry[2])
        for (name, logical, value), big in zip(batch, large, strict=True):
            if big:
                yield from self._sealed_set(keyring, name, logical, value, expiry)
            else:
                yield from set_pieces(name, *next(sealed), expiry)

    def ping(self) -> Call[bool]:
        """PING; while the fallback serves, the answer is False without asking Redis."""
        return ((_PING,), 1, _true, _false, False, 0)

    # -- reading --------------------------------------------------------------------------

    def _open(self, keyring: Keyring, name: bytes, logical: bytes, raw: Any) -> bytes | None:
        """The value, or None: absent, expired (Keyring.open_value), or a miss and a counted
        event when it fails authentication."""
        if raw is None:
            return None
        try:
            if self.metrics is None:  # _opener, written out: this runs once per GET
                return keyring.open_value(name, logical, raw)
            return self.metrics.timed_open(keyring.open_value, name, logical, raw)
        except IntegrityError:
            self._unreadable(keyring, name, raw)
            return None

    def _opener(self, keyring: Keyring) -> Callable[[bytes, bytes, bytes], bytes | None]:
        """Keyring.open_value, timed when metrics are attached."""
        if self.metrics is None:
            return keyring.open_value
        return partial(self.metrics.timed_open, keyring.open_value)

    def _unreadable(self, keyring: Keyring, name: bytes, raw: bytes) -> bool:
        """An entry no key opens: a miss for the caller (either way: no oracle) and an event
        for the operator, `newer_envelope` when a newer secure-cache plausibly wrote it (a
        rollback), else `integrity_failure`. True for the newer one. Only the failure path
        comes here, so the test costs a successful read nothing."""
        version = keyring.newer_version(name, raw)
        if version is None:
            self._integrity_failure(name)
            return False
        # Logged with its note the first time only (metrics.py _ONCE), then counted.
        self.events.record(
            "newer_envelope",
            key=name,
            note=NEWER_ENVELOPE_NOTE,
            version=str(version),
            reads_up_to=str(VERSION),
        )
        return True

    def _integrity_failure(self, name: bytes) -> None:
        """An entry failed authentication: a miss for the caller, an event for the operator."""
        self.events.record("integrity_failure", key=name)

    def _pick(
        self, keyring: Keyring, names: tuple[bytes, ...], logical: bytes, raws: list[Any]
    ) -> bytes | None:
        """First entry found, primary key's name first (rotation in progress)."""
        for name, raw in zip(names, _values(raws, len(names)), strict=True):
            if raw is not None:
                return self._open(keyring, name, logical, raw)
        return None

    def _open_many(
        self,
        keyring: Keyring,
        keys: Sequence[str],
        logicals: Sequence[bytes],
        names: Sequence[bytes],
        raws: list[Any],
    ) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        # _open's work, with its per-value call and metrics test taken out of the loop: a
        # get_many of 100 values of 1 KiB spends most of its client time here.
        open_value = self._opener(keyring)
        raws = _values(raws, len(names))
        for index, raw in enumerate(raws):
            if raw is not None:
                # The reply is ours: each envelope goes as soon as its value is out, so a
                # batch peaks at one copy of its values instead of two (envelopes + values).
                raws[index] = None
                try:
                    value = open_value(names[index], logicals[index], raw)
                except IntegrityError:
                    self._unreadable(keyring, names[index], raw)
                    continue
                if value is not None:  # None: expired
                    found[keys[index]] = value
        return found

    def _pick_many(
        self,
        keyring: Keyring,
        keys: Sequence[str],
        logicals: Sequence[bytes],
        per_key: Sequence[tuple[bytes, ...]],
        raws: Sequence[Any],
    ) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        width = len(per_key[0])
        raws = _values(raws, width * len(per_key))
        for index, (key, logical, names) in enumerate(zip(keys, logicals, per_key, strict=True)):
            value = self._pick(
                keyring, names, logical, list(raws[index * width : (index + 1) * width])
            )
            if value is not None:
                found[key] = value
        return found

    # -- writing --------------------------------------------------------------------------

    def _sealed_set(
        self, keyring: Keyring, name: bytes, logical: bytes, value: bytes, expiry: Expiry
    ) -> tuple[Buffer, ...]:
        """`SET name <value sealed> [expiry]` as the one piece to write: a large value sealed
        in place inside its framing (Keyring.seal_framed), a small one's two sealed parts
        joined with their framing (pack_set).

        One buffer either way, made here: a single SET used to go out through set_pieces and
        writes(), four more calls per SET that cost more than their share on a sequential
        call, where each runs with caches cold from the round trip before it (sequential
        10 KiB SET+GET against the TLS transport: 0.84-0.87 framed here, 0.82-0.85 before,
        three alternating runs of seven rounds, 2026-11-30, this machine under `chrt -f`).
        For the same reason _in_place's test and _seal's are written out here (see
        open_value in crypto.py for what such calls cost)."""
        if len(value) < _IN_PLACE_VALUE_BYTES:
            if self.metrics is None:
                prefix, body = keyring.seal_parts(name, logical, value, expiry[2])
            else:
                prefix, body = self.metrics.timed_seal(
                    keyring.seal_parts, name, logical, value, expiry[2]
                )
            return (pack_set(name, body, expiry, prefix),)
        seal = partial(
            keyring.seal_framed, frame=partial(set_frame, name, expiry=expiry), stamp=expiry[2]
        )
        return (self._seal(seal, name, logical, value),)

    def _seal(
        self, seal: Callable[[bytes, bytes, bytes], T], name: bytes, logical: bytes, value: bytes
    ) -> T:
        """`seal(name, logical, value)`, timed when metrics are attached."""
        if self.metrics is None:
            return seal(name, logical, value)
        return self.metrics.timed_seal(seal, name, logical, value)

    def _seal_many(
        self, keyring: Keyring, entries: list[tuple[bytes, bytes, bytes]], stamp: bytes
    ) -> Iterator[tuple[bytes, bytes]]:
        """Keyring.seal_many(entries, stamp), each value timed as it is sealed when metrics
        are attached."""
        sealed = keyring.seal_many(entries, stamp)
        if self.metrics is None:
            return sealed
        return self.metrics.timed_seals(sealed, [len(value) for _, _, value in entries])

    def _memory_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found = {}
        for key in keys:
            value = self.memory.get(key)
            if value is not None:
                found[key] = value
        return found

    def _memory_set_many(
        self, pairs: Sequence[tuple[str, bytes, bytes]], ttl: float | None
    ) -> None:
        for key, _, value in pairs:
            self.memory.set(key, value, ttl)

    # -- the fallback ---------------------------------------------------------------------

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
            if self.metrics is not None:
                self.metrics.fallback_entered()

    def rejected(self, exc: CommandRejected, name: bytes | None = None) -> None:
        self.events.record("acl_denied" if exc.acl else "command_error", key=name)

    def probe_due(self) -> bool:
        return self._clock() >= self._next_probe

    def should_probe(self, *, force: bool = False) -> bool:
        """Probe Redis now? Only while degraded, and only when the backoff allows (or forced)."""
        return self.degraded and (force or self.probe_due())

    def probe_failed(self, exc: BackendUnavailable | CommandRejected) -> None:
        if isinstance(exc, BackendUnavailable):
            self.events.record(_FAILURE_EVENTS[exc.kind], kind=exc.kind, during="probe")
            self.last_failure = exc.kind
        else:
            self.events.record("replay_failure", cause="rejected")
        self._backoff = min(self._backoff * 2, PROBE_BACKOFF_MAX_S)
        # Jitter keeps many clients from reconnecting in lockstep after an outage.
        self._next_probe = self._clock() + self._backoff * random.uniform(0.8, 1.2)  # noqa: S311

    def replay(self) -> tuple[list[Pending], list[tuple[list[Buffer], int]]]:
        """Drain the outage's changes: (pending, round trips (writes, replies) that apply
        them in order)."""
        pending = self.memory.drain()
        self._replaying = len(pending)
        keyring = self.keyring
        chunks: list[tuple[list[Buffer], int]] = []
        packed: list[Buffer] = []
        commands = 0
        for item in pending:
            logical = logical_key(item.key)
            if item.value is None:
                packed.append(pack_command((b"DEL", *keyring.names(logical))))
            else:
                expiry = (
                    NO_EXPIRY
                    if item.ttl_seconds is None
                    else ttl_args(max(item.ttl_seconds, 0.001), keyring.clock)
                )
                packed.extend(
                    self._sealed_set(
                        keyring, keyring.primary_name(logical), logical, item.value, expiry
                    )
                )
            commands += 1
            if commands == _REPLAY_CHUNK:
                chunks.append((writes(packed), commands))
                packed, commands = [], 0
        if packed:
            chunks.append((writes(packed), commands))
        return pending, chunks

    def replay_failed(
        self, pending: list[Pending], exc: BackendUnavailable | CommandRejected
    ) -> None:
        """Put drained changes back (newer memory entries win) and back off."""
        for item in pending:
            if item.key in self.memory:
                continue
            if item.value is None:
                self.memory.delete(item.key)
            else:
                self.memory.set(item.key, item.value, item.ttl_seconds)
        self.probe_failed(exc)

    def recovered(self) -> None:
        self.degraded = False
        self.degraded_since = None
        self._backoff = PROBE_BACKOFF_INITIAL_S
        self.events.record("reconnect", backend="redis")
        if self.metrics is not None:
            self.metrics.fallback_left()
            self.metrics.replayed(self._replaying)

    def require_redis(self) -> None:
        """Rotation needs Redis itself: the fallback cannot serve it."""
        if self.degraded:
            raise BackendUnavailable(
                self.last_failure or "connection", "redis is unavailable and rotation needs it"
            )

    # -- material reload ------------------------------------------------------------------

    def plan_reload(self, settings: Settings, changed: Collection[str]) -> Reload:
        """What a reread of the files changes. `changed` names the files that changed.

        A reload never makes an entry unreadable mid-rotation: when the new files drop the
        primary key this process has been writing with (a half-written rotation, or a
        rotation that skipped the read-only phase), that key stays readable as a previous
        key until the files change again.
        """
        old = self.settings
        keyring = None
        if (settings.data_key, settings.previous_keys) != (old.data_key, old.previous_keys):
            previous = settings.previous_keys
            current = old.data_key
            if current != settings.data_key and current not in previous:
                previous = (*previous, current)
            keyring = _keyring(settings, previous, self._wall_clock)
        tls_files = {settings.cert_file, settings.key_file, settings.ca_file}
        return Reload(
            settings=settings,
            keyring=keyring,
            tls=any(path in tls_files for path in changed),
            password=settings.password != old.password,
        )

    def reloaded(self, plan: Reload) -> None:
        """Adopt a reload whose connection material the transport has taken."""
        self.settings = plan.settings
        if plan.keyring is not None:
            self.keyring = plan.keyring
        self.events.record(
            "material_reload",
            keys=str(plan.keyring is not None).lower(),
            tls=str(plan.tls).lower(),
            password=str(plan.password).lower(),
        )

    def reload_failed(self, exc: ConfigurationError) -> None:
        """The files changed but do not form a working configuration (yet): keep the old."""
        self.events.record("reload_failure", problems=str(len(exc.problems)))

    # -- status ---------------------------------------------------------------------------

    def status_needs(self) -> Literal["probe", "handshake"] | None:
        """What status() should do before reporting: probe a due recovery, or open one new
        connection, whose handshake is what the status reports. A pooled connection keeps the
        TLS session it opened: after the server certificate alone was renewed (Redis's
        `CONFIG SET tls-cert-file`, no material of the app's changed) the status named the
        old certificate until the pool happened to reconnect (tests/integration/
        test_cache_reload.py). A renewal changes nothing for sessions already open, so they
        are kept; only the report needs a handshake of now."""
        if self.degraded:
            return "probe" if self.probe_due() else None
        return "handshake"

    def status(self, tls: Any) -> dict[str, Any]:
        s = self.settings
        keyring = self.keyring
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
                "primary_key_id": keyring.primary.key_id_hex,
                "previous_key_ids": [k.key_id_hex for k in keyring.previous],
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

    def rotation(self, batch_size: int, max_batches: int | None) -> RotationSteps:
        """The rotation pass, one round trip per step (see SecureCache.rotate)."""
        report = RotationReport()
        patterns = [k.name_prefix + b"*" for k in self.keyring.previous]
        for pattern in patterns:
            cursor: bytes | int = b"0"
            while max_batches is None or report.batches < max_batches:
                ((cursor, names),) = yield [_scan(cursor, pattern, batch_size)]
                if names:
                    report.scanned += len(names)
                    sizes = yield [(b"STRLEN", n) for n in names]
                    for group in byte_groups(list(names), sizes, self.rotation_bytes):
                        yield from self._rotate_batch(group, report)
                    report.batches += 1
                if cursor in (b"0", 0):
                    break
        for pattern in patterns:
            cursor = b"0"
            while True:
                ((cursor, names),) = yield [_scan(cursor, pattern, batch_size)]
                report.remaining += len(names)
                if cursor in (b"0", 0):
                    break
        report.complete = report.remaining == 0
        return report

    def _rotate_batch(
        self, names: list[bytes], report: RotationReport
    ) -> Generator[Commands, list[Any], None]:
        for _ in range(_WATCH_ATTEMPTS):
            replies = yield [(b"WATCH", *names), (b"MGET", *names), *[(b"PTTL", n) for n in names]]
            plan = self.plan_batch(names, replies[1], replies[2:])
            if not plan.commands:
                yield [(b"UNWATCH",)]
                self.tally(plan, [], report)  # what it left
                return
            results = yield [(b"MULTI",), *plan.commands, (b"EXEC",)]
            if results[-1] is not None:  # None: a watched name changed; read again
                self.tally(plan, results[-1], report)
                return
        report.conflicts += 1
        # Left for the next run, but a newer secure-cache's entries among them no run of this
        # version moves: counted, so that `rotate` exits 7 (keep the old key), not 3 (run it
        # again), as it does when the batch gets through. From the last read only.
        report.left_newer += plan.left_newer

    def plan_batch(self, names: list[bytes], raws: list[Any], pttls: list[Any]) -> BatchPlan:
        """Reseal each entry under the primary key: SET new NX (keeping the TTL), DEL old.

        NX keeps a value written under the primary key since (newer) instead of the old one;
        the DEL runs either way, so the old entry never resurfaces. An entry no key opens is
        deleted, unless a newer secure-cache wrote it: this code cannot move it, only the
        newer code can, once it is back, so it stays with the key that reads it (docs/day2.md,
        "Rolling back the app").

        The expiry moves with the entry: a version-3 envelope keeps its own, byte for byte,
        and Redis its remaining TTL (PTTL, read in the same WATCH as the value); a version 1
        or 2 one gets the expiry of that remaining TTL (ttl_args, as any SET). An entry past
        its envelope's expiry is deleted, not moved.
        """
        plan = BatchPlan()
        keyring = self.keyring
        for name, raw, pttl in zip(names, raws, pttls, strict=True):
            if raw is None or pttl == -2:
                continue  # deleted or expired since SCAN saw it
            # For an entry whose envelope carries no expiry (version 1 or 2).
            stamp = ttl_args(pttl / 1000, keyring.clock)[2] if pttl > 0 else NO_EXPIRY_STAMP
            try:
                resealed = keyring.reseal(name, raw, stamp)
            except IntegrityError:
                if self._unreadable(keyring, name, raw):
                    plan.left_newer += 1
                    continue
                plan.commands.append((b"DEL", name))
                plan.discarded += 1
                continue
            if resealed is None or pttl == 0:
                # PTTL 0: Redis reports a name in the last millisecond of its TTL so. Moved,
                # a version 1 or 2 entry would get neither PX nor an expiry of its own (it
                # carries none): an entry about to go rewritten as one that never goes.
                plan.commands.append((b"DEL", name))
                plan.expired += 1
                continue
            new_name, envelope, opened = resealed
            expires = opened.expires
            remaining = pttl
            if pttl <= 0 and expires is not None and expires != NO_EXPIRY_STAMP:
                # An expiry Redis does not hold (the name lost its TTL): the envelope's wins.
                remaining = max(1, int.from_bytes(expires, "big") - int(keyring.clock() * 1000))
            expiry: tuple[bytes, ...] = (b"PX", b"%d" % remaining) if remaining > 0 else ()
            plan.commands.append((b"SET", new_name, envelope, b"NX", *expiry))
            plan.commands.append((b"DEL", name))
            plan.sets += 1
        return plan

    @staticmethod
    def tally(plan: BatchPlan, results: list[Any], report: RotationReport) -> None:
        report.discarded += plan.discarded
        report.expired += plan.expired
        report.left_newer += plan.left_newer
        for command, result in zip(plan.commands, results, strict=True):
            if command[0] == b"SET":
                if result is None:
                    report.superseded += 1
                else:
                    report.migrated += 1


def _scan(cursor: bytes | int, pattern: bytes, count: int) -> tuple[bytes | int, ...]:
    """One SCAN step over a previous key's names. Strings only: every entry the client writes
    is one, STRLEN (which sizes the transactions) refuses any other type, and a list or set
    under the prefix is nobody's envelope, so it neither moves nor keeps a key in use."""
    return (b"SCAN", cursor, b"MATCH", pattern, b"COUNT", count, b"TYPE", b"string")


def rotation_group_bytes(max_reply_bytes: int) -> int:
    """The most stored bytes one rotation transaction reads (its MGET) for a client whose
    replies hold at most `max_reply_bytes`: ROTATION_GROUP_BYTES, or half of a smaller limit
    (the same room for values that grow between STRLEN and MGET). A fixed 8 MiB was refused
    on every batch by a client with a smaller limit."""
    return min(ROTATION_GROUP_BYTES, max_reply_bytes // 2)


def byte_groups(names: list[bytes], sizes: Sequence[int], limit: int) -> list[list[bytes]]:
    """Consecutive groups of `names` whose stored sizes add up to at most `limit` bytes; a
    name larger than `limit` on its own is a group of one (one value always fits a reply)."""
    groups: list[list[bytes]] = []
    group: list[bytes] = []
    total = 0
    for name, size in zip(names, sizes, strict=True):
        if group and total + size > limit:
            groups.append(group)
            group, total = [], 0
        group.append(name)
        total += size
    if group:
        groups.append(group)
    return groups


_IN_PLACE_VALUE_BYTES: Final = JOIN_BYTES - body_bytes(0)
"""The smallest value a SET seals in place inside its framing (one piece to write) rather
than as pieces: from there writes() would send the ciphertext as a piece of its own (a
compressed value may come out shorter; writes() then joins it with its neighbours)."""


def _in_place(value_bytes: int) -> bool:
    """Whether a SET of a value this long seals it in place (_IN_PLACE_VALUE_BYTES). Larger
    values never make it False (_batch_pieces relies on it)."""
    return value_bytes >= _IN_PLACE_VALUE_BYTES


def _keyring(settings: Settings, previous: Sequence[bytes], clock: WallClock) -> Keyring:
    return Keyring(
        settings.data_key,
        previous,
        prefix=settings.key_prefix,
        compress_min_bytes=settings.compress_min_bytes,
        clock=clock,
    )


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


__all__ = [
    "DEFAULT_RELOAD_INTERVAL_S",
    "DEFAULT_ROTATION_BATCH",
    "BatchPlan",
    "CacheCore",
    "Call",
    "Reload",
    "RotationReport",
    "classify",
    "dump_json",
    "is_refusal",
    "json_value",
    "logical_key",
    "rejected",
    "ttl_args",
    "unavailable",
    "value_bytes",
]
