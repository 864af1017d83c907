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
        # The escape hatches that let a client rewrite the server from inside stay shut.
        ("enable-protected-configs", "no"),
        ("enable-debug-command", "no"),
        ("enable-module-command", "no"),
        ("maxmemory", f"{conf.maxmemory_mb}mb"),
        ("maxmemory-policy", "allkeys-lru"),
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


def render_redis_conf(conf: RedisTlsConf) -> str:
    """The configuration as redis.conf text."""
    return "".join(f"{name} {value}\n" for name, value in directives(conf))


__all__ = [
    "ALLOWED_PROTOCOLS",
    "TLS12_CIPHERS",
    "TLS13_CIPHERSUITES",
    "RedisConfError",
    "RedisTlsConf",
    "directives",
    "render_redis_conf",
]
