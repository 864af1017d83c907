"""core, metrics and the pure parts of transport: no Redis, no network."""

from __future__ import annotations

import logging
import ssl
from typing import Any

import hiredis
import pytest
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from secure_cache.core import (
    PROBE_BACKOFF_INITIAL_S,
    CacheCore,
    RotationReport,
    logical_key,
    ttl_args,
    value_bytes,
)
from secure_cache.crypto import Keyring
from secure_cache.errors import BackendUnavailable
from secure_cache.memory import Pending
from secure_cache.metrics import COUNTERS, SecurityEvents
from secure_cache.settings import Settings
from secure_cache.transport import NO_EXPIRY, classify, pack_command, pack_get, pack_set

KEY = bytes(range(32))
OLD = bytes(range(50, 82))


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def _settings(**changes: Any) -> Settings:
    base: dict[str, Any] = {
        "environment": "development",
        "host": "redis",
        "port": 6380,
        "db": 0,
        "username": "app",
        "password": "p" * 24,
        "ca_file": None,
        "cert_file": "/c",
        "key_file": "/k",
        "data_key": KEY,
    }
    base.update(changes)
    return Settings(**base)


def _commands(packed: bytes) -> list[list[bytes]]:
    reader = hiredis.Reader()
    reader.feed(packed)
    out = []
    while (item := reader.gets()) is not False:
        out.append(item)
    return out


# -- argument checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "error"),
    [(b"bytes", TypeError), (42, TypeError), ("\ud800", ValueError), ("k" * 4097, ValueError)],
    ids=["bytes", "int", "lone-surrogate", "too-long"],
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
    extra, encoded = ttl_args(ttl)
    assert extra == len(args)
    assert encoded == b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


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


# -- fallback state machine ---------------------------------------------------------------------


def test_failure__switches_to_memory_once_and_counts() -> None:
    clock = Clock()
    core = CacheCore(_settings(), clock=clock)
    core.failed(BackendUnavailable("connection", "refused"))
    core.failed(BackendUnavailable("timeout", "slow"))
    assert core.degraded
    counts = core.events.snapshot()
    assert counts["fallbacks"] == 1
    assert counts["connection_failures"] == 1
    assert counts["timeouts"] == 1
    assert core.last_failure == "timeout"


def test_probe__is_due_after_backoff_which_grows_on_failure() -> None:
    clock = Clock()
    core = CacheCore(_settings(), clock=clock)
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
    core = CacheCore(_settings(), clock=Clock())
    core.failed(BackendUnavailable("auth", "WRONGPASS"))
    core.recovered()
    assert not core.degraded
    assert core.events.snapshot()["reconnects"] == 1
    assert core.events.snapshot()["auth_failures"] == 1


def test_replay__writes_and_deletes_in_order() -> None:
    core = CacheCore(_settings(previous_keys=(OLD,)), clock=Clock())
    pending = [
        Pending("a", b"1", None),
        Pending("b", None, None),
        Pending("c", b"3", 2.5),
    ]
    chunks = core.replay_commands(pending)
    assert [count for _, count in chunks] == [3]
    commands = _commands(chunks[0][0])
    assert [c[0] for c in commands] == [b"SET", b"DEL", b"SET"]
    assert commands[0][1] == core.primary_name(b"a")
    assert commands[1][1:] == list(core.keyring.names(b"b"))  # primary and previous names
    assert commands[2][3:] == [b"PX", b"2500"]
    assert core.keyring.open_value(commands[2][1], b"c", commands[2][2]) == b"3"


def test_replay__is_chunked() -> None:
    core = CacheCore(_settings(), clock=Clock())
    chunks = core.replay_commands([Pending(f"k{i}", b"v", None) for i in range(450)])
    assert [count for _, count in chunks] == [200, 200, 50]


def test_restore__puts_back_changes_unless_newer_exist() -> None:
    core = CacheCore(_settings(), clock=Clock())
    core.memory.set("newer", b"new")
    core.restore([Pending("newer", b"old", None), Pending("lost", b"v", None)])
    assert core.memory.get("newer") == b"new"
    assert core.memory.get("lost") == b"v"


# -- rotation planning --------------------------------------------------------------------------


def test_plan_batch__reseals_keeps_ttl_and_discards_unreadable() -> None:
    old = Keyring(OLD)
    core = CacheCore(_settings(previous_keys=(OLD,)), clock=Clock())
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
        (b"SET", core.primary_name(b"k0")),
        (b"DEL", names[0]),
        (b"SET", core.primary_name(b"k1")),
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


# -- status and events --------------------------------------------------------------------------


def test_status__without_tls_info_has_the_documented_shape() -> None:
    core = CacheCore(_settings(previous_keys=(OLD,)), clock=Clock())
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
    ],
    ids=["auth", "tls-alert", "tls-verify", "timeout", "refused", "reset"],
)
def test_classify__names_the_failure(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind


def test_no_expiry__adds_nothing() -> None:
    assert NO_EXPIRY == (0, b"")
