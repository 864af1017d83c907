"""The Redis exporter's pure parts: INFO and ACL LOG replies to metrics, and its settings."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.core import Metric
from redis.backoff import NoBackoff
from redis.retry import Retry

from secure_cache.errors import ConfigurationError
from secure_cache.redis_exporter import (
    WATCHED_CERTIFICATES,
    BoundedRespReader,
    ExporterSettings,
    RespValue,
    acl_log_entries,
    acl_log_families,
    info_families,
    registry_for,
    summarize_acl_log,
)

# Shaped as redis-py parses `INFO server clients memory stats errorstats` from Redis 7.0.
INFO: dict[str, Any] = {
    "redis_version": "7.0.15",
    "uptime_in_seconds": 42,
    "connected_clients": 3,
    "maxclients": 10000,
    "tcp_port": 6380,  # the TLS port, with `port 0`
    "used_memory": 928656,
    "used_memory_human": "906.89K",
    "maxmemory": 67108864,
    "maxmemory_policy": "allkeys-lru",
    "aof_enabled": 1,
    "evicted_keys": 5,
    "expired_keys": 9,
    "rejected_connections": 1,
    "total_connections_received": 17,
    "keyspace_hits": 11,
    "keyspace_misses": 4,
    "errorstat_WRONGPASS": {"count": 2},
    "errorstat_NOPERM": {"count": 3},
    "errorstat_MYSCRIPTERROR": {"count": 1},
    "errorstat_ANOTHERONE": {"count": 1},
}

# Shaped as redis-py parses ACL LOG (Redis 7.0 has no entry-id yet).
ACL_LOG: list[dict[str, Any]] = [
    {
        "count": 4,
        "reason": "auth",
        "context": "toplevel",
        "object": "AUTH",
        "username": "password-typed-as-username",
        "age-seconds": 1.5,
        "client-info": {"addr": "10.0.0.9:4000"},
    },
    {
        "count": 1,
        "reason": "key",
        "context": "toplevel",
        "object": "secret-key-outside-prefix",
        "username": "app",
        "age-seconds": 9.0,
    },
    {
        "count": 2,
        "reason": "command",
        "context": "multi",
        "object": "flushall",
        "username": "app",
        "age-seconds": 30.0,
    },
    {"count": 1, "reason": "auth", "object": "AUTH", "username": "x", "age-seconds": 0.5},
]


def _values(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_info__gauges_and_counters_in_base_units() -> None:
    values = _values(info_families(INFO))
    assert values[("redis_connected_clients", ())] == 3
    assert values[("redis_memory_used_bytes", ())] == 928656
    assert values[("redis_memory_max_bytes", ())] == 67108864
    assert values[("redis_evicted_keys_total", ())] == 5
    assert values[("redis_rejected_connections_total", ())] == 1
    assert values[("redis_uptime_seconds", ())] == 42
    assert ("redis_memory_used_bytes_total", ()) not in values


@pytest.mark.parametrize(
    ("policy", "label"),
    [("allkeys-lru", "allkeys-lru"), ("noeviction", "noeviction"), ("not-a-policy", "other")],
)
def test_info__the_eviction_policy_is_a_closed_label_and_the_aof_a_gauge(
    policy: str, label: str
) -> None:
    """maxmemory-policy and appendonly can be changed at runtime by the reload identity
    (RedisEvictionPolicyChanged, RedisPersistenceDisabled); a name Redis would not accept
    never becomes a label of its own."""
    values = _values(info_families({**INFO, "maxmemory_policy": policy, "aof_enabled": 0}))
    assert values[("redis_maxmemory_policy", (("policy", label),))] == 1
    assert [k for k in values if k[0] == "redis_maxmemory_policy"] == [
        ("redis_maxmemory_policy", (("policy", label),))
    ]
    assert values[("redis_aof_enabled", ())] == 0


def test_info__errorstats_by_known_kind_and_other() -> None:
    values = _values(info_families(INFO))
    assert values[("redis_errors_total", (("error", "WRONGPASS"),))] == 2
    assert values[("redis_errors_total", (("error", "NOPERM"),))] == 3
    # Script-chosen error names never become label values.
    assert values[("redis_errors_total", (("error", "other"),))] == 2
    assert not any("MYSCRIPTERROR" in str(labels) for _, labels in values)


def test_info__auth_and_acl_counters_exist_before_any_error() -> None:
    values = _values(info_families({"connected_clients": 1}))
    assert values[("redis_errors_total", (("error", "WRONGPASS"),))] == 0
    assert values[("redis_errors_total", (("error", "NOPERM"),))] == 0


def test_info__skips_missing_and_non_numeric_fields() -> None:
    names = {name for name, _ in _values(info_families({"maxmemory": "lots"}))}
    assert "redis_memory_max_bytes" not in names


def test_acl_log__grouped_by_reason_only() -> None:
    summary = summarize_acl_log(ACL_LOG)
    values = _values(acl_log_families(summary))
    assert values[("redis_acl_log_entries", (("reason", "auth"),))] == 2
    assert values[("redis_acl_log_events", (("reason", "auth"),))] == 5
    assert values[("redis_acl_log_events", (("reason", "key"),))] == 1
    assert values[("redis_acl_log_events", (("reason", "command"),))] == 2
    assert values[("redis_acl_log_events", (("reason", "channel"),))] == 0
    assert values[("redis_acl_log_newest_age_seconds", (("reason", "auth"),))] == 0.5
    rendered = repr(values)
    for leaked in ("password-typed-as-username", "secret-key-outside-prefix", "10.0.0.9"):
        assert leaked not in rendered


def test_acl_log__unknown_reason_is_other() -> None:
    summary = summarize_acl_log([{"count": 1, "reason": "something-new"}])
    assert summary.entries["other"] == 1


def _files(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for var in ("REDIS_TLS_CA_CERT", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE"):
        path = tmp_path / var.lower()
        path.write_text("pem")
        paths[var] = str(path)
    return paths


def test_settings__from_env_with_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("exporter-password\n")
    settings = ExporterSettings.from_env(
        {
            "REDIS_URL": "rediss://redis:6380",
            "REDIS_PASSWORD_FILE": str(secret),
            "ENVIRONMENT": "development",
            "METRICS_PORT": "9200",
            **_files(tmp_path),
        }
    )
    assert (settings.host, settings.port, settings.username) == ("redis", 6380, "exporter")
    # checkov:skip=CKV_SECRET_6: a fake password read from a test file
    assert settings.password == "exporter-password"
    assert settings.metrics_port == 9200
    assert "exporter-password" not in repr(settings)


def test_settings__watched_certificates_are_reported_with_its_own(tmp_path: Path) -> None:
    env = {"REDIS_URL": "rediss://redis:6380", "REDIS_PASSWORD": "p", **_files(tmp_path)}
    settings = ExporterSettings.from_env(env)
    assert set(settings.certificate_files()) == {"ca", "client"}  # none watched: its own only
    for role in ("healthcheck", "rotation"):
        (tmp_path / f"{role}.crt").write_text("pem")
        env[WATCHED_CERTIFICATES[role]] = str(tmp_path / f"{role}.crt")
    files = ExporterSettings.from_env(env).certificate_files()
    assert files == {
        "ca": Path(env["REDIS_TLS_CA_CERT"]),
        "client": Path(env["REDIS_TLS_CERT_FILE"]),
        "healthcheck": tmp_path / "healthcheck.crt",
        "rotation": tmp_path / "rotation.crt",
    }


def test_settings__a_watched_certificate_that_is_no_file_is_one_problem(tmp_path: Path) -> None:
    env = {
        "REDIS_URL": "rediss://redis:6380",
        "REDIS_PASSWORD": "p",
        "RELOAD_CERT_FILE": str(tmp_path / "nowhere.crt"),
        **_files(tmp_path),
    }
    with pytest.raises(ConfigurationError) as caught:
        ExporterSettings.from_env(env)
    assert caught.value.problems == (
        f"RELOAD_CERT_FILE={tmp_path / 'nowhere.crt'} is not a readable file; give the path of "
        "the reload identity's certificate, or unset RELOAD_CERT_FILE",
    )


def test_passwords_rotating__the_file_count_is_exported_and_its_absence_is_no_sample(
    tmp_path: Path,
) -> None:
    path = tmp_path / "acl-users.rotating"
    env = {
        "REDIS_URL": "rediss://redis:6380",
        "REDIS_PASSWORD": "p",
        "ROTATING_ACL_USERS_FILE": str(path),
        **_files(tmp_path),
    }
    settings = ExporterSettings.from_env(env)
    assert settings.passwords_rotating_file == str(path)
    # Nothing listens there, and the client does not retry: each read of the registry costs a
    # refused connection, not redis-py's default retries with backoff (4 s per read).
    down = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0)
    )
    registry = registry_for(down, passwords_rotating_file=Path(path))

    def rotating() -> float | None:
        return registry.get_sample_value("secure_cache_acl_passwords_rotating")

    assert rotating() is None  # no file yet: no sample, never a 0 that reads as done
    path.write_text("5\n")
    assert rotating() == 5
    path.write_text("0\n")
    assert rotating() == 0
    down.close()


def test_settings__every_problem_at_once_without_the_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ExporterSettings.from_env(
            {
                # checkov:skip=CKV_SECRET_4: a fake credential the settings must reject
                "REDIS_URL": "redis://user:leaked-password@redis:6379",
                "REDIS_PASSWORD": "p",
                "REDIS_PASSWORD_FILE": "/x",
                "ENVIRONMENT": "qa",
                "METRICS_PORT": "http",
            }
        )
    message = str(caught.value)
    assert len(caught.value.problems) == 8, message
    assert "rediss://" in message
    assert "REDIS_TLS_KEY_FILE is required" in message
    assert "leaked-password" not in message


def test_settings__a_metrics_port_of_non_ascii_digits_is_a_problem_not_a_crash() -> None:
    """'²' is a digit to str.isdigit() that int() refuses: it raised ValueError at start-up."""
    with pytest.raises(ConfigurationError, match="METRICS_PORT must be a port number"):
        ExporterSettings.from_env({"METRICS_PORT": "\u00b2"})


@pytest.mark.parametrize("kind", ["not-utf8", "fifo", "device"])
def test_settings__a_password_file_it_cannot_use_is_one_problem(tmp_path: Path, kind: str) -> None:
    """A non-UTF-8 password file raised UnicodeDecodeError (a traceback at start-up), a FIFO
    blocked it; the exporter reads its files as the app does (secure_cache.settings)."""
    path = tmp_path / "password"
    if kind == "not-utf8":
        path.write_bytes(b"\xff\xfe" + b"p" * 24)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path(os.devnull)
    env = {"REDIS_URL": "rediss://redis:6380", "REDIS_PASSWORD_FILE": str(path),
           "ENVIRONMENT": "development", "METRICS_PORT": "9200", **_files(tmp_path)}  # fmt: skip
    found: list[BaseException] = []

    def load() -> None:
        try:
            ExporterSettings.from_env(env)
        except BaseException as exc:
            found.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        with path.open("wb"):  # give the blocked reader its end of file, then fail
            pass
        pytest.fail("loading the exporter's settings blocked on a FIFO")
    (raised,) = found
    assert isinstance(raised, ConfigurationError), repr(raised)
    (problem,) = raised.problems
    assert problem.startswith(f"REDIS_PASSWORD_FILE={path} ")


@pytest.mark.parametrize(("tcp_port", "exported"), [(6380, 0), (0, 0), (16390, 16390)])
def test_info__a_plaintext_port_is_the_tcp_port_unless_it_is_the_tls_one(
    tcp_port: int, exported: int
) -> None:
    values = _values(info_families({**INFO, "tcp_port": tcp_port}, tls_port=6380))
    assert values[("redis_plaintext_port", ())] == exported


def _recv_from(data: bytes, chunk: int) -> Callable[[int], bytes]:
    """A socket's recv over `data`, at most `chunk` bytes a call (b"" at the end)."""
    stream = io.BytesIO(data)
    return lambda size: stream.read(min(size, chunk))


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


# ACL LOG as Redis 7.0 sends it in RESP2: one entry of a long denied key, one failed AUTH.
LONG_KEY = b"k" * 200_000
ACL_LOG_REPLY = (
    b"*2\r\n"
    + b"*16\r\n" + _bulk(b"count") + b":3\r\n" + _bulk(b"reason") + _bulk(b"key")
    + _bulk(b"context") + _bulk(b"toplevel") + _bulk(b"object") + _bulk(LONG_KEY)
    + _bulk(b"username") + _bulk(b"app") + _bulk(b"age-seconds") + _bulk(b"1.5")
    + _bulk(b"client-info") + _bulk(b"id=4 addr=10.0.0.9:4000 " + b"x" * 300)
    + _bulk(b"extra") + b"$-1\r\n"
    + b"*4\r\n" + _bulk(b"reason") + _bulk(b"auth") + _bulk(b"age-seconds") + _bulk(b"0.25")
)  # fmt: skip


@pytest.mark.parametrize("chunk", [1, 7, 65536])
def test_bounded_reader__keeps_short_fields_and_drops_long_ones(chunk: int) -> None:
    reply = BoundedRespReader(_recv_from(ACL_LOG_REPLY, chunk)).reply()
    entries = acl_log_entries(reply)
    assert entries[0]["reason"] == "key"
    assert entries[0]["count"] == 3
    assert entries[0]["age-seconds"] == 1.5
    assert entries[0]["object"] is None  # 200 kB: read and dropped
    assert entries[0]["client-info"] is None
    assert entries[1] == {"reason": "auth", "age-seconds": 0.25}
    summary = summarize_acl_log(entries)
    assert summary.events == {"auth": 1, "command": 0, "key": 3, "channel": 0}


def test_bounded_reader__an_error_reply_raises_it_as_redis_py_would() -> None:
    """The exporter logs the class: NoPermissionError says its grant lost ACL LOG."""
    with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions"):
        BoundedRespReader(_recv_from(b"-NOPERM no permissions\r\n", 5)).reply()


@pytest.mark.parametrize(
    "reply",
    [b"*x\r\n", b"$1O\r\nabc\r\n", b":\r\n", b"%1\r\n"],
    ids=["count", "size", "int", "type"],
)
def test_bounded_reader__a_malformed_reply_is_a_redis_error(reply: bytes) -> None:
    """A RedisError, so the collector answers redis_up 0 instead of failing the scrape."""
    with pytest.raises(redis.exceptions.InvalidResponse):
        BoundedRespReader(_recv_from(reply, 64)).reply()


def test_bounded_reader__a_reply_cut_short_is_a_connection_error() -> None:
    with pytest.raises(redis.ConnectionError):
        BoundedRespReader(_recv_from(ACL_LOG_REPLY[:1000], 64)).reply()


def test_acl_log_entries__a_name_that_is_not_utf8_is_read_as_redis_py_reads_it() -> None:
    reply: RespValue = [[b"reason", b"key", b"object", b"other:\xff", b"age-seconds", b"2"]]
    assert acl_log_entries(reply) == [
        {"reason": "key", "object": "other:\ufffd", "age-seconds": 2.0}
    ]


def _endless(piece: bytes, head: bytes = b"") -> tuple[Callable[[int], bytes], list[int]]:
    """A recv that goes on and on (`head`, then `piece` again and again, up to 8 MiB so that a
    reader without bounds ends too); and how much was read."""
    read = [0]

    def recv(size: int) -> bytes:
        if read[0] > 8 * 1024 * 1024:
            return b""
        data = head if read[0] == 0 and head else piece
        read[0] += len(data)
        return data

    return recv, read


@pytest.mark.parametrize(
    ("head", "piece"),
    [(b"+", b"a" * 65536), (b"", b"*1\r\n"), (b"*1000000000\r\n", b":1\r\n")],
    ids=["a line without end", "nesting without end", "an array without end"],
)
def test_bounded_reader__a_reply_beyond_acl_logs_shape_is_refused_early(
    head: bytes, piece: bytes
) -> None:
    """Only Redis, over mutual TLS, talks to this reader; still, whatever it sends, the
    exporter holds little and answers redis_up 0 (a RedisError) instead of growing past its
    memory limit or failing the scrape with RecursionError."""
    recv, read = _endless(piece, head)
    with pytest.raises(redis.exceptions.InvalidResponse):
        BoundedRespReader(recv).reply()
    assert read[0] < 256 * 1024, f"read {read[0]} bytes before refusing"


@pytest.mark.parametrize("kind", [b"+", b"-", b":"])
def test_bounded_reader__a_long_line_that_came_in_one_read_is_refused_too(kind: bytes) -> None:
    """The bound is on the line, not on how it arrived: 8 KiB with its CRLF in one read (the
    reader reads 64 KiB at a time) was taken whole before."""
    chunks = [kind + b"1" * 8192 + b"\r\n"]
    with pytest.raises(redis.exceptions.InvalidResponse, match="line longer"):
        BoundedRespReader(lambda _size: chunks.pop(0) if chunks else b"").reply()
