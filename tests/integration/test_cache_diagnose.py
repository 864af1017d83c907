"""A certificate that fails strict X.509 verification is named as such, with OpenSSL's reason.

The client verifies with VERIFY_X509_STRICT (app/secure_cache/transport.py). A leaf without an
Authority Key Identifier chains to the right CA but fails that check; the operator must be told
it is the certificate, not the CA or the password. The server here is a real TLS listener on
loopback presenting such a leaf (the handshake fails before any Redis command).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from infra import pki
from secure_cache.diagnose import explain_unavailable
from secure_cache.settings import Settings


def _leaf_without_aki(ca: pki.CertifiedKey) -> tuple[bytes, bytes]:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # no AuthorityKeyIdentifier: what RFC 5280 requires and strict verification checks
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def strict_failure_server(tmp_path: Path) -> Iterator[tuple[int, Settings]]:
    ca = pki.create_ca("diagnose CA", validity_days=2)
    leaf, leaf_key = _leaf_without_aki(ca)
    client = pki.issue_client_certificate(ca, "app", validity_days=2)
    files = {
        "ca.crt": ca.cert_pem,
        "server.crt": leaf,
        "server.key": leaf_key,
        "app.crt": client.cert_pem,
        "app.key": client.key_pem,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        # The client aborts the handshake: that is the point.
        with conn, contextlib.suppress(ssl.SSLError, OSError):
            server_ctx.wrap_socket(conn, server_side=True).close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    settings = Settings.from_env(
        {
            "ENVIRONMENT": "development",
            "REDIS_URL": f"rediss://localhost:{port}",
            "REDIS_USERNAME": "app",
            "REDIS_PASSWORD": "p" * 24,
            "REDIS_TLS_CA_CERT": str(tmp_path / "ca.crt"),
            "REDIS_TLS_CERT_FILE": str(tmp_path / "app.crt"),
            "REDIS_TLS_KEY_FILE": str(tmp_path / "app.key"),
            "REDIS_ENCRYPTION_KEY": "A" * 43 + "=",
        }
    )
    try:
        yield port, settings
    finally:
        listener.close()
        thread.join(timeout=5)


def test_strict_x509_failure__is_named_with_openssls_reason(
    strict_failure_server: tuple[int, Settings],
) -> None:
    port, settings = strict_failure_server
    message = explain_unavailable(settings)
    assert message.startswith(f"certificate verification of redis at localhost:{port} failed")
    assert "Missing Authority Key Identifier" in message
    assert "strict X.509" in message
    assert "p" * 24 not in message
