"""The sans-IO core, metrics and RESP encoding: no Redis, no network."""

from __future__ import annotations

import ast
import logging
import os
import ssl
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

import secure_cache.core
from secure_cache.core import (
    PROBE_BACKOFF_INITIAL_S,
    CacheCore,
    RotationReport,
    byte_groups,
    classify,
    logical_key,
    ttl_args,
    value_bytes,
)
from secure_cache.crypto import EXPIRY_ALLOWANCE_MS, Keyring, expiry_stamp
from secure_cache.errors import BackendUnavailable, ConfigurationError
from secure_cache.memory import Pending
from secure_cache.metrics import COUNTERS, SecurityEvents
from secure_cache.resp import (
    JOIN_BYTES,
    WRITE_BYTES,
    Buffer,
    Deferred,
    pack_command,
    pack_get,
    pack_set,
    set_pieces,
    writes,
)
from tests.support.cache_env import CORE_DATA_KEY, FakeClock, core_settings
from tests.support.envelopes import version_2_envelope

KEY = CORE_DATA_KEY
OLD = bytes(range(50, 82))


def _commands(packed: Iterable[Buffer]) -> list[list[bytes]]:
    """The commands in a call's writes, in order."""
    reader = hiredis.Reader()
    for chunk in packed:
        reader.feed(bytes(chunk))
    out = []
    while (item := reader.gets()) is not False:
        out.append(item)
    return out


# -- argument checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "error"),
    [
        (b"bytes", TypeError),
        (42, TypeError),
        ("\ud800", ValueError),
        ("k" * 4097, ValueError),
        ("", ValueError),
    ],
    ids=["bytes", "int", "lone-surrogate", "too-long", "empty"],
)
def test_logical_key__rejects_bad_keys(key: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        logical_key(key)


def test_value_bytes__accepts_bytes_like_only() -> None:
    assert value_bytes(bytearray(b"ab")) == b"ab"
    assert value_bytes(memoryview(b"cd")) == b"cd"
    with pytest.raises(TypeError, match="set_json"):
        value_bytes("text")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ttl", "args"),
    [(None, []), (300, [b"EX", b"300"]), (1.5, [b"PX", b"1500"]), (0.0001, [b"PX", b"1"])],
    ids=["none", "int-seconds", "float-seconds", "tiny-float"],
)
def test_ttl_args__encode_ex_or_px(ttl: float | None, args: list[bytes]) -> None:
    extra, encoded, _ = ttl_args(ttl)
    assert extra == len(args)
    assert encoded == b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


@pytest.mark.parametrize(
    ("ttl", "expires_ms"),
    [(None, 0), (300, 1_800_000_300_000), (1.5, 1_800_000_001_500), (0.0001, 1_800_000_000_001)],
    ids=["none", "int-seconds", "float-seconds", "tiny-float"],
)
def test_ttl_args__the_envelope_expiry_is_the_clock_plus_the_ttl_redis_gets(
    ttl: float | None, expires_ms: int
) -> None:
    """One TTL, one place: Redis's EX/PX and the sealed envelope's expiry field."""
    _, encoded, stamp = ttl_args(ttl, FakeClock(1_800_000_000.0))
    assert stamp == expires_ms.to_bytes(8, "big")
    if ttl is not None:
        assert expires_ms - 1_800_000_000_000 == int(encoded.split(b"\r\n")[-2]) * (
            1000 if encoded.startswith(b"$2\r\nEX") else 1
        )


@pytest.mark.parametrize(
    ("ttl", "error"),
    [(0, ValueError), (-5, ValueError), (True, TypeError), ("10", TypeError)],
    ids=["zero", "negative", "bool", "str"],
)
def test_ttl_args__reject_bad_ttls(ttl: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        ttl_args(ttl)


# -- hand-built RESP matches hiredis ------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "extra"),
    [(None, ()), (60, (b"EX", b"60")), (2.5, (b"PX", b"2500"))],
    ids=["no-ttl", "ex", "px"],
)
def test_pack_set__equals_hiredis_encoding(ttl: float | None, extra: tuple[bytes, ...]) -> None:
    name, value = b"cache:0a0b0c0d:" + b"f" * 32, bytes(range(256)) * 5
    assert pack_set(name, value, ttl_args(ttl)) == pack_command((b"SET", name, value, *extra))


def test_pack_get__equals_hiredis_encoding() -> None:
    assert pack_get(b"cache:x") == pack_command((b"GET", b"cache:x"))


@pytest.mark.parametrize("size", [10, JOIN_BYTES - 1, JOIN_BYTES, 100 * 1024])
@pytest.mark.parametrize("ttl", [None, 60], ids=["no-ttl", "ex"])
def test_set_pieces__written_are_the_hiredis_encoding(size: int, ttl: float | None) -> None:
    name, prefix = b"cache:n", b"p" * 18
    body = bytes(range(256)) * (size // 256) + b"b" * (size % 256)
    pieces = set_pieces(name, prefix, body, ttl_args(ttl))
    extra = () if ttl is None else (b"EX", b"60")
    chunks = writes(pieces)
    assert b"".join(chunks) == pack_command((b"SET", name, prefix + body, *extra))
    assert pieces[1] is body  # framed, not copied
    # Written: a large body as it is (the same object), a small command in one write.
    if size >= JOIN_BYTES:
        assert chunks[1] is body
    else:
        assert len(chunks) == 1


@pytest.mark.parametrize("ttl", [None, 60], ids=["no-ttl", "ex"])
@pytest.mark.parametrize("size", [100 * 1024, JOIN_BYTES - 8], ids=["100KiB", "sealed-past-join"])
def test_set__a_large_value_is_one_piece_to_write(ttl: float | None, size: int) -> None:
    """Its framing and envelope in one buffer: three pieces cost three writes and TLS
    records, and the two short ones woke Redis twice more per SET. Also a value just below
    JOIN_BYTES whose ciphertext (length, key and tag added) is a piece writes() sends alone."""
    core = CacheCore(core_settings())
    value = os.urandom(size)
    packed = list(core.set("big", value, ttl)[0])
    assert len(packed) == 1
    [command] = _commands(packed)
    name = core.stored_name("big")
    assert command[:2] == [b"SET", name]
    assert command[3:] == ([] if ttl is None else [b"EX", b"60"])
    assert core.keyring.open_value(name, logical_key("big"), command[2]) == value


def test_set_many__large_values_alone_and_small_ones_joined_in_order() -> None:
    core = CacheCore(core_settings())
    items = {f"k{i}": os.urandom(JOIN_BYTES if i % 3 == 0 else 100) for i in range(9)}
    packed = core.set_many(items, None)[0]
    commands = _commands(packed)
    assert [c[1] for c in commands] == [core.stored_name(k) for k in items]
    for (key, value), command in zip(items.items(), commands, strict=True):
        assert core.keyring.open_value(command[1], logical_key(key), command[2]) == value
    # Each large SET is one write of its own; the small ones between them share one.
    assert len(list(packed)) == 3 + 3


def test_set_many__seals_each_value_as_the_writer_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sealing the whole batch before the first byte went out left Redis idle meanwhile."""
    core = CacheCore(core_settings())
    keyring = core.keyring
    sealed: list[bytes] = []
    seal_framed, seal_with = keyring.seal_framed, keyring._seal_with

    def counting_framed(
        name: bytes, logical: bytes, value: bytes, frame: Any, stamp: bytes
    ) -> bytearray:
        sealed.append(logical)
        return seal_framed(name, logical, value, frame, stamp)

    def counting_with(
        key: Any, nonce: bytes, name: bytes, logical: bytes, value: bytes, stamp: bytes
    ) -> Any:
        sealed.append(logical)
        return seal_with(key, nonce, name, logical, value, stamp)

    monkeypatch.setattr(keyring, "seal_framed", counting_framed)
    monkeypatch.setattr(keyring, "_seal_with", counting_with)
    large = {f"large{i}": os.urandom(JOIN_BYTES) for i in range(20)}  # more than one write
    small = {f"small{i}": os.urandom(1024) for i in range(100)}  # 30 fill a write
    for items in (large, small):
        sealed.clear()
        packed = core.set_many(items, None)[0]
        assert sealed == []
        chunks = iter(packed)
        first = next(chunks)
        assert 0 < len(sealed) < len(items)
        rest = list(chunks)
        assert sorted(sealed) == sorted(logical_key(k) for k in items)
        # A retry writes the very same chunks and seals nothing again.
        assert list(packed) == [first, *rest]
        assert all(a is b for a, b in zip(packed, [first, *rest], strict=True))
        assert len(sealed) == len(items)


def test_set_many__a_batch_that_fits_one_write_is_sealed_at_once() -> None:
    """Nothing to overlap with Redis's work there, and making it at once costs less."""
    core = CacheCore(core_settings())
    items = {f"k{i}": os.urandom(1024) for i in range(25)}
    packed = core.set_many(items, None)[0]
    assert isinstance(packed, list)
    assert len(packed) == 1
    assert [c[1] for c in _commands(packed)] == [core.stored_name(k) for k in items]


def test_deferred__makes_chunks_on_demand_once_and_replays_them() -> None:
    made: list[int] = []

    def source() -> Iterator[bytes]:
        for i in range(3):
            made.append(i)
            yield b"chunk%d" % i

    deferred = Deferred(source())
    assert made == []
    first = iter(deferred)
    assert next(first) == b"chunk0"
    assert made == [0]
    # A second writer (a retry) starts again from the first chunk without remaking it.
    assert list(deferred) == [b"chunk0", b"chunk1", b"chunk2"]
    assert list(first) == [b"chunk1", b"chunk2"]
    assert made == [0, 1, 2]


def test_deferred__a_failed_chunk_fails_every_later_write() -> None:
    def source() -> Iterator[bytes]:
        yield b"ok"
        raise MemoryError

    deferred = Deferred(source())
    for _ in range(2):  # never the first chunk alone, as if the batch were complete
        with pytest.raises(MemoryError):
            list(deferred)


def test_writes__joins_small_pieces_in_order_and_keeps_large_ones_apart() -> None:
    large = b"L" * JOIN_BYTES
    pieces = [b"a", b"b", large, b"c", *([b"s" * 10240] * 8), b"d"]
    chunks = writes(pieces)
    assert b"".join(chunks) == b"".join(pieces)  # nothing lost, nothing reordered
    assert chunks[0] == b"ab"
    assert chunks[1] is large
    # The 10 small pieces after it share writes of about WRITE_BYTES ("d" is the last).
    assert [len(c) // 1024 for c in chunks[2:]] == [40, 40, 0]
    assert WRITE_BYTES == 32 * 1024


# -- fallback state machine ---------------------------------------------------------------------


def test_failure__switches_to_memory_once_and_counts() -> None:
    clock = FakeClock(500.0)
    core = CacheCore(core_settings(), clock=clock)
    core.failed(BackendUnavailable("connection", "refused"))
    core.failed(BackendUnavailable("timeout", "slow"))
    assert core.degraded
    counts = core.events.snapshot()
    assert counts["fallbacks"] == 1
    assert counts["connection_failures"] == 1
    assert counts["timeouts"] == 1
    assert core.last_failure == "timeout"


def test_probe__is_due_after_backoff_which_grows_on_failure() -> None:
    clock = FakeClock(500.0)
    core = CacheCore(core_settings(), clock=clock)
    core.failed(BackendUnavailable("connection", "refused"))
    assert not core.probe_due()
    clock.now += PROBE_BACKOFF_INITIAL_S
    assert core.probe_due()
    core.probe_failed(BackendUnavailable("connection", "refused"))
    clock.now += PROBE_BACKOFF_INITIAL_S  # the backoff doubled (with +-20% jitter)
    assert not core.probe_due()
    clock.now += PROBE_BACKOFF_INITIAL_S * 2
    assert core.probe_due()


def test_recovered__returns_to_redis_and_counts_reconnect() -> None:
    core = CacheCore(core_settings(), clock=FakeClock(500.0))
    core.failed(BackendUnavailable("auth", "WRONGPASS"))
    core.recovered()
    assert not core.degraded
    assert core.events.snapshot()["reconnects"] == 1
    assert core.events.snapshot()["auth_failures"] == 1


def test_replay__writes_and_deletes_in_order() -> None:
    core = CacheCore(core_settings(previous_keys=(OLD,)), clock=FakeClock(500.0))
    core.memory.set("a", b"1")
    core.memory.delete("b")
    core.memory.set("c", b"3", 2.5)
    pending, chunks = core.replay()
    assert [p.key for p in pending] == ["a", "b", "c"]
    assert len(core.memory) == 0  # drained
    assert [count for _, count in chunks] == [3]
    commands = _commands(chunks[0][0])
    assert [c[0] for c in commands] == [b"SET", b"DEL", b"SET"]
    assert commands[0][1] == core.keyring.primary_name(b"a")
    assert commands[1][1:] == list(core.keyring.names(b"b"))  # primary and previous names
    assert commands[2][3:] == [b"PX", b"2500"]
    assert core.keyring.open_value(commands[2][1], b"c", commands[2][2]) == b"3"


def test_replay__is_chunked() -> None:
    core = CacheCore(core_settings(), clock=FakeClock(500.0))
    for i in range(450):
        core.memory.set(f"k{i}", b"v")
    _, chunks = core.replay()
    assert [count for _, count in chunks] == [200, 200, 50]


def test_replay_failed__puts_back_changes_unless_newer_exist_and_backs_off() -> None:
    clock = FakeClock(500.0)
    core = CacheCore(core_settings(), clock=clock)
    core.failed(BackendUnavailable("connection", "refused"))
    core.memory.set("newer", b"new")
    failure = BackendUnavailable("connection", "reset")
    core.replay_failed([Pending("newer", b"old", None), Pending("lost", b"v", None)], failure)
    assert core.memory.get("newer") == b"new"
    assert core.memory.get("lost") == b"v"
    assert not core.probe_due()


# -- rotation planning --------------------------------------------------------------------------


def test_plan_batch__reseals_keeps_ttl_and_discards_unreadable() -> None:
    old = Keyring(OLD)
    core = CacheCore(core_settings(previous_keys=(OLD,)), clock=FakeClock(500.0))
    names = [old.primary.name(b"k%d" % i) for i in range(5)]
    raws: list[Any] = [old.seal(n, b"k%d" % i, b"v%d" % i) for i, n in enumerate(names)]
    raws[2] = None  # deleted since SCAN
    raws[3] = b"garbage"
    pttls = [5000, -1, 100, 100, -2]
    plan = core.plan_batch(names, raws, pttls)
    assert plan.sets == 2
    assert plan.discarded == 1
    ops = [(c[0], c[1]) for c in plan.commands]
    assert ops == [
        (b"SET", core.keyring.primary_name(b"k0")),
        (b"DEL", names[0]),
        (b"SET", core.keyring.primary_name(b"k1")),
        (b"DEL", names[1]),
        (b"DEL", names[3]),
    ]
    assert plan.commands[0][3:] == (b"NX", b"PX", b"5000")
    assert plan.commands[2][3:] == (b"NX",)
    assert core.keyring.open_value(plan.commands[0][1], b"k0", plan.commands[0][2]) == b"v0"
    assert core.events.snapshot()["integrity_failures"] == 1

    report = RotationReport()
    core.tally(plan, [b"OK", 1, None, 1, 1], report)
    assert (report.migrated, report.superseded, report.discarded) == (1, 1, 1)


# The wall clock of envelope expiries, injected (crypto.py, "Expiry").
WALL_S = 1_800_000_000.0
WALL_MS = int(WALL_S * 1000)


def test_plan_batch__carries_the_expiry_over_and_keeps_redis_s_ttl_consistent() -> None:
    """A version-3 entry keeps its envelope's expiry byte for byte and Redis its remaining
    TTL; a version-1 or 2 entry (no expiry of its own) gets the one of its remaining TTL; an
    entry past its envelope's expiry is deleted, not moved; one whose name lost its TTL in
    Redis gets the envelope's back."""
    wall = FakeClock(WALL_S)
    old = Keyring(OLD, clock=wall)
    core = CacheCore(core_settings(previous_keys=(OLD,)), wall_clock=wall)
    names = [old.primary.name(b"k%d" % i) for i in range(4)]
    stamps = [expiry_stamp(WALL_MS + ms) for ms in (60_000, 0, -1, 30_000)]
    raws = [old.seal(n, b"k%d" % i, b"v", stamps[i]) for i, n in enumerate(names)]
    raws[1] = version_2_envelope(old, b"k1", b"v")[1]
    pttls = [59_000, 45_000, 100, -1]
    plan = core.plan_batch(names, raws, pttls)
    assert (plan.sets, plan.expired, plan.discarded) == (3, 1, 0)
    sets = [c for c in plan.commands if c[0] == b"SET"]
    assert [c[3:] for c in sets] == [
        (b"NX", b"PX", b"59000"),  # Redis's remaining TTL, as before
        (b"NX", b"PX", b"45000"),
        (b"NX", b"PX", b"30000"),  # the envelope's, which Redis no longer held
    ]
    assert [c[2][18:26] for c in sets] == [
        stamps[0],  # unchanged
        expiry_stamp(WALL_MS + 45_000),  # made from Redis's remaining TTL
        stamps[3],
    ]
    assert (b"DEL", names[2]) in plan.commands  # expired: deleted, not moved
    assert core.events.snapshot()["integrity_failures"] == 0
    report = RotationReport()
    core.tally(plan, [b"OK", 1, b"OK", 1, 1, b"OK", 1], report)
    assert (report.migrated, report.expired) == (3, 1)


def test_plan_batch__an_entry_redis_reports_at_its_expiry_is_deleted_not_made_endless() -> None:
    """PTTL 0: Redis holds the name for at most its last millisecond (it reports a key whose
    expiry is now, not yet removed, as 0). A version-1 or 2 entry carries no expiry of its
    own, so moving it with neither PX nor an envelope expiry rewrote an entry about to go as
    one that never goes (reviewed 2026-12-03); it is deleted, as an expired one is."""
    wall = FakeClock(WALL_S)
    old = Keyring(OLD, clock=wall)
    core = CacheCore(core_settings(previous_keys=(OLD,)), wall_clock=wall)
    names = [old.primary.name(b"k0"), old.primary.name(b"k1")]
    raws = [
        version_2_envelope(old, b"k0", b"v")[1],
        old.seal(names[1], b"k1", b"v", expiry_stamp(WALL_MS)),
    ]
    plan = core.plan_batch(names, raws, [0, 0])
    assert [c for c in plan.commands if c[0] == b"SET"] == []
    assert plan.commands == [(b"DEL", names[0]), (b"DEL", names[1])]
    assert (plan.sets, plan.expired, plan.discarded) == (0, 2, 0)


def test_get__an_expired_entry_is_a_miss_and_a_replay_past_the_allowance_is_counted() -> None:
    wall = FakeClock(WALL_S)
    core = CacheCore(core_settings(), clock=FakeClock(500.0), wall_clock=wall)
    (command,) = _commands(core.set("k", b"value", 60)[0])
    envelope = command[2]
    assert envelope[18:26] == expiry_stamp(WALL_MS + 60_000)
    assert core.get("k")[2](envelope) == b"value"
    wall.advance(60.5)  # past its TTL: Redis would have dropped it
    assert core.get("k")[2](envelope) is None
    assert core.get_many(["k"])[2]([envelope]) == {}
    assert core.events.snapshot()["integrity_failures"] == 0  # within the allowance
    wall.advance(EXPIRY_ALLOWANCE_MS / 1000)  # later than Redis ever returns it: replayed
    assert core.get("k")[2](envelope) is None
    assert core.get_many(["k"])[2]([envelope]) == {}
    assert core.events.snapshot()["integrity_failures"] == 2


@pytest.mark.parametrize("size", [1024, JOIN_BYTES], ids=["parts", "in-place"])
def test_set_and_set_many__seal_the_expiry_of_the_ttl_they_send(size: int) -> None:
    wall = FakeClock(WALL_S)
    core = CacheCore(core_settings(), clock=FakeClock(500.0), wall_clock=wall)
    value = os.urandom(size)
    (single,) = _commands(core.set("k", value, 2.5)[0])
    (batch,) = _commands(core.set_many({"k": value}, 2.5)[0])
    for args in (single, batch):
        assert args[3:] == [b"PX", b"2500"]
        assert args[2][18:26] == expiry_stamp(WALL_MS + 2500)
        assert core.keyring.open_value(args[1], b"k", args[2]) == value


# -- status and events --------------------------------------------------------------------------


def test_status__without_tls_info_has_the_documented_shape() -> None:
    core = CacheCore(core_settings(previous_keys=(OLD,)), clock=FakeClock(500.0))
    status = core.status(None)
    assert status["backend"] == "redis"
    assert status["redis"]["acl_user"] == "app"
    assert status["redis"]["tls_version"] is None
    assert status["encryption"]["primary_key_id"] == Keyring(KEY).primary.key_id_hex
    assert status["encryption"]["previous_key_ids"] == [Keyring(OLD).primary.key_id_hex]
    assert set(status["counters"]) == set(COUNTERS)
    assert "p" * 24 not in repr(status)


def test_event_log_line__is_plain_and_structured(caplog: pytest.LogCaptureFixture) -> None:
    events = SecurityEvents()
    with caplog.at_level(logging.INFO, logger="secure_cache"):
        events.record("integrity_failure", key=b"cache:0a0b0c0d:ff")
        events.record("fallback", backend="memory", cause="bad value\nwith newline ✓")
    assert [r.getMessage() for r in caplog.records] == [
        "event=integrity_failure key=cache:0a0b0c0d:ff",
        "event=fallback backend=memory cause=bad_value_with_newline__",
    ]
    assert events.count("integrity_failures") == 1


# -- error classification -----------------------------------------------------------------------


def _chained(outer: Exception, inner: BaseException) -> Exception:
    """`outer` as redis-py raises it: inside an `except` for `inner` (implicit context)."""
    outer.__context__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (AuthenticationError("WRONGPASS"), "auth"),
        (_chained(RedisConnectionError("read failed"), ssl.SSLError(1, "alert")), "tls"),
        (_chained(RedisConnectionError("verify"), ssl.SSLCertVerificationError(1, "bad")), "tls"),
        (RedisTimeoutError("slow"), "timeout"),
        (RedisConnectionError("refused"), "connection"),
        (ConnectionResetError(104, "reset"), "connection"),
        # Redis stopped or killed mid-command: the TLS stream ends, nothing was refused.
        (_chained(RedisConnectionError("read"), ssl.SSLEOFError(8, "EOF")), "connection"),
        (_chained(RedisConnectionError("read"), ssl.SSLZeroReturnError(6, "closed")), "connection"),
        # The non-blocking read under TLS that broke off as Redis was killed (the async client,
        # tests/integration/test_cache_fallback.py, one run in twelve).
        (_chained(RedisConnectionError("read"), ssl.SSLWantReadError(2, "read")), "connection"),
    ],
    ids=[
        "auth", "tls-alert", "tls-verify", "timeout", "refused", "reset", "tls-eof", "tls-closed",
        "tls-want-read",
    ],
)  # fmt: skip
def test_classify__names_the_failure(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind


# -- the core does no I/O -----------------------------------------------------------------------

_IO_MODULES = {"socket", "asyncio", "threading", "selectors", "secure_cache.transport"}


def test_core__imports_no_io_module() -> None:
    tree = ast.parse(Path(secure_cache.core.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & _IO_MODULES, imported & _IO_MODULES


# -- calls --------------------------------------------------------------------------------------


def test_get_call__reads_only_the_primary_name_with_one_key() -> None:
    core = CacheCore(core_settings(), clock=FakeClock(500.0))
    call = core.get("user:1")
    name = core.keyring.primary_name(b"user:1")
    assert _commands(call[0]) == [[b"GET", name]]
    assert call[2](None) is None
    sealed = core.keyring.seal(name, b"user:1", b"v")
    assert call[2](sealed) == b"v"


def test_get_call__during_rotation_reads_every_name_primary_first() -> None:
    core = CacheCore(core_settings(previous_keys=(OLD,)), clock=FakeClock(500.0))
    call = core.get("user:1")
    names = core.keyring.names(b"user:1")
    assert _commands(call[0]) == [[b"MGET", *names]]
    old = Keyring(OLD)
    assert call[2]([None, old.seal(names[1], b"user:1", b"old")]) == b"old"


def test_get_call__a_value_that_fails_authentication_is_a_counted_miss() -> None:
    core = CacheCore(core_settings(), clock=FakeClock(500.0))
    assert core.get("user:1")[2](b"\x01forged-envelope-bytes-long-enough") is None
    assert core.events.count("integrity_failures") == 1


def test_set_many_call__expects_one_reply_per_value() -> None:
    core = CacheCore(core_settings(), clock=FakeClock(500.0))
    call = core.set_many({"a": b"1", "b": b"2"}, ttl=5)
    assert call[1] == 2
    assert [c[0] for c in _commands(call[0])] == [b"SET", b"SET"]
    assert core.get_many([])[1] == 0  # nothing to send


def test_calls__count_the_stored_values_their_replies_may_carry() -> None:
    # What the asyncio transport counts against one coalesced write (transport.shared_write).
    core = CacheCore(core_settings(), clock=FakeClock(500.0))
    assert core.get("k")[5] == 1
    assert core.get_many([f"k{i}" for i in range(40)])[5] == 40  # MGETs of 16, 16 and 8
    assert core.get_many([])[5] == 0
    assert [core.set("k", b"v", None)[5], core.delete("k")[5], core.ping()[5]] == [0, 0, 0]
    assert core.set_many({"a": b"1"}, None)[5] == 0
    rotating = CacheCore(core_settings(previous_keys=(OLD,)), clock=FakeClock(500.0))
    assert rotating.get("k")[5] == 2  # one name per data key
    assert rotating.get_many(["a", "b"])[5] == 4


def test_calls__run_on_memory_with_the_same_arguments() -> None:
    core = CacheCore(core_settings(), clock=FakeClock(500.0))
    core.set("k", b"v", None)[3]()
    assert core.get("k")[3]() == b"v"
    assert core.get_many(["k", "absent"])[3]() == {"k": b"v"}
    assert core.delete("k")[3]() is True
    assert core.get("k")[3]() is None


# -- material reload decisions ------------------------------------------------------------------

NEW = bytes(range(100, 132))


def test_plan_reload__a_generation_bump_makes_the_old_key_previous() -> None:
    core = CacheCore(core_settings(), clock=FakeClock(500.0))
    plan = core.plan_reload(core_settings(data_key=NEW, previous_keys=(KEY,)), {"/keys"})
    assert plan.keyring is not None
    assert plan.keyring.primary.key_id == Keyring(NEW).primary.key_id
    assert [k.key_id for k in plan.keyring.previous] == [Keyring(KEY).primary.key_id]
    assert not plan.connection


def test_plan_reload__keeps_the_current_key_readable_when_the_files_drop_it() -> None:
    """A half-written rotation (new key file, previous-keys file not yet written)."""
    core = CacheCore(core_settings(), clock=FakeClock(500.0))
    plan = core.plan_reload(core_settings(data_key=NEW), {"/key"})
    assert plan.keyring is not None
    assert [k.key_id for k in plan.keyring.previous] == [Keyring(KEY).primary.key_id]


def test_plan_reload__retiring_a_previous_key_drops_it() -> None:
    core = CacheCore(core_settings(data_key=NEW, previous_keys=(KEY,)), clock=FakeClock(500.0))
    plan = core.plan_reload(core_settings(data_key=NEW), {"/previous"})
    assert plan.keyring is not None
    assert plan.keyring.previous == ()


@pytest.mark.parametrize(
    ("changed", "password", "tls"),
    [({"/c"}, "p" * 24, True), ({"/ca"}, "p" * 24, True), ({"/pw"}, "q" * 24, False)],
    ids=["client-cert", "ca-bundle", "password"],
)
def test_plan_reload__names_what_the_connection_needs(
    changed: set[str], password: str, tls: bool
) -> None:
    core = CacheCore(core_settings(ca_file="/ca"), clock=FakeClock(500.0))
    plan = core.plan_reload(core_settings(ca_file="/ca", password=password), changed)
    assert (plan.tls, plan.password, plan.keyring) == (tls, password != "p" * 24, None)
    core.reloaded(plan)
    assert core.settings.password == password
    assert core.events.count("material_reloads") == 1


def test_reload_failed__is_counted_without_the_problem_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = CacheCore(core_settings(), clock=FakeClock(500.0))
    with caplog.at_level(logging.INFO, logger="secure_cache"):
        core.reload_failed(ConfigurationError(["REDIS_TLS_KEY_FILE=/k does not match"]))
    assert core.events.count("reload_failures") == 1
    assert "/k" not in caplog.text


# -- rotation steps -----------------------------------------------------------------------------


def test_rotation_steps__scan_watch_move_and_count_what_remains() -> None:
    old = Keyring(OLD)
    core = CacheCore(core_settings(previous_keys=(OLD,)), clock=FakeClock(500.0))
    name = old.primary.name(b"k")
    steps = core.rotation(batch_size=10, max_batches=None)
    scan = next(steps)
    assert scan == [
        (b"SCAN", b"0", b"MATCH", old.primary.name_prefix + b"*", b"COUNT", 10, b"TYPE", b"string")
    ]
    sizes = steps.send([[b"0", [name]]])
    assert sizes == [(b"STRLEN", name)]
    watch = steps.send([40])
    assert [c[0] for c in watch] == [b"WATCH", b"MGET", b"PTTL"]
    transaction = steps.send([b"OK", [old.seal(name, b"k", b"v")], -1])
    assert [c[0] for c in transaction] == [b"MULTI", b"SET", b"DEL", b"EXEC"]
    count = steps.send([b"OK", b"QUEUED", b"QUEUED", [b"OK", 1]])
    assert count[0][0] == b"SCAN"
    with pytest.raises(StopIteration) as done:
        steps.send([[b"0", []]])
    report: RotationReport = done.value.value
    assert (report.migrated, report.remaining, report.complete) == (1, 0, True)


def test_rotation_steps__with_one_key_send_nothing() -> None:
    steps = CacheCore(core_settings(), clock=FakeClock(500.0)).rotation(
        batch_size=10, max_batches=None
    )
    with pytest.raises(StopIteration) as done:
        next(steps)
    assert done.value.value.complete


def test_rotation_steps__a_batch_larger_than_a_reply_moves_in_byte_bounded_transactions() -> None:
    # Three 5 MiB values: one MGET of all three would pass ROTATION_GROUP_BYTES (8 MiB).
    old = Keyring(OLD)
    core = CacheCore(core_settings(previous_keys=(OLD,)), clock=FakeClock(500.0))
    names = [old.primary.name(b"k%d" % i) for i in range(3)]
    steps = core.rotation(batch_size=10, max_batches=None)
    next(steps)
    steps.send([[b"0", names]])
    watched = [steps.send([5 << 20, 5 << 20, 5 << 20])]
    for _ in names[1:]:
        # Deleted since SCAN: nothing to move in this group, then the next group's turn.
        assert steps.send([b"OK", [None], -2]) == [(b"UNWATCH",)]
        watched.append(steps.send([b"OK"]))
    assert [w[0] for w in watched] == [(b"WATCH", n) for n in names]


@pytest.mark.parametrize(
    ("sizes", "limit", "groups"),
    [
        ([], 10, []),
        ([3, 3, 3], 10, [[0, 1, 2]]),
        ([3, 3, 3, 3], 10, [[0, 1, 2], [3]]),
        ([10, 1], 10, [[0], [1]]),
        ([25, 1, 1], 10, [[0], [1, 2]]),  # larger than the limit: a group of its own
        ([0, 0, 0], 1, [[0, 1, 2]]),
    ],
)
def test_byte_groups__consecutive_groups_within_the_limit(
    sizes: list[int], limit: int, groups: list[list[int]]
) -> None:
    names = [b"n%d" % i for i in range(len(sizes))]
    expected = [[names[i] for i in group] for group in groups]
    assert byte_groups(names, sizes, limit) == expected


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=40), max_size=60),
    limit=st.integers(min_value=1, max_value=50),
)
def test_byte_groups__keep_every_name_in_order_and_fill_groups_up_to_the_limit(
    sizes: list[int], limit: int
) -> None:
    names = [b"n%d" % i for i in range(len(sizes))]
    size_of = dict(zip(names, sizes, strict=True))
    groups = byte_groups(names, sizes, limit)
    assert [n for group in groups for n in group] == names
    totals = [sum(size_of[n] for n in group) for group in groups]
    for group, total in zip(groups, totals, strict=True):
        assert group
        assert total <= limit or len(group) == 1
    # Greedy: a group closed only because its next name would not have fitted.
    for total, following in zip(totals, groups[1:], strict=False):
        assert total + size_of[following[0]] > limit


# -- get_many and rotation within the transport's reply limit ---------------------------------


def _mgets(packed: Iterable[Buffer]) -> list[list[bytes]]:
    """The commands in one write's bytes, as argument lists."""
    reader = hiredis.Reader()
    for chunk in packed:
        reader.feed(bytes(chunk))
    commands = []
    while (command := reader.gets()) is not False:
        commands.append(list(command))
    return commands


def test_get_many__of_more_keys_than_a_reply_holds__is_several_mgets_in_one_write() -> None:
    # 10 keys, 4 values a reply (transport.reply_values): MGETs of 4, 4 and 2, sent as one
    # buffer (one write); their replies are joined in order. One MGET of the 10 was refused
    # by the transport past its limit (a connection failure, then the fallback).
    writer = CacheCore(core_settings(), clock=FakeClock(500.0))
    core = CacheCore(core_settings(), clock=FakeClock(500.0), reply_values=4)
    keys = [f"k{i}" for i in range(10)]
    envelopes = [
        writer.keyring.seal(writer.stored_name(k), k.encode(), b"v%d" % i)
        for i, k in enumerate(keys)
    ]
    packed, replies, finish, _, _ = core.get_many(keys)[:5]
    assert len(list(packed)) == 1
    commands = _mgets(packed)
    assert [len(c) - 1 for c in commands] == [4, 4, 2]
    assert [c[0] for c in commands] == [b"MGET"] * 3
    assert [n for c in commands for n in c[1:]] == [core.stored_name(k) for k in keys]
    assert replies == 3
    found = finish([envelopes[:4], envelopes[4:8], [None, envelopes[9]]])
    assert list(found) == [*keys[:8], "k9"]
    assert found["k9"] == b"v9"


def test_get_many__within_one_reply__stays_one_mgets() -> None:
    core = CacheCore(core_settings(), clock=FakeClock(500.0), reply_values=4)
    packed, replies, _, _, _ = core.get_many(["a", "b", "c", "d"])[:5]
    assert replies == 1
    assert [c[0] for c in _mgets(packed)] == [b"MGET"]


def test_get_many__while_rotating__splits_between_keys_and_a_bad_reply_spoils_its_own() -> None:
    # Two names a key (primary, previous): 4 values a reply are 2 keys an MGET.
    core = CacheCore(core_settings(previous_keys=(OLD,)), clock=FakeClock(500.0), reply_values=4)
    keys = ["a", "b", "c", "d", "e"]
    packed, replies, finish, _, _ = core.get_many(keys)[:5]
    assert [len(c) - 1 for c in _mgets(packed)] == [4, 4, 2]
    assert replies == 3
    sealed = {k: core.keyring.seal(core.stored_name(k), k.encode(), k.encode()) for k in keys}
    # The second MGET's reply is not its four values (a hostile server): c and d are misses.
    found = finish([[sealed["a"], None, sealed["b"], None], [b"x"], [sealed["e"], None]])
    assert found == {"a": b"a", "b": b"b", "e": b"e"}
    assert core.events.snapshot()["integrity_failures"] == 2


def test_rotation_groups__follow_a_smaller_reply_limit() -> None:
    # A client whose replies hold 1 MiB reads half of it a transaction: three values of
    # 300 KiB are two groups. With the fixed 8 MiB it was one MGET of 900 KiB, refused on
    # every batch by that client's transport.
    old = Keyring(OLD)
    core = CacheCore(
        core_settings(previous_keys=(OLD,)), clock=FakeClock(500.0), max_reply_bytes=1 << 20
    )
    names = [old.primary.name(b"k%d" % i) for i in range(3)]
    steps = core.rotation(batch_size=10, max_batches=None)
    next(steps)
    steps.send([[b"0", names]])
    watched = [steps.send([300 << 10] * 3)]
    for _ in names[1:]:
        assert steps.send([b"OK", [None], -2]) == [(b"UNWATCH",)]
        watched.append(steps.send([b"OK"]))
    assert [w[1] for w in watched] == [(b"MGET", n) for n in names]
