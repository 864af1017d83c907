"""Redis-side security signals for Prometheus: what the app cannot see from its own side.

Failed AUTH attempts by anyone, commands and keys the ACL refused (to any user), connected
clients, evictions and memory against `maxmemory` are only known to Redis. This exporter reads
them with two commands per scrape, `INFO` and `ACL LOG`, over mutual TLS as its own ACL
identity, and serves them in the Prometheus text format:

    python -m secure_cache.redis_exporter serve     serve /metrics until SIGTERM/SIGINT
                                                    (metrics_server.py: bounded connections)
    python -m secure_cache.redis_exporter scrape    print one scrape; exit 0 when Redis
                                                    answered, 1 otherwise
    python -m secure_cache.redis_exporter healthcheck
                                                    exit 0 when the local /metrics answers
                                                    (needs no secret; the container runs
                                                    the lighter secure_cache.exporter_health)
    python -m secure_cache.redis_exporter rewrite-aof [--timeout S]
                                                    BGREWRITEAOF, then wait until that
                                                    rewrite is done (aof_rewrite.py); exit 0
                                                    when it succeeded, 1 otherwise. What
                                                    scripts/rotate.sh runs (by `docker exec`)
                                                    after a data-key rotation

The exporter's ACL identity (`EXPORTER_USER`, rules `EXPORTER_COMMANDS`) is the single source
for its Redis user; it may run INFO, ACL LOG and BGREWRITEAOF and nothing else, and no key or
channel:

    user exporter on #<sha256> resetkeys resetchannels -@all +info +acl|log +bgrewriteaof

Why this is the tightest form on Redis 7.0 (verified against Debian's redis-server 7.0.15,
tests/integration/test_redis_exporter.py):
- `+acl|log` grants one subcommand of ACL; `ACL WHOAMI`, `ACL LIST`, `ACL SETUSER` stay denied.
  It does include `ACL LOG RESET` (Redis has no finer grant), so whoever holds the exporter's
  credentials could clear the log. The counters below therefore come from INFO's
  `errorstats`, which only `CONFIG RESETSTAT` (an @admin command) resets; ACL LOG adds only
  gauges about what the log holds now.
- `+info|memory`-style first-argument grants do not narrow INFO: Redis 7.0 checks only the
  first argument and INFO takes several sections, so `INFO memory server` passes such a rule.
  Granting `+info` says plainly what is granted. INFO shows no secret (no password, no key
  names; `keyspace` shows key counts only).
- What `+acl|log` lets the identity read: each denial's username, command or key name and
  client address, including a username typed by whoever failed to log in. That is why none of
  it leaves this process (summarize_acl_log keeps the reason, count and age only).
- `+bgrewriteaof` (for `rewrite-aof`) takes no argument: it makes Redis write what it holds
  into a new AOF base and drop the older parts, with the retired data key's envelopes in them.
  Whoever holds the credentials can make Redis fork more often (as writes past
  auto-aof-rewrite-min-size do anyway; a rewrite already running refuses another); the stack's
  memory limit leaves room for the fork (infra/redis_conf.py min_memory_limit_mb).
- AUTH needs no grant. The client sends no `CLIENT SETINFO` and no HELLO, so scraping never
  adds a denial of its own to the ACL LOG.

Environment (every secret may be given as NAME_FILE instead):

    REDIS_URL                  rediss://<host>[:<port>] (required; TLS only)
    REDIS_USERNAME             the exporter's ACL user (default `exporter`)
    REDIS_PASSWORD[_FILE]      its password (required); each at most 1024 characters, as
                               the cache's (settings.MAX_CREDENTIAL_CHARS)
    REDIS_TLS_CA_CERT          CA bundle that signed the server certificate (required)
    REDIS_TLS_CERT_FILE        the exporter's client certificate (required)
    REDIS_TLS_KEY_FILE         its private key (required); each path a regular file this
                               process can read, of at most 1 MiB
    ENVIRONMENT                development (TLS 1.2+) | staging | production (TLS 1.3;
                               the default)
    METRICS_HOST, METRICS_PORT where /metrics listens (default 127.0.0.1:9121); the host
                               may be a name, resolved once at start (the deployed
                               exporter's alias on the monitoring network), or an IP
                               address without brackets; anything else is a problem
    HEALTHCHECK_CERT_FILE, RELOAD_CERT_FILE, ROTATION_CERT_FILE
                               optional: public copies of the Redis health check's, the
                               reload jobs' and the rotation pass's client certificates,
                               watched for expiry only (WATCHED_CERTIFICATES)
    ROTATING_ACL_USERS_FILE    optional: how many ACL users' passwords are in their ROTATE
                               phase (old and new accepted), as the deployment last wrote it
                               after Redis reloaded its users

Metric names follow oliver006/redis_exporter's where one exists (`redis_up`,
`redis_memory_used_bytes`, ...), so dashboards written for it read these too. Label values
come from closed sets: an ACL LOG entry's username, object (a key name for `key` denials)
and client address never become labels. `serve` also exports the expiry of its own CA bundle
and client certificate as `secure_cache_certificate_expiry_timestamp_seconds{certificate=
"ca|client"}` (re-read at each scrape), so monitoring/alerts.yml's certificate rules cover
them under the exporter's job, and the number of CAs its bundle trusts
(`secure_cache_ca_bundle_certificates`: two during a CA rollover).

It exports the expiry of the identities that have no long-running process of their own as
well (`certificate="healthcheck|reload|rotation"`): the Redis health check (redis-cli inside
Redis's container), the reload jobs (one-shot) and the data-key rotation pass (declared
stopped). Each of those certificates sits in a volume beside its private key, and no process
that could export it runs all the time, so the deployment gives the exporter a copy of each
public certificate, never a key (infra/components/exporter.py, which says why there).

A password rotation left half done is a state of the deployment, not of anything the
exporter's grant can read (ACL LIST is not granted): the deployment writes how many ACL users
still have two passwords into the exporter's volume, after Redis reloaded its users, and the
exporter exports it as `secure_cache_acl_passwords_rotating` (PasswordRotationUnfinished).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import ssl
import string
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis._parsers.base import BaseParser
from redis._parsers.helpers import parse_info
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider
from redis.retry import Retry

from secure_cache.aof_rewrite import RewriteError, rewrite_aof
from secure_cache.cli_parser import OneLineParser, say
from secure_cache.errors import ConfigurationError, shown
from secure_cache.exporter_health import DEFAULT_METRICS_PORT, healthcheck
from secure_cache.metrics_server import serve_metrics
from secure_cache.prometheus import (
    CertificateRole,
    certificate_collector,
    count_file_collector,
)
from secure_cache.settings import (
    MAX_CREDENTIAL_CHARS,
    capped_credential,
    read_file,
    read_text_file,
    resolvable_host,
    utf8_text_only,
)
from secure_cache.tls_probe import ProbeTarget, TlsPolicy, TlsPolicyProbe

EXPORTER_USER: Final = "exporter"
# A path longer than this is named by its first characters and its length (one was 6000
# characters, which a message repeated whole).
_SHOWN_PATH_CHARS: Final = 256
# What to give instead of a credential over the cap (settings.capped_credential).
_GENERATED: Final = "use the exporter's credentials the stack generated"
# The exporter's whole grant (see the module docstring for why it is the tightest).
EXPORTER_COMMANDS: Final = "-@all +info +acl|log +bgrewriteaof"
INFO_SECTIONS: Final = ("server", "clients", "memory", "persistence", "stats", "errorstats")
OTHER: Final = "other"

# Error reply prefixes counted by name (INFO errorstats); any other prefix counts as `other`,
# because Lua scripts can reply with errors of any name.
ERROR_KINDS: Final = frozenset(
    {
        "WRONGPASS", "NOPERM", "NOAUTH", "ERR", "WRONGTYPE", "OOM", "BUSY", "LOADING",
        "READONLY", "MISCONF", "EXECABORT", "NOSCRIPT",
    }
)  # fmt: skip
ACL_LOG_REASONS: Final = ("auth", "command", "key", "channel")
# Entries read from ACL LOG: one more than the stack's acllog-max-len (8, ACL_LOG_MAX_LEN in
# infra/redis_conf.py; tests/unit/test_monitoring_alerts.py pins the two). Never more, however
# long the log; and a ninth entry shows the limit was raised at runtime (CONFIG SET
# acllog-max-len by the reload identity), after which any identity's denials of 2 MiB
# arguments grow Redis outside maxmemory (RedisAclLogLengthRaised).
ACL_LOG_READ: Final = 9
# The eviction policies Redis 7.0 accepts (CONFIG SET refuses any other name), so the label
# of redis_maxmemory_policy is a closed set; the stack sets allkeys-lru (infra/redis_conf.py).
MAXMEMORY_POLICIES: Final = frozenset(
    {
        "volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu", "volatile-random",
        "allkeys-random", "volatile-ttl", "noeviction",
    }
)  # fmt: skip
ROTATING_USERS_ENV: Final = "ROTATING_ACL_USERS_FILE"
# Other identities' client certificates, watched for expiry only: label value -> the variable
# naming the public copy in the exporter's volume. Fixed here, so the label set stays closed.
WATCHED_CERTIFICATES: Final[dict[CertificateRole, str]] = {
    "healthcheck": "HEALTHCHECK_CERT_FILE",
    "reload": "RELOAD_CERT_FILE",
    "rotation": "ROTATION_CERT_FILE",
}

# INFO field -> (metric name, help, counter?)
_INFO_FIELDS: Final[dict[str, tuple[str, str, bool]]] = {
    "uptime_in_seconds": ("redis_uptime_seconds", "Seconds since Redis started.", False),
    "connected_clients": ("redis_connected_clients", "Client connections open now.", False),
    "maxclients": ("redis_max_clients", "The maxclients limit.", False),
    "used_memory": ("redis_memory_used_bytes", "Memory Redis has allocated.", False),
    "maxmemory": ("redis_memory_max_bytes", "The maxmemory limit (0: none).", False),
    "aof_enabled": (
        "redis_aof_enabled",
        "1 while Redis keeps its append-only file (the stack sets appendonly yes).",
        False,
    ),
    "evicted_keys": ("redis_evicted_keys", "Keys evicted under maxmemory.", True),
    "expired_keys": ("redis_expired_keys", "Keys removed at expiry.", True),
    "rejected_connections": (
        "redis_rejected_connections",
        "Connections refused because of maxclients.",
        True,
    ),
    "total_connections_received": (
        "redis_connections_received",
        "Connections accepted (TLS handshakes that failed included).",
        True,
    ),
    "keyspace_hits": ("redis_keyspace_hits", "Successful key lookups.", True),
    "keyspace_misses": ("redis_keyspace_misses", "Failed key lookups.", True),
}

logger = logging.getLogger("secure_cache.redis_exporter")


# -- pure parsing: redis-py's parsed INFO / ACL LOG replies -> metric families -------------


def info_families(info: Mapping[str, Any], tls_port: int | None = None) -> list[Metric]:
    """Families for an INFO reply as redis-py parses it (`Redis.info()`); with `tls_port`,
    the port the exporter reached Redis on over TLS, also `redis_plaintext_port`."""
    families: list[Metric] = []
    tcp_port = info.get("tcp_port")
    if tls_port is not None and isinstance(tcp_port, int):
        # The stack's Redis has no plaintext listener (`port 0`, infra/redis_conf.py), but
        # the reload identity's CONFIG SET could open one at runtime (docs/attack-surface.md,
        # "What a container on the backend network can still do to Redis"). INFO's tcp_port is the
        # plaintext port, or the TLS port when there is none (Redis 7.0), so any other
        # value is a plaintext listener.
        families.append(
            GaugeMetricFamily(
                "redis_plaintext_port",
                "The plaintext port Redis listens on (0: none, TLS only).",
                value=0 if tcp_port in (0, tls_port) else tcp_port,
            )
        )
    for name, (metric, help_text, counter) in _INFO_FIELDS.items():
        value = info.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        family_type = CounterMetricFamily if counter else GaugeMetricFamily
        families.append(family_type(metric, help_text, value=value))
    policy = info.get("maxmemory_policy")
    if isinstance(policy, str):
        # CONFIG SET maxmemory-policy noeviction (the reload identity may) makes every write
        # fail with OOM once the cache is full: RedisEvictionPolicyChanged.
        policies = GaugeMetricFamily(
            "redis_maxmemory_policy",
            "The eviction policy at maxmemory (1 for the one in force).",
            labels=["policy"],
        )
        policies.add_metric([policy if policy in MAXMEMORY_POLICIES else OTHER], 1)
        families.append(policies)
    errors: dict[str, float] = {}
    for name, value in info.items():
        if not name.startswith("errorstat_") or not isinstance(value, Mapping):
            continue
        kind = name.removeprefix("errorstat_")
        label = kind if kind in ERROR_KINDS else OTHER
        errors[label] = errors.get(label, 0) + float(value.get("count", 0))
    family = CounterMetricFamily(
        "redis_errors",
        "Error replies by kind (INFO errorstats): WRONGPASS is a failed AUTH, NOPERM an ACL "
        "denial of a command, key or channel.",
        labels=["error"],
    )
    # WRONGPASS and NOPERM are always present, so alerts see 0 rather than no series.
    for kind in sorted({"WRONGPASS", "NOPERM", *errors}):
        family.add_metric([kind], errors.get(kind, 0))
    families.append(family)
    return families


@dataclass
class AclLogSummary:
    """What the ACL LOG holds now, by reason."""

    entries: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACL_LOG_REASONS, 0))
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACL_LOG_REASONS, 0))
    newest_age: dict[str, float] = field(default_factory=dict)


def summarize_acl_log(entries: Sequence[Mapping[str, Any]]) -> AclLogSummary:
    """Group ACL LOG entries (redis-py's `Redis.acl_log()`) by reason; nothing else is kept."""
    summary = AclLogSummary()
    for entry in entries:
        reason = str(entry.get("reason", ""))
        reason = reason if reason in ACL_LOG_REASONS else OTHER
        summary.entries[reason] = summary.entries.get(reason, 0) + 1
        summary.events[reason] = summary.events.get(reason, 0) + int(entry.get("count", 1))
        age = entry.get("age-seconds")
        if isinstance(age, int | float):
            summary.newest_age[reason] = min(summary.newest_age.get(reason, float(age)), age)
    return summary


def acl_log_families(summary: AclLogSummary) -> list[Metric]:
    entries = GaugeMetricFamily(
        "redis_acl_log_entries",
        "Entries the ACL LOG holds now, by reason (Redis keeps at most acllog-max-len).",
        labels=["reason"],
    )
    events = GaugeMetricFamily(
        "redis_acl_log_events",
        "Denials the ACL LOG's entries count now, by reason (a gauge: old entries drop out; "
        "redis_errors_total is the counter).",
        labels=["reason"],
    )
    for reason in summary.entries:
        entries.add_metric([reason], summary.entries[reason])
        events.add_metric([reason], summary.events[reason])
    newest = GaugeMetricFamily(
        "redis_acl_log_newest_age_seconds",
        "Age of the most recent ACL LOG entry, by reason.",
        labels=["reason"],
    )
    for reason, age in summary.newest_age.items():
        newest.add_metric([reason], age)
    return [entries, events, newest]


def tls_policy_families(policy: TlsPolicy) -> list[Metric]:
    """The drift probes' last answers (tls_probe.py); a probe that concluded nothing has no
    sample."""
    families: list[Metric] = []
    for name, help_text, value in (
        (
            "redis_tls_client_certificate_required",
            "1 when Redis refused a TLS handshake without a client certificate (tls-auth-clients "
            "yes), 0 when it let one through.",
            policy.client_certificate_required,
        ),
        (
            "redis_tls_protocol_below_floor_accepted",
            "1 when Redis completed a handshake capped at the TLS version below the "
            "environment's floor, 0 when it refused it.",
            policy.protocol_below_floor_accepted,
        ),
    ):
        if value is not None:
            families.append(GaugeMetricFamily(name, help_text, value=int(value)))
    return families


def up_family(up: bool) -> Metric:
    return GaugeMetricFamily(
        "redis_up", "1 when the last scrape of Redis succeeded, else 0.", value=1 if up else 0
    )


# -- ACL LOG without holding its arguments ------------------------------------------------

# Longest bulk string kept while reading ACL LOG: every field read (reason, count, age) is
# shorter; what is longer (the denied key or username, up to proto-max-bulk-len each, and the
# client's description) is read and dropped.
_KEPT_BULK_BYTES: Final = 64
_READ_BYTES: Final = 64 * 1024
# The shape of ACL LOG's reply, with room: a line is a type and a number, or an error message
# (Redis cuts the arguments it quotes to 128 bytes); the reply is an array (depth 1) of
# entries (depth 2) of scalars; ACL_LOG_READ entries of about 20 fields each. Beyond these the
# reply is not ACL LOG's: without them a 32 MiB line without CRLF held 96 MiB (the exporter's
# limit) for 12 s, 100,000 nested arrays raised RecursionError out of the scrape, and an
# array of 2 million integers took 17 s (measured 2026-11-30 against this reader).
_MAX_LINE_BYTES: Final = 4096
_MAX_DEPTH: Final = 3
_MAX_ELEMENTS: Final = 1024
# The longest INFO reply read. Redis 7.0 answers INFO_SECTIONS in about 4 KiB; errorstats adds
# a line per error kind and keeps at most 128 kinds. A 16 MiB reply took the exporter from
# 171 to 418 MiB (redis-py's whole-reply read, then parse_info's lines), past its 96 MiB
# container limit: a compromised or replaced Redis could have it OOM-killed at every scrape
# (tests/integration/test_hostile_redis_exporter.py).
_MAX_INFO_BYTES: Final = 64 * 1024

RespValue = bytes | int | None | list["RespValue"]


class BoundedRespReader:
    """Reads one RESP2 reply from `recv`, dropping bulk strings longer than _KEPT_BULK_BYTES.

    Hand-written because redis-py (and hiredis) build the whole reply: a full ACL LOG is
    8 entries (acllog-max-len) of an argument up to 2 MiB each, and building it at every
    scrape took the exporter's process to 97 MiB at its peak under scrapes, past its
    96 MiB container limit (tests/integration/test_redis_exporter_acl_log_memory.py; the
    same scrapes peaked at 48 MiB, as with an empty log, read this way). It holds 64 KiB of
    input at a time, and refuses (InvalidResponse: redis_up 0) a reply that is not shaped as
    ACL LOG's: a longer line, deeper nesting or more elements than _MAX_* allow."""

    def __init__(
        self,
        recv: Callable[[int], bytes],
        *,
        keep_bytes: int = _KEPT_BULK_BYTES,
        max_bulk_bytes: int | None = None,
    ) -> None:
        """`keep_bytes`: longer bulk strings are read and dropped; `max_bulk_bytes`: longer
        ones are refused before any of them is read (INFO's reply, read_info)."""
        self._recv = recv
        self._buffer = bytearray()
        self._elements = 0
        self._keep = keep_bytes
        self._max_bulk = max_bulk_bytes

    def reply(self, depth: int = 1) -> RespValue:
        head = self._line()
        kind, rest = head[:1], bytes(head[1:])
        if kind == b"*":
            count = self._integer(rest)
            self._elements += max(count, 0)
            if depth > _MAX_DEPTH or self._elements > _MAX_ELEMENTS:
                raise redis.InvalidResponse("RESP reply nested or long beyond ACL LOG's shape")
            return None if count < 0 else [self.reply(depth + 1) for _ in range(count)]
        if kind == b"$":
            size = self._integer(rest)
            if self._max_bulk is not None and size > self._max_bulk:
                raise redis.InvalidResponse("RESP bulk string longer than the reply read")
            return None if size < 0 else self._bulk(size)
        if kind == b":":
            return self._integer(rest)
        if kind == b"+":
            return rest
        if kind == b"-":
            # redis-py's own mapping (NOPERM -> NoPermissionError, ...): the collector logs
            # the class.
            raise BaseParser.parse_error(rest.decode(errors="replace"))  # type: ignore[no-untyped-call]
        raise redis.InvalidResponse(f"unexpected RESP type {kind!r}")

    @staticmethod
    def _integer(text: bytes) -> int:
        """A RedisError for a malformed reply, so that the collector answers redis_up 0."""
        try:
            return int(text)
        except ValueError:
            raise redis.InvalidResponse("malformed RESP integer") from None

    def _fill(self) -> None:
        data = self._recv(_READ_BYTES)
        if not data:
            raise redis.ConnectionError("Redis closed the connection mid-reply")
        self._buffer += data

    def _line(self) -> bytearray:
        searched = 0
        while (end := self._buffer.find(b"\r\n", searched)) < 0:
            if len(self._buffer) > _MAX_LINE_BYTES:
                raise redis.InvalidResponse("RESP line longer than ACL LOG's")
            searched = max(len(self._buffer) - 1, 0)  # a CR may end what came so far
            self._fill()
        if end > _MAX_LINE_BYTES:  # a long line that came whole in one read
            raise redis.InvalidResponse("RESP line longer than ACL LOG's")
        line = self._buffer[:end]
        del self._buffer[: end + 2]
        return line

    def _bulk(self, size: int) -> bytes | None:
        """The string, or None (read and dropped) when longer than the bytes kept."""
        keep = size <= self._keep
        remaining, kept = size + 2, bytearray()
        while remaining:
            if not self._buffer:
                self._fill()
            take = min(remaining, len(self._buffer))
            if keep:
                kept += self._buffer[:take]
            del self._buffer[:take]
            remaining -= take
        return bytes(kept[:-2]) if keep else None


def acl_log_entries(reply: RespValue) -> list[dict[str, Any]]:
    """ACL LOG's reply as BoundedRespReader reads it -> entries shaped as redis-py parses them
    (`reason`, `count`, `age-seconds`; dropped fields are None)."""
    entries = []
    for raw in reply if isinstance(reply, list) else []:
        fields = raw if isinstance(raw, list) else []
        entry: dict[str, Any] = {}
        for name, value in zip(fields[::2], fields[1::2], strict=False):
            if isinstance(name, bytes):
                # errors="replace", as redis-py decodes: any identity can put a short
                # non-UTF-8 name into the log, and a strict decode failed every scrape.
                entry[_text(name)] = _text(value) if isinstance(value, bytes) else value
        try:
            entry["age-seconds"] = float(entry["age-seconds"])
        except (KeyError, TypeError, ValueError):
            entry.pop("age-seconds", None)
        entries.append(entry)
    return entries


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def read_acl_log(client: redis.Redis) -> list[dict[str, Any]]:
    """`ACL LOG` on the client's connection, read with BoundedRespReader."""
    return acl_log_entries(_read_bounded(client, ("ACL", "LOG", ACL_LOG_READ)))


def read_info(client: redis.Redis) -> dict[str, Any]:
    """`INFO INFO_SECTIONS`, parsed as redis-py's `Redis.info()` parses it, read with
    BoundedRespReader: a reply longer than _MAX_INFO_BYTES is refused unread."""
    reply = _read_bounded(
        client,
        ("INFO", *INFO_SECTIONS),
        keep_bytes=_MAX_INFO_BYTES,
        max_bulk_bytes=_MAX_INFO_BYTES,
    )
    if not isinstance(reply, bytes):
        raise redis.InvalidResponse("INFO's reply is not a bulk string")
    info: dict[str, Any] = parse_info(_text(reply))  # type: ignore[no-untyped-call]
    return info


def _read_bounded(client: redis.Redis, command: tuple[Any, ...], **bounds: int) -> RespValue:
    """`command`'s reply on the client's connection, read with BoundedRespReader."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_command(*command)  # type: ignore[no-untyped-call]
        # redis-py's own parser has read nothing of this reply yet (it reads on
        # read_response), so the reply is read from the socket directly.
        sock = connection._sock  # private: see BoundedRespReader for why
        if sock is None:
            raise redis.ConnectionError("no connection to Redis")
        return BoundedRespReader(sock.recv, **bounds).reply()
    except BaseException:
        connection.disconnect()  # type: ignore[no-untyped-call]  # a half-read reply
        raise
    finally:
        pool.release(connection)


# -- I/O -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExporterSettings:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    ca_file: str
    cert_file: str
    key_file: str
    min_tls_version: ssl.TLSVersion
    metrics_host: str = "127.0.0.1"
    metrics_port: int = DEFAULT_METRICS_PORT
    password_file: str | None = None
    """REDIS_PASSWORD_FILE, re-read at every AUTH (see PasswordFile)."""
    watched_certificates: Mapping[CertificateRole, str] = field(default_factory=dict)
    """WATCHED_CERTIFICATES that are set: label value -> path, re-read at each scrape."""
    passwords_rotating_file: str | None = None
    """ROTATING_ACL_USERS_FILE, re-read at each scrape."""

    def certificate_files(self) -> dict[CertificateRole, Path]:
        """Every certificate file whose expiry the exporter reports, by label value."""
        watched = {role: Path(path) for role, path in self.watched_certificates.items()}
        return {"ca": Path(self.ca_file), "client": Path(self.cert_file), **watched}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExporterSettings:
        """Read the environment; ConfigurationError lists every problem at once."""
        problems: list[str] = []
        env = utf8_text_only(os.environ if environ is None else environ, problems)
        url = urlsplit(env.get("REDIS_URL", "").strip())
        host, port = url.hostname, None
        try:
            port = url.port or 6379
        except ValueError:
            problems.append("REDIS_URL has an invalid port; use rediss://<host>:<port>")
        if url.scheme != "rediss" or not host:
            problems.append("REDIS_URL must be rediss://<host>[:<port>] (TLS only)")
        elif not resolvable_host(host):
            # It started, then failed every scrape's TLS probe with a UnicodeError.
            problems.append(
                "REDIS_URL host is not a host name or IP address; use rediss://<host>[:<port>]"
            )
        if url.username or url.password or url.query:
            problems.append("REDIS_URL must carry no credentials and no query parameters")
        # The cache's cap: the exporter took any length and failed every scrape with redis_up
        # 0 and only the error's class logged.
        password = capped_credential(
            "REDIS_PASSWORD", _secret(env, "REDIS_PASSWORD", problems), _GENERATED, problems
        )
        username = capped_credential(
            "REDIS_USERNAME",
            env.get("REDIS_USERNAME", "").strip() or EXPORTER_USER,
            _GENERATED,
            problems,
        )
        paths = {}
        for var in ("REDIS_TLS_CA_CERT", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE"):
            paths[var] = env.get(var, "").strip()
            if not paths[var]:
                problems.append(f"{var} is required: the path of a PEM file")
            elif not _readable_file(paths[var]):
                problems.append(
                    f"{var}={shown(paths[var], _SHOWN_PATH_CHARS)} is not a readable file"
                )
        watched = _watched_certificates(env, problems)
        environment = env.get("ENVIRONMENT", "production").strip()
        if environment not in ("development", "staging", "production"):
            problems.append("ENVIRONMENT must be development, staging or production")
        metrics_host = env.get("METRICS_HOST", "").strip() or "127.0.0.1"
        if not resolvable_host(metrics_host):
            # `a..b` or a 64-character label was a UnicodeError traceback (IDNA) at the bind.
            problems.append(
                "METRICS_HOST is not a host name or IP address (an IPv6 address goes without "
                "brackets); set it to an address of this container (default 127.0.0.1)"
            )
        # ASCII whitespace only, as int_settings.int_setting strips: a no-break space is refused.
        metrics_port = env.get("METRICS_PORT", str(DEFAULT_METRICS_PORT)).strip(string.whitespace)
        if (
            # At most 5 digits: int() refuses more than 4300 with a ValueError (a traceback).
            not (metrics_port.isascii() and metrics_port.isdigit() and len(metrics_port) <= 5)
            or not 1 <= int(metrics_port) <= 65535
        ):
            problems.append("METRICS_PORT must be a port number (1-65535)")
        if problems or host is None or port is None or password is None or username is None:
            raise ConfigurationError(problems)
        return cls(
            host=host,
            port=port,
            username=username,
            password=password,
            ca_file=paths["REDIS_TLS_CA_CERT"],
            cert_file=paths["REDIS_TLS_CERT_FILE"],
            key_file=paths["REDIS_TLS_KEY_FILE"],
            min_tls_version=(
                ssl.TLSVersion.TLSv1_2 if environment == "development" else ssl.TLSVersion.TLSv1_3
            ),
            metrics_host=metrics_host,
            metrics_port=int(metrics_port),
            password_file=env.get("REDIS_PASSWORD_FILE", "").strip() or None,
            watched_certificates=watched,
            passwords_rotating_file=env.get(ROTATING_USERS_ENV, "").strip() or None,
        )


def _watched_certificates(
    env: Mapping[str, str], problems: list[str]
) -> dict[CertificateRole, str]:
    """The WATCHED_CERTIFICATES that are set (each optional), by label value."""
    watched: dict[CertificateRole, str] = {}
    for role, var in WATCHED_CERTIFICATES.items():
        path = env.get(var, "").strip()
        if not path:
            continue
        if _readable_file(path):
            watched[role] = path
        else:
            problems.append(
                f"{var}={shown(path, _SHOWN_PATH_CHARS)} is not a readable file; give the "
                f"path of the {role} "
                f"identity's certificate, or unset {var}"
            )
    return watched


def _readable_file(path: str) -> bool:
    """Whether `path` is a regular file this process can read (settings.read_file: at most
    1 MiB, a FIFO does not block). Path.is_file() raised OSError on a name longer than the
    system takes (ENAMETOOLONG): a traceback at start."""
    try:
        read_file(path)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return False
    return True


def _secret(env: Mapping[str, str], var: str, problems: list[str]) -> str | None:
    direct, path = env.get(var), env.get(f"{var}_FILE")
    if direct and path:
        problems.append(f"set {var} or {var}_FILE, not both")
        return None
    if path:
        text = read_text_file(f"{var}_FILE", path, problems, secret=True)
        return text.strip() or None if text is not None else None
    if not direct:
        problems.append(f"{var} (or {var}_FILE) is required: the exporter's ACL password")
        return None
    return direct


class PasswordFile(CredentialProvider):
    """Credentials for each new connection, the password read from its file every time.

    A deployed exporter follows the stack's in-place rotation (infra/components/material.py
    rewrites its material volume while it runs): a new connection presents the certificate
    and key then in the files (redis-py loads them per connection) and authenticates with the
    password then in the file. Redis's ACL LOAD closes the old connections, so the next
    scrape reconnects with the new material. A file caught unreadable, or over the cap the
    start applies (MAX_CREDENTIAL_CHARS), keeps the last good password; the over-cap warning
    is logged once when the file goes over the cap (it was logged at every new connection,
    about each scrape, while the file stayed so) and an info line when it is back within.
    """

    def __init__(self, username: str, path: str, password: str) -> None:
        self.username = username
        self.path = Path(path)
        self.password = password
        self._over_cap = False

    def get_credentials(self) -> tuple[str, str]:
        try:
            text = read_file(str(self.path)).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            text = ""
        over_cap = len(text) > MAX_CREDENTIAL_CHARS
        if over_cap and not self._over_cap:
            # The start refuses such a file (capped_credential); here it was sent as the
            # password at every AUTH, any length, and each scrape failed with
            # AuthenticationError.
            logger.warning(
                "%s is %d characters, over the %d accepted; the last good password is used "
                "until it is within them again",
                "REDIS_PASSWORD_FILE",
                len(text),
                MAX_CREDENTIAL_CHARS,
            )
        elif self._over_cap and not over_cap and text:
            logger.info("%s is within the cap again; its password is used", "REDIS_PASSWORD_FILE")
        if text:
            self._over_cap = over_cap
        if over_cap:
            text = ""
        if text:
            self.password = text
        return self.username, self.password


def connect(settings: ExporterSettings) -> redis.Redis:
    """A client that verifies the server and presents the exporter's certificate."""
    credentials: dict[str, Any] = (
        {
            "credential_provider": PasswordFile(
                settings.username, settings.password_file, settings.password
            )
        }
        if settings.password_file
        else {"username": settings.username, "password": settings.password}
    )
    return redis.Redis(
        host=settings.host,
        port=settings.port,
        **credentials,
        ssl=True,
        ssl_ca_certs=settings.ca_file,
        ssl_certfile=settings.cert_file,
        ssl_keyfile=settings.key_file,
        ssl_cert_reqs="required",
        ssl_min_version=settings.min_tls_version,
        socket_timeout=5.0,
        socket_connect_timeout=5.0,
        # No retries inside a scrape: an unreachable Redis must answer redis_up 0 at once,
        # before Prometheus' scrape timeout turns it into `up 0` (the next scrape retries).
        retry=Retry(NoBackoff(), 0),
        # CLIENT SETINFO (Redis 7.2+) is not granted: sending it would add a denial to the ACL
        # LOG at every connect. RESP2 authenticates with AUTH alone (no HELLO).
        driver_info=None,
        protocol=2,
        max_connections=1,
    )


def probe_target(settings: ExporterSettings) -> ProbeTarget:
    """Redis's TLS listener, as the exporter's own connection reaches it."""
    return ProbeTarget(
        host=settings.host,
        port=settings.port,
        ca_file=settings.ca_file,
        cert_file=settings.cert_file,
        key_file=settings.key_file,
        min_tls_version=settings.min_tls_version,
    )


# Redis could not be asked (RedisError, OSError), or its replies are not INFO's and ACL LOG's
# (a broken or compromised server): an errorstat or ACL LOG count that is not a number
# (ValueError), INFO answered with an integer or an array (redis-py's parse_info:
# AttributeError), a count that is an array (TypeError) escaped collect() and failed the
# whole /metrics answer instead of reporting redis_up 0
# (tests/integration/test_hostile_redis_exporter.py).
_SCRAPE_FAILURES: Final = (
    redis.RedisError,
    OSError,
    ValueError,
    TypeError,
    AttributeError,
    LookupError,
    ArithmeticError,
)


class RedisCollector(Collector):
    """Queries Redis at each scrape; `redis_up` says whether that worked. With `tls_probe`, also
    what Redis's TLS listener accepted at its last probe (which runs apart from the scrape)."""

    def __init__(self, client: redis.Redis, tls_probe: TlsPolicyProbe | None = None) -> None:
        self._client = client
        self._tls_probe = tls_probe
        self._lock = threading.Lock()  # one scrape at a time on the single connection

    def collect(self) -> Iterator[Metric]:
        port = self._client.connection_pool.connection_kwargs["port"]
        with self._lock:
            try:
                info = read_info(self._client)
                log = read_acl_log(self._client)
                families = [*info_families(info, port), *acl_log_families(summarize_acl_log(log))]
            except _SCRAPE_FAILURES as exc:
                # The class names the failure (AuthenticationError, NoPermissionError,
                # ConnectionError...); the message could echo a command, so it is not logged.
                logger.warning("event=redis_scrape_failed error=%s", type(exc).__name__)
                yield up_family(False)
                return
            policy = self._tls_probe.policy() if self._tls_probe is not None else None
        yield up_family(True)
        yield from families
        if policy is not None:
            yield from tls_policy_families(policy)


def registry_for(
    client: redis.Redis,
    certificates: Mapping[CertificateRole, Path] | None = None,
    tls_probe: TlsPolicyProbe | None = None,
    passwords_rotating_file: Path | None = None,
) -> CollectorRegistry:
    """Redis's metrics, the expiry of `certificates` (the exporter's own CA bundle and
    client certificate and the watched ones: ExporterSettings.certificate_files), so the
    certificate alerts cover them too, and the count in `passwords_rotating_file`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(client, tls_probe))
    if certificates:
        registry.register(certificate_collector(certificates))
    if passwords_rotating_file is not None:
        registry.register(passwords_rotating_collector(passwords_rotating_file))
    return registry


def passwords_rotating_collector(path: Path) -> Collector:
    """`secure_cache_acl_passwords_rotating`, the count in ROTATING_ACL_USERS_FILE."""
    return count_file_collector(
        "acl_passwords_rotating",
        "ACL users whose previous password Redis still accepts (a password rotation's ROTATE "
        "phase), as the deployment wrote it after Redis reloaded its users.",
        path,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m secure_cache.redis_exporter",
        description="Redis security signals for Prometheus.",
    )
    parser.add_argument(
        "command",
        choices=("serve", "scrape", "healthcheck", "rewrite-aof"),
        nargs="?",
        default="serve",
    )
    parser.add_argument(
        "--timeout",
        type=_rewrite_seconds,
        default=REWRITE_TIMEOUT_S,
        help="rewrite-aof: seconds to wait for the rewrite (1 to 3600)",
    )
    args = parser.parse_args(argv)
    if args.command == "healthcheck":
        return healthcheck(os.environ)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="level=%(levelname)s %(message)s"
    )
    try:
        settings = ExporterSettings.from_env()
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    client = connect(settings)
    if args.command == "rewrite-aof":
        return _rewrite_aof(client, args.timeout)
    tls_probe = TlsPolicyProbe(probe_target(settings))
    rotating = settings.passwords_rotating_file
    registry = registry_for(
        client,
        settings.certificate_files(),
        tls_probe,
        None if rotating is None else Path(rotating),
    )
    if args.command == "scrape":
        tls_probe.refresh()
        body = generate_latest(registry)
        say(body.decode(), end="")
        return 0 if b"\nredis_up 1.0\n" in body else 1
    try:
        server, thread = serve_metrics(registry, settings.metrics_host, settings.metrics_port)
    except OSError as exc:  # a name that does not resolve, a port in use
        print(
            f"cannot listen on METRICS_HOST={shown(settings.metrics_host)} METRICS_PORT="
            f"{settings.metrics_port} ({exc.strerror or type(exc).__name__}); set them to an "
            "address of this container and a free port",
            file=sys.stderr,
        )
        return 2
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    tls_probe.start(stopped)
    logger.info(
        "event=exporter_started host=%s port=%d redis=%s:%d",
        settings.metrics_host,
        settings.metrics_port,
        settings.host,
        settings.port,
    )
    stopped.wait()
    server.shutdown()
    thread.join()
    client.close()
    return 0


# How long rewrite-aof waits: a rewrite of the largest cache a stack allows (redisMaxmemoryMb)
# takes seconds; a minute more covers a BGSAVE or another rewrite running first.
REWRITE_TIMEOUT_S: Final = 300.0


def _rewrite_seconds(text: str) -> float:
    try:
        value = float(text) if text.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not 1.0 <= value <= 3600.0:  # False for NaN too
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds from 1 to 3600, got {shown(text)}"
        )
    return value


def _rewrite_aof(client: redis.Redis, timeout_s: float) -> int:
    """`rewrite-aof`: one line, exit 0 when Redis rewrote its AOF, 1 otherwise."""
    started = time.monotonic()
    try:
        done = rewrite_aof(
            lambda: read_info(client),
            client.bgrewriteaof,
            timeout_s=timeout_s,
        )
    except (RewriteError, redis.RedisError, OSError) as exc:
        print(
            f"rewrite-aof: error: {exc}; nothing else was changed. Run it again once Redis "
            "answers (scripts/status.sh STACK says what answers)",
            file=sys.stderr,
        )
        return 1
    finally:
        client.close()
    first = " after the one already running" if done.waited_for_another else ""
    say(
        f"rewrite-aof: Redis rewrote its append-only file{first} "
        f"(rewrite {done.rewrites} since it started, {time.monotonic() - started:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
