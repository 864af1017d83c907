"""Why Redis is unavailable, in one line an operator can act on.

The client turns every failure into the memory fallback (by design: callers never see it), so
when a CLI command needs Redis and it is not there, this module retraces the connection step
by step - name, TCP, TLS handshake, AUTH - with the client's own TLS context, and names the first
step that fails: where (host:port), what (network / TLS version / certificate verification with
OpenSSL's reason / client certificate / authentication) and how to fix it. It never echoes the
password, and only OpenSSL's and Redis's own fixed reason strings otherwise.
"""

from __future__ import annotations

import socket
import ssl
from typing import Final

from secure_cache.errors import ConfigurationError, shown
from secure_cache.settings import Settings
from secure_cache.transport import build_ssl_context

TIMEOUT_S: Final = 3.0
# OpenSSL verify codes that mean "this chain does not lead to the configured CA".
_WRONG_CA_CODES: Final = frozenset({2, 18, 19, 20, 21})
_HOSTNAME_MISMATCH: Final = 62


def explain_unavailable(settings: Settings) -> str:
    where = f"{settings.host}:{settings.port}"
    try:
        context = build_ssl_context(settings)
    except ConfigurationError as exc:
        return f"redis at {where}: {'; '.join(exc.problems)}"
    raw = _connect(settings, where)
    if isinstance(raw, str):
        return raw
    try:
        with context.wrap_socket(raw, server_hostname=settings.host) as tls:
            return _authenticate(tls, settings, where)
    except ssl.SSLCertVerificationError as exc:
        return _verification(exc, where)
    except ssl.SSLError as exc:
        return _handshake(exc, settings, where)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"network: the connection to {where} failed during the handshake ({reason})"
    finally:
        raw.close()


def _connect(settings: Settings, where: str) -> socket.socket | str:
    """A TCP connection to Redis, or the line that says why there is none."""
    try:
        return socket.create_connection((settings.host, settings.port), timeout=TIMEOUT_S)
    except socket.gaierror:
        return (
            f"network: the host name in REDIS_URL ({settings.host}) does not resolve; check "
            "REDIS_URL and that this machine is on Redis's network"
        )
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return (
            f"network: cannot reach redis at {where} ({reason}); check REDIS_URL, that Redis "
            "runs, and that this machine is on its network"
        )


def _verification(exc: ssl.SSLCertVerificationError, where: str) -> str:
    reason = exc.verify_message or exc.reason or "unknown reason"
    if exc.verify_code in _WRONG_CA_CODES:
        return (
            f"certificate verification of redis at {where} failed (OpenSSL: {reason}): the "
            "server certificate was not issued by the CA in REDIS_TLS_CA_CERT; point it at the "
            "stack's CA (ca.crt)"
        )
    if exc.verify_code == _HOSTNAME_MISMATCH:
        return (
            f"certificate verification of redis at {where} failed (OpenSSL: {reason}): the "
            "certificate does not name the host in REDIS_URL; use a name it lists (e.g. redis)"
        )
    return (
        f"certificate verification of redis at {where} failed (OpenSSL: {reason}): the "
        "certificate does not pass strict X.509 (RFC 5280) checks; reissue it with the stack's "
        "CA (pulumi up --replace on the certificate)"
    )


def _handshake(exc: ssl.SSLError, settings: Settings, where: str) -> str:
    reason = exc.reason or type(exc).__name__
    if any(part in reason for part in ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOL")):
        minimum = settings.min_tls_version.name.replace("_", ".")
        return (
            f"TLS version: redis at {where} and this client share no TLS version (the client "
            f"requires {minimum} or newer for ENVIRONMENT={settings.environment}); raise the "
            "server's tls-protocols or check ENVIRONMENT"
        )
    if "CERTIFICATE" in reason or "UNKNOWN_CA" in reason:
        return (
            f"TLS: redis at {where} refused this client's certificate (OpenSSL: {reason}); use "
            "the client certificate issued by the stack's CA (REDIS_TLS_CERT_FILE)"
        )
    return f"TLS handshake with redis at {where} failed (OpenSSL: {reason})"


def _authenticate(tls: ssl.SSLSocket, settings: Settings, where: str) -> str:
    user, password = settings.username.encode(), settings.password.encode()
    parts = [b"AUTH", user, password]
    tls.sendall(b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
    reply = tls.recv(512).split(b"\r\n", 1)[0].decode("ascii", "replace")
    if reply.startswith("+OK"):
        return (
            f"redis at {where} accepts this client now; the failure was transient (timeout or "
            "restart); run the command again"
        )
    if reply.startswith("-WRONGPASS"):
        return (
            f"authentication: redis at {where} refused user '{shown(settings.username)}' with the "
            "configured password (wrong user or password; Redis does not say which); check "
            "REDIS_USERNAME and REDIS_PASSWORD_FILE against the stack's ACL"
        )
    code = reply[1:].split(" ", 1)[0] if reply.startswith("-") else "no reply"
    return f"redis at {where} refused AUTH ({code}); check REDIS_USERNAME and the ACL"


__all__ = ["explain_unavailable"]
