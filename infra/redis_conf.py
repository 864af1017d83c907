"""redis.conf for a TLS-only server, rendered from a few typed inputs.

Shared by the Pulumi program (the config file baked into the deployment) and the integration
tests (the same directives on a throwaway server), so both run one configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# TLS 1.2 suites: ECDHE + AEAD only (forward secrecy, no CBC, no RSA key transport).
TLS12_CIPHERS: Final = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
)
TLS13_CIPHERSUITES: Final = (
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
)
ALLOWED_PROTOCOLS: Final = ("TLSv1.2", "TLSv1.3")

# The largest value the app accepts (its HTTP_MAX_VALUE_BYTES; infra/components/app_image.py
# passes this same number to the app and the rotation pass), and what sealing adds to it in the
# worst case: app/secure_cache/crypto.py's MAX_OVERHEAD_BYTES (26 bytes of header, nonce and
# expiry, 2 of key length, 16 + 4,128 of the longest sealed key, the 16-byte tag). Written
# out, not imported: importing crypto.py loads cryptography, which the operator commands that
# read this file do not (tests/unit/test_operator_imports.py); tests/unit/test_shared_facts.py
# pins the two equal.
VALUE_LIMIT_BYTES: Final = 1 << 20
ENVELOPE_OVERHEAD_BYTES: Final = 26 + 2 + 16 + 4128 + 16
_MIB: Final = 1 << 20
# Redis refuses a proto-max-bulk-len below 1 MiB.
_REDIS_MIN_BULK_BYTES: Final = _MIB
# One allocation may take at most this share of maxmemory: maxmemory is checked before a
# command runs, so a single SETRANGE/APPEND/SET that allocates more than the headroom between
# maxmemory and the container limit gets Redis OOM-killed instead of refused.
_BULK_SHARE_OF_MAXMEMORY: Final = 8


# One reply may hold at most this many of the largest values: a normal client whose reply
# grows past it is disconnected (client-output-buffer-limit), so `MGET k k k ...` of one large
# key cannot build a reply of gigabytes. 16 full-size values; a rotation batch (200 names,
# app/secure_cache/core.py) fits while values average under 160 KiB.
_REPLY_VALUES: Final = 16
# Every client together (query and output buffers) may hold at most this many hard limits;
# past it Redis disconnects the largest clients first (maxmemory-clients).
_CLIENTS_REPLIES: Final = 2
# What the server needs beside its dataset: the process itself and its libraries.
_BASELINE_MB: Final = 16
# ACL denials Redis keeps (its default: 128). Each entry holds the denied argument whole (a
# username typed at AUTH, a refused key name), outside maxmemory, and any authenticated
# connection may send arguments up to proto-max-bulk-len: a failed AUTH with a 2 MiB username
# held 2.1 MiB (Redis 7.0.15), so 128 would hold about 270 MiB, past maxmemory and the
# container's limit (tests/integration/test_redis_acl_log_memory.py). The 8 newest
# denials are enough to see who was refused what; the counters come from INFO errorstats.
ACL_LOG_MAX_LEN: Final = 8
# Connections Redis accepts at once (its default: 10000, or the open-file limit less 32). Each
# one costs Redis memory before it sends a byte: its client and its TLS session, mostly
# OpenSSL's allocations, which neither maxmemory nor maxmemory-clients sees (31 KiB for an idle
# TCP connection, 35 KiB after a handshake and a PING: Redis 7.0.15, OpenSSL 3.0). Any
# container on the backend network (the exporter, the app) could open 10000 without a
# certificate: about 310 MiB outside maxmemory, past the container limit once the cache is
# full, so the kernel OOM-killed Redis (tests/integration/test_redis_connection_flood.py). 512
# is eight times the client library's pool (app/secure_cache/transport.py, 64 connections),
# beside the exporter's one, the health check's and the reload jobs'; a flood past it is
# refused a connection instead, and Redis serves again as soon as the flood ends.
MAX_CLIENTS: Final = 512
# What each of them may hold outside maxmemory: the measured 35 KiB and a margin.
CONNECTION_BYTES: Final = 48 * 1024


def output_limit_bytes(value_limit_bytes: int = VALUE_LIMIT_BYTES) -> int:
    """The hard output-buffer limit of a normal client (one reply at most this large)."""
    return bulk_limit_bytes(value_limit_bytes) * _REPLY_VALUES


def acl_log_limit_bytes(value_limit_bytes: int = VALUE_LIMIT_BYTES) -> int:
    """The most memory a full ACL LOG may hold: ACL_LOG_MAX_LEN arguments of the largest size,
    each in jemalloc's next size class above it (2.5 MiB for a 2 MiB argument), and 1 MiB for
    the entries themselves (each also keeps its client's description: about 10 KiB measured)."""
    bulk = bulk_limit_bytes(value_limit_bytes)
    return ACL_LOG_MAX_LEN * (bulk + bulk // 4) + _MIB


def connections_limit_bytes() -> int:
    """The most memory MAX_CLIENTS open connections hold outside maxmemory (24 MiB)."""
    return MAX_CLIENTS * CONNECTION_BYTES


def min_memory_limit_mb(maxmemory_mb: int, value_limit_bytes: int = VALUE_LIMIT_BYTES) -> int:
    """The smallest container memory limit (MiB) that survives an AOF rewrite under writes.

    The rewrite forks Redis; while the child writes the dataset out, every page the parent
    changes is copied, so under a steady write load the two together may need the dataset twice
    (Redis's own guidance for persistence). Beside that: the process itself, and one reply that
    overshoots maxmemory while a command runs (at most the output-buffer limit), a full ACL
    LOG (acl_log_limit_bytes) and every connection open at once (connections_limit_bytes). A
    limit below this gets Redis OOM-killed by the kernel mid-rewrite, and restarted, under load.
    """
    return (
        2 * maxmemory_mb
        + _BASELINE_MB
        + output_limit_bytes(value_limit_bytes) // _MIB
        + acl_log_limit_bytes(value_limit_bytes) // _MIB
        + connections_limit_bytes() // _MIB
    )


def min_maxmemory_mb(value_limit_bytes: int = VALUE_LIMIT_BYTES) -> int:
    """The smallest maxmemory (MiB) that keeps one allocation within its share."""
    return bulk_limit_bytes(value_limit_bytes) * _BULK_SHARE_OF_MAXMEMORY // _MIB


def bulk_limit_bytes(value_limit_bytes: int) -> int:
    """proto-max-bulk-len for a value-size limit: the largest sealed value, rounded up to a
    whole MiB (Redis's unit in the file), at least Redis's own 1 MiB floor. It also bounds
    the string SETRANGE and APPEND may build, so no command allocates more."""
    needed = value_limit_bytes + ENVELOPE_OVERHEAD_BYTES
    return max(_REDIS_MIN_BULK_BYTES, -(-needed // _MIB) * _MIB)


class RedisConfError(ValueError):
    """Bad input to the redis.conf renderer."""


@dataclass(frozen=True)
class RedisTlsConf:
    """Everything that varies between a deployed server and a test server."""

    tls_port: int
    cert_file: str
    key_file: str
    ca_cert_file: str
    acl_file: str
    data_dir: str
    maxmemory_mb: int
    tls_protocols: tuple[str, ...] = ALLOWED_PROTOCOLS
    bind: str = "0.0.0.0"  # noqa: S104 - inside its container, on the internal network only
    appendonly: bool = True
    pidfile: str | None = None
    value_limit_bytes: int = VALUE_LIMIT_BYTES

    def __post_init__(self) -> None:
        if not self.tls_protocols or any(p not in ALLOWED_PROTOCOLS for p in self.tls_protocols):
            raise RedisConfError(
                f"tls_protocols {self.tls_protocols!r} must be a non-empty subset of "
                f"{ALLOWED_PROTOCOLS}; older TLS versions are deprecated (RFC 8996)"
            )
        if not 0 < self.tls_port < 65536:
            raise RedisConfError(f"tls_port must be 1-65535, got {self.tls_port}")
        if self.maxmemory_mb < 1:
            raise RedisConfError(f"maxmemory_mb must be positive, got {self.maxmemory_mb}")
        if self.value_limit_bytes < 1:
            raise RedisConfError(
                f"value_limit_bytes must be positive, got {self.value_limit_bytes}"
            )
        bulk = bulk_limit_bytes(self.value_limit_bytes)
        if self.maxmemory_mb < min_maxmemory_mb(self.value_limit_bytes):
            raise RedisConfError(
                f"maxmemory_mb {self.maxmemory_mb} leaves no room for values of "
                f"{self.value_limit_bytes} bytes: one command may allocate {bulk // _MIB} MiB "
                f"(proto-max-bulk-len), which must stay below 1/{_BULK_SHARE_OF_MAXMEMORY} of "
                f"maxmemory; raise maxmemory_mb to at least "
                f"{bulk * _BULK_SHARE_OF_MAXMEMORY // _MIB} or lower the value limit"
            )


def directives(conf: RedisTlsConf) -> list[tuple[str, str]]:
    """The (name, value) pairs of the configuration, in file order."""
    pairs = [
        # No plaintext listener at all; TLS with client certificates is the only way in.
        ("port", "0"),
        ("bind", conf.bind),
        ("protected-mode", "yes"),
        ("tls-port", str(conf.tls_port)),
        ("tls-cert-file", conf.cert_file),
        ("tls-key-file", conf.key_file),
        ("tls-ca-cert-file", conf.ca_cert_file),
        ("tls-auth-clients", "yes"),
        ("tls-protocols", '"' + " ".join(conf.tls_protocols) + '"'),
        ("tls-ciphers", TLS12_CIPHERS),
        ("tls-ciphersuites", TLS13_CIPHERSUITES),
        ("tls-prefer-server-ciphers", "yes"),
        ("tls-session-caching", "yes"),
        ("aclfile", conf.acl_file),
        ("acllog-max-len", str(ACL_LOG_MAX_LEN)),
        ("maxclients", str(MAX_CLIENTS)),
        # The escape hatches that let a client rewrite the server from inside stay shut.
        ("enable-protected-configs", "no"),
        ("enable-debug-command", "no"),
        ("enable-module-command", "no"),
        # No connection can be named. HELLO bypasses every ACL (Redis flags it `no_auth`) and
        # its SETNAME keeps a name of up to proto-max-bulk-len for the connection's life,
        # outside maxmemory-clients: 40 app connections took used_memory to 110 MiB against a
        # maxmemory of 64, and names in ACL LOG entries pushed the exporter's reply past the
        # output-buffer limit (tests/integration/test_redis_client_names.py). Nothing the
        # stack runs sends HELLO: its clients speak RESP2 and authenticate with AUTH.
        ("rename-command", 'HELLO ""'),
        ("maxmemory", f"{conf.maxmemory_mb}mb"),
        ("maxmemory-policy", "allkeys-lru"),
        # No single argument, and no string SETRANGE/APPEND would build, larger than the
        # largest sealed value (`SETRANGE k 268435455 x` would otherwise allocate 256 MiB at
        # once, past the container's memory limit).
        ("proto-max-bulk-len", f"{bulk_limit_bytes(conf.value_limit_bytes) // _MIB}mb"),
        # No reply larger than 16 of the largest values (the connection is closed instead),
        # and no more than two such replies held for all clients together: a client that
        # repeats one large key in one MGET, or stops reading, cannot grow Redis past its
        # container limit (min_memory_limit_mb counts one overshoot).
        ("client-output-buffer-limit", _output_limits(conf.value_limit_bytes)),
        (
            "maxmemory-clients",
            f"{output_limit_bytes(conf.value_limit_bytes) * _CLIENTS_REPLIES // _MIB}mb",
        ),
        # One database: SELECT, COPY ... DB and MOVE have nowhere else to go.
        ("databases", "1"),
        ("dir", conf.data_dir),
        ("appendonly", "yes" if conf.appendonly else "no"),
        ("appendfsync", "everysec"),
        ("save", '""'),
        ("daemonize", "no"),
        ("logfile", '""'),
    ]
    if conf.pidfile:
        pairs.append(("pidfile", conf.pidfile))
    return pairs


def _output_limits(value_limit_bytes: int) -> str:
    """`normal <hard> <soft> <seconds>`: closed at once past hard, or past soft for 10 s."""
    hard = output_limit_bytes(value_limit_bytes) // _MIB
    return f"normal {hard}mb {hard // 2}mb 10"


def render_redis_conf(conf: RedisTlsConf) -> str:
    """The configuration as redis.conf text."""
    return "".join(f"{name} {value}\n" for name, value in directives(conf))


__all__ = [
    "ACL_LOG_MAX_LEN",
    "ALLOWED_PROTOCOLS",
    "CONNECTION_BYTES",
    "ENVELOPE_OVERHEAD_BYTES",
    "MAX_CLIENTS",
    "TLS12_CIPHERS",
    "TLS13_CIPHERSUITES",
    "VALUE_LIMIT_BYTES",
    "RedisConfError",
    "RedisTlsConf",
    "acl_log_limit_bytes",
    "bulk_limit_bytes",
    "connections_limit_bytes",
    "directives",
    "min_maxmemory_mb",
    "min_memory_limit_mb",
    "output_limit_bytes",
    "render_redis_conf",
]
