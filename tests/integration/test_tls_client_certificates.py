"""Client certificates an attacker might present to the stack's TLS-only Redis, and the
stack's own certificates presented where they do not belong (attack pass of 2026-12-03 on
s92). Each is refused by the TLS handshake, before any password is asked for; a fresh
certificate of the same CA, the positive control, is let through.

On Redis 7.0 with OpenSSL 3 this is OpenSSL's chain verification with the purpose a TLS
server sets for its clients (sslclient: the leaf's extended key usage must allow
clientAuth, its key usage digitalSignature), which infra/pki.py's certificates are made for:
the CA signs and does nothing else, servers are serverAuth only, clients clientAuth only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from infra import pki
from tests.support.tls_redis import TlsRedisServer

COMMON_NAME = NameOID.COMMON_NAME
REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError)


def _write(root: Path, name: str, cert_pem: bytes, key_pem: bytes) -> tuple[str, str]:
    cert, key = root / f"{name}.crt", root / f"{name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    key.chmod(0o600)
    return str(cert), str(key)


def _ping_with(server: TlsRedisServer, cert: str, key: str) -> bytes:
    """PING over a handshake presenting `cert`: Redis answers -NOAUTH once it accepted it."""
    ctx = ssl.create_default_context(cafile=str(server.material.ca_file))
    ctx.load_cert_chain(cert, key)
    with (
        socket.create_connection((server.host, server.port), timeout=3) as raw,
        ctx.wrap_socket(raw, server_hostname=server.host) as tls,
    ):
        # TLS 1.3 reports a refused client certificate on the first read, not the handshake.
        tls.sendall(b"PING\r\n")
        return tls.recv(64)


def _past() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=30)


def _future() -> dt.datetime:
    # Within the test CA's two days: a leaf never outlives its CA (infra/pki.py).
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


def test_a_fresh_client_certificate_of_the_ca__is_let_through(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    """The positive control for the refusals below: the same CA, a valid clientAuth leaf."""
    pair = pki.issue_client_certificate(tls_redis.material.ca, "app", validity_days=1)
    assert _ping_with(tls_redis, *_write(tmp_path, "ok", pair.cert_pem, pair.key_pem)).startswith(
        b"-NOAUTH"
    )


@pytest.mark.parametrize(
    "case",
    ["expired", "not_yet_valid", "server_certificate", "the_ca_itself", "self_signed_copy_of_ca"],
)
def test_a_client_certificate_out_of_place__is_refused(
    tls_redis: TlsRedisServer, tmp_path: Path, case: str
) -> None:
    ca = tls_redis.material.ca
    if case == "expired":
        pair = pki.issue_client_certificate(ca, "app", validity_days=1, now=_past())
    elif case == "not_yet_valid":
        pair = pki.issue_client_certificate(ca, "app", validity_days=1, now=_future())
    elif case == "server_certificate":  # Redis's own key: serverAuth only
        pair = pki.issue_server_certificate(ca, "redis", dns_names=("redis",), validity_days=1)
    elif case == "the_ca_itself":  # whoever holds the CA's key: keyCertSign only
        pair = ca
    else:  # a CA of the same name and no relation: another key
        name = pki.load_certificate(ca.cert_pem).subject.get_attributes_for_oid(COMMON_NAME)
        pair = pki.create_ca(str(name[0].value), validity_days=1)
    cert, key = _write(tmp_path, case, pair.cert_pem, pair.key_pem)
    with pytest.raises(REFUSED):
        _ping_with(tls_redis, cert, key)


def test_a_client_certificate_as_redis_server_certificate__is_refused_by_clients(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    """A container holding its client key (the app's, the exporter's) cannot stand in for
    Redis even where it answers for Redis's name: the clients' context verifies the purpose
    serverAuth, which a clientAuth leaf lacks, besides the name."""
    impostor = pki.issue_client_certificate(tls_redis.material.ca, "redis", validity_days=1)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*_write(tmp_path, "impostor", impostor.cert_pem, impostor.key_pem))
    client_ctx = ssl.create_default_context(cafile=str(tls_redis.material.ca_file))
    client_ctx.check_hostname = False  # not the name under test: the purpose is
    with pytest.raises(ssl.SSLCertVerificationError, match="unsuitable certificate purpose"):
        _handshake_in_memory(server_ctx, client_ctx)


def _handshake_in_memory(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    """Both ends of one handshake through memory buffers, in a bounded number of rounds."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(to_client, to_server)
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_ctx.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):
        for end in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                end.do_handshake()
        server_in.write(to_server.read())
        to_client.write(server_out.read())
    raise AssertionError("the handshake neither finished nor failed in 10 rounds")
