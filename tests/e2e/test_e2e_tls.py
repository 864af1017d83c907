"""Security model 1 (transport), probed from inside the backend network (P-01..P-05).

A probe container on the stack's backend network, holding the app's client certificate,
attacks Redis the way a compromised neighbour would: plaintext, no client certificate, old
protocols, weak ciphers, a certificate from another CA. Positive controls show the probe
itself works (the refusals are the server's).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from infra import pki
from infra.profiles import LEAF_VALIDITY_LIMIT
from tests.e2e.hosts import container_host
from tests.e2e.probes import (
    ProbeContainer,
    app_auth,
    app_client_files,
    redis_tls,
    refused_client_certificate,
)
from tests.e2e.stacks import Stack

pytestmark = pytest.mark.security("transport")

PROTOCOL_ALERT = "TLSV1_ALERT_PROTOCOL_VERSION"
DOCKER_DNS = "0B00007F"  # 127.0.0.11 as /proc/net/tcp writes it


def tls_probe(probe: ProbeContainer, stack: Stack, **params: Any) -> dict[str, Any]:
    return probe.run("tls", **redis_tls(stack, **params))


@pytest.fixture(scope="module")
def good_session(probe: ProbeContainer, stack: Stack) -> dict[str, Any]:
    """The app's own way in: TLS 1.3, client certificate, server verified as `redis`."""
    return tls_probe(
        probe, stack, **app_client_files(), min_version="TLSv1_3", commands=[app_auth(), ["PING"]]
    )


def test_tls__positive_control_app_credentials_get_pong_over_tls13(
    good_session: dict[str, Any],
) -> None:
    assert good_session["error"] is None
    assert good_session["version"] == "TLSv1.3"
    assert good_session["replies"] == ["+OK", "+PONG"]


# The first byte of every RESP2/RESP3 reply.
RESP_TYPES = tuple("+-:$*_,#!=(%~>|")


def test_tls__plaintext_resp_gets_no_answer(probe: ProbeContainer, stack: Stack) -> None:
    """The TCP connection is accepted (so the refusal is the TLS layer's, not the network's);
    plaintext RESP gets no RESP reply, and the server closes the connection."""
    result = probe.run("plaintext", host="redis", port=stack.settings.redis_port)
    assert result["connected"] is True, f"no TCP connection to Redis at all: {result['error']}"
    reply = result["reply"]
    assert not reply.startswith(RESP_TYPES), f"Redis answered plaintext RESP: {reply[:40]!r}"
    assert "PONG" not in reply
    assert result["closed"] is True, f"Redis kept the plaintext connection open: {result['error']}"


def test_tls__the_tls_port_is_the_only_listener(stack: Stack) -> None:
    """Inside Redis' network namespace: LISTEN sockets (state 0A) in /proc/net/tcp{,6}.
    Docker's embedded DNS resolver listens on 127.0.0.11 in every user-network namespace."""
    host = container_host(stack.redis)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in host.file(table).content_string.splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and address != DOCKER_DNS:
                ports.add(int(port, 16))
    assert ports == {stack.settings.redis_port}, f"listening ports {sorted(ports)}"


def test_tls__no_client_certificate_is_refused(probe: ProbeContainer, stack: Stack) -> None:
    ca = app_client_files()["ca"]
    result = tls_probe(probe, stack, ca=ca, min_version="TLSv1_3", commands=[["PING"]])
    assert refused_client_certificate(result), f"not refused: {result['error']} {result['replies']}"


def test_tls__client_certificate_from_another_ca_is_refused(
    probe: ProbeContainer, stack: Stack
) -> None:
    rogue_ca = pki.create_ca("e2e rogue CA", validity_days=1)
    rogue = pki.issue_client_certificate(rogue_ca, "app", validity_days=1)
    result = tls_probe(
        probe,
        stack,
        ca=app_client_files()["ca"],
        cert_pem=rogue.cert_pem.decode(),
        key_pem=rogue.key_pem.decode(),
        min_version="TLSv1_3",
        commands=[["PING"]],
    )
    assert refused_client_certificate(result), f"not refused: {result['error']} {result['replies']}"


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls__old_protocols_are_refused_by_the_server(
    probe: ProbeContainer, stack: Stack, version: str
) -> None:
    # SECLEVEL=0 lets this client offer the old protocol, so the alert is the server's.
    result = tls_probe(
        probe, stack, **app_client_files(), min_version=version, max_version=version, seclevel0=True
    )
    assert result["handshake"] is False
    assert PROTOCOL_ALERT in str(result["error"])


def test_tls__tls12_only_where_the_environment_allows_it(
    probe: ProbeContainer, stack: Stack
) -> None:
    result = tls_probe(
        probe, stack, **app_client_files(), max_version="TLSv1_2", commands=[app_auth(), ["PING"]]
    )
    if "TLSv1.2" in stack.settings.tls_protocols:
        assert result["version"] == "TLSv1.2"
        assert result["replies"] == ["+OK", "+PONG"]
    else:  # production: TLS 1.3 only
        assert result["handshake"] is False
        assert PROTOCOL_ALERT in str(result["error"])


def test_tls__weak_tls12_ciphers_are_refused(probe: ProbeContainer, stack: Stack) -> None:
    """CBC/SHA-1 suites are not in the server's list (and prod refuses TLS 1.2 entirely)."""
    weak = "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA"
    result = tls_probe(probe, stack, **app_client_files(), max_version="TLSv1_2", ciphers=weak)
    assert result["handshake"] is False
    assert "HANDSHAKE_FAILURE" in str(result["error"]) or PROTOCOL_ALERT in str(result["error"])


# -- the server's certificate ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_cert(good_session: dict[str, Any]) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(good_session["peer_cert"]))


@pytest.fixture(scope="module")
def ca_pem(stack: Stack) -> bytes:
    return bytes(container_host(stack.redis).file("/etc/secure-redis/ca.crt").content)


def test_tls__server_certificate_chains_to_the_stacks_own_ca(
    server_cert: x509.Certificate, ca_pem: bytes
) -> None:
    assert pki.verify_chain(server_cert.public_bytes(Encoding.PEM), ca_pem)


def test_tls__server_certificate_names_and_usage(
    stack: Stack, server_cert: x509.Certificate
) -> None:
    sans = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"redis", stack.redis} <= set(sans.get_values_for_type(x509.DNSName))
    eku = server_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_tls__server_key_is_the_configured_strength(
    stack: Stack, server_cert: x509.Certificate
) -> None:
    key = server_cert.public_key()
    algorithm = stack.settings.key_algorithm.value
    if algorithm.startswith("ecdsa"):
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == {"ecdsa-p256": "secp256r1", "ecdsa-p384": "secp384r1"}[algorithm]
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        assert key.key_size == int(algorithm.split("-")[1])


@pytest.mark.parametrize("name", ["server.crt", "healthcheck.crt", "ca.crt"])
def test_tls__certificates_expire_well_after_the_renewal_window(stack: Stack, name: str) -> None:
    pem = bytes(container_host(stack.redis).file(f"/etc/secure-redis/{name}").content)
    expires = pki.certificate_expiry(pem)
    left = expires - dt.datetime.now(dt.UTC)
    assert left > dt.timedelta(days=stack.settings.cert_renew_before_days), f"{name}: {left}"
    assert not pki.needs_renewal(pem, renew_before_days=stack.settings.cert_renew_before_days)


@pytest.mark.parametrize("name", ["server.crt", "healthcheck.crt"])
def test_tls__leaf_certificates_expire_within_the_environments_limit(
    stack: Stack, name: str
) -> None:
    """TLS-09 on what is deployed: a stolen leaf key is useful at most the environment's limit
    (infra/profiles.py) from now, whatever the stack file says."""
    pem = bytes(container_host(stack.redis).file(f"/etc/secure-redis/{name}").content)
    left = pki.certificate_expiry(pem) - dt.datetime.now(dt.UTC)
    limit = LEAF_VALIDITY_LIMIT[stack.settings.environment]
    assert left <= dt.timedelta(days=limit), f"{name}: {left} left, limit {limit} days"
