"""infra.pki: each property a deployment relies on, proved on real certificates."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from infra import pki

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> pki.CertifiedKey:
    return pki.create_ca("test CA", validity_days=365, now=NOW)


@pytest.fixture(scope="module")
def server(ca: pki.CertifiedKey) -> pki.CertifiedKey:
    return pki.issue_server_certificate(
        ca,
        "redis",
        dns_names=["redis", "secure-redis-dev-redis"],
        ip_addresses=["127.0.0.1"],
        validity_days=90,
        now=NOW,
    )


@pytest.fixture(scope="module")
def client(ca: pki.CertifiedKey) -> pki.CertifiedKey:
    return pki.issue_client_certificate(ca, "app", validity_days=90, now=NOW)


def _eku(cert_pem: bytes) -> list[x509.ObjectIdentifier]:
    cert = pki.load_certificate(cert_pem)
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_ca__is_a_ca_limited_to_leaf_signing(ca: pki.CertifiedKey) -> None:
    constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    assert constraints.value.path_length == 0


@pytest.mark.parametrize("leaf", ["server", "client"])
def test_leaf__verifies_against_its_ca(
    request: pytest.FixtureRequest, ca: pki.CertifiedKey, leaf: str
) -> None:
    cert: pki.CertifiedKey = request.getfixturevalue(leaf)
    assert pki.verify_chain(cert.cert_pem, ca.cert_pem, now=NOW)


def test_leaf__does_not_verify_against_another_ca(server: pki.CertifiedKey) -> None:
    other = pki.create_ca("test CA", validity_days=365, now=NOW)  # same name, other key
    assert not pki.verify_chain(server.cert_pem, other.cert_pem, now=NOW)


def test_leaf__does_not_verify_as_its_own_ca(
    server: pki.CertifiedKey, client: pki.CertifiedKey
) -> None:
    assert not pki.verify_chain(client.cert_pem, server.cert_pem, now=NOW)


def test_leaf__does_not_verify_after_expiry(server: pki.CertifiedKey, ca: pki.CertifiedKey) -> None:
    assert not pki.verify_chain(server.cert_pem, ca.cert_pem, now=NOW + dt.timedelta(days=91))


def test_server_certificate__has_server_auth_only(server: pki.CertifiedKey) -> None:
    assert _eku(server.cert_pem) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_client_certificate__has_client_auth_only(client: pki.CertifiedKey) -> None:
    assert _eku(client.cert_pem) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_server_certificate__carries_the_sans_it_was_given(server: pki.CertifiedKey) -> None:
    san = server.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["redis", "secure-redis-dev-redis"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_server_certificate__requires_a_san(ca: pki.CertifiedKey) -> None:
    with pytest.raises(pki.PkiError, match="at least one DNS name or IP address"):
        pki.issue_server_certificate(ca, "redis", dns_names=[], validity_days=1, now=NOW)


def test_server_certificate__rejects_a_bad_ip_san(ca: pki.CertifiedKey) -> None:
    with pytest.raises(pki.PkiError, match=r"invalid IP address SAN '300\.1\.1\.1'"):
        pki.issue_server_certificate(
            ca, "r", dns_names=["r"], ip_addresses=["300.1.1.1"], validity_days=1, now=NOW
        )


@pytest.mark.parametrize("leaf", ["server", "client"])
def test_leaf__is_not_a_ca(request: pytest.FixtureRequest, leaf: str) -> None:
    cert: pki.CertifiedKey = request.getfixturevalue(leaf)
    constraints = cert.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is False


def test_expiry__is_as_asked(server: pki.CertifiedKey) -> None:
    assert pki.certificate_expiry(server.cert_pem) == NOW + dt.timedelta(days=90)


def test_leaf__never_outlives_its_ca(ca: pki.CertifiedKey) -> None:
    leaf = pki.issue_client_certificate(ca, "app", validity_days=3650, now=NOW)
    assert pki.certificate_expiry(leaf.cert_pem) == pki.certificate_expiry(ca.cert_pem)


@pytest.mark.parametrize(
    ("days_before_expiry", "renew"),
    [(31, False), (30, True), (1, True)],
    ids=["early", "edge", "late"],
)
def test_needs_renewal__inside_the_window(
    server: pki.CertifiedKey, days_before_expiry: int, renew: bool
) -> None:
    moment = pki.certificate_expiry(server.cert_pem) - dt.timedelta(days=days_before_expiry)
    assert pki.needs_renewal(server.cert_pem, renew_before_days=30, now=moment) is renew


@pytest.mark.parametrize(
    ("algorithm", "key_type", "size"),
    [
        (pki.KeyAlgorithm.ECDSA_P256, ec.EllipticCurvePublicKey, 256),
        (pki.KeyAlgorithm.ECDSA_P384, ec.EllipticCurvePublicKey, 384),
        (pki.KeyAlgorithm.RSA_3072, rsa.RSAPublicKey, 3072),
        (pki.KeyAlgorithm.RSA_4096, rsa.RSAPublicKey, 4096),
    ],
    ids=str,
)
def test_key_algorithm__is_the_one_chosen(
    ca: pki.CertifiedKey, algorithm: pki.KeyAlgorithm, key_type: type, size: int
) -> None:
    leaf = pki.issue_client_certificate(ca, "app", algorithm=algorithm, validity_days=1, now=NOW)
    public_key = leaf.certificate.public_key()
    assert isinstance(public_key, key_type)
    assert public_key.key_size == size  # type: ignore[union-attr]
    assert pki.key_matches_certificate(leaf.cert_pem, leaf.key_pem)
    assert pki.verify_chain(leaf.cert_pem, ca.cert_pem, now=NOW)


def test_rsa_ca__signs_ecdsa_leaves() -> None:
    rsa_ca = pki.create_ca("rsa CA", algorithm="rsa-3072", validity_days=10, now=NOW)
    leaf = pki.issue_server_certificate(rsa_ca, "r", dns_names=["r"], validity_days=5, now=NOW)
    assert pki.verify_chain(leaf.cert_pem, rsa_ca.cert_pem, now=NOW)


def test_key_matches_certificate__detects_a_foreign_key(
    server: pki.CertifiedKey, client: pki.CertifiedKey
) -> None:
    assert not pki.key_matches_certificate(server.cert_pem, client.key_pem)


def test_unknown_algorithm__lists_the_choices() -> None:
    with pytest.raises(
        pki.PkiError, match="unknown key algorithm 'dsa-1024'; use one of: ecdsa-p256"
    ):
        pki.generate_private_key("dsa-1024")


def test_bad_pem__does_not_echo_the_input() -> None:
    with pytest.raises(pki.PkiError) as excinfo:
        pki.certificate_expiry(b"-----BEGIN SECRET-----garbage")
    assert "garbage" not in str(excinfo.value)


@pytest.mark.parametrize("days", [0, -1])
def test_validity__must_be_positive(days: int) -> None:
    with pytest.raises(pki.PkiError, match="validity_days must be at least 1"):
        pki.create_ca("x", validity_days=days, now=NOW)


def test_now__must_be_timezone_aware() -> None:
    with pytest.raises(pki.PkiError, match="timezone-aware"):
        pki.create_ca("x", validity_days=1, now=dt.datetime(2026, 1, 1))
