"""TLS material for a stack: a private CA, server and client certificates.

Pure `cryptography`: every function takes and returns PEM bytes or plain values and touches no
file, so the Pulumi program, the scripts and the tests share one implementation. Time is a
parameter (`now`) so expiry and renewal are testable without waiting.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from infra.key_algorithms import KeyAlgorithm

# Tolerate small clock differences between the machine that issues and the one that verifies.
_BACKDATE: Final = dt.timedelta(minutes=5)


class PkiError(ValueError):
    """Bad input to the TLS material library (unknown algorithm, bad PEM, bad validity)."""


@dataclass(frozen=True)
class CertifiedKey:
    """A certificate and its private key, both PEM. `key_pem` is secret material."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return load_certificate(self.cert_pem)


def generate_private_key(algorithm: KeyAlgorithm | str) -> bytes:
    """Return a new private key as unencrypted PKCS#8 PEM."""
    try:
        algo = KeyAlgorithm(algorithm)
    except ValueError as exc:
        choices = ", ".join(a.value for a in KeyAlgorithm)
        raise PkiError(f"unknown key algorithm {algorithm!r}; use one of: {choices}") from exc
    key: CertificateIssuerPrivateKeyTypes
    match algo:
        case KeyAlgorithm.ECDSA_P256:
            key = ec.generate_private_key(ec.SECP256R1())
        case KeyAlgorithm.ECDSA_P384:
            key = ec.generate_private_key(ec.SECP384R1())
        case KeyAlgorithm.RSA_3072:
            key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        case KeyAlgorithm.RSA_4096:
            key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def create_ca(
    common_name: str,
    *,
    algorithm: KeyAlgorithm | str = KeyAlgorithm.ECDSA_P256,
    validity_days: int,
    now: dt.datetime | None = None,
) -> CertifiedKey:
    """Create a self-signed CA that may sign leaf certificates only (path length 0)."""
    key_pem = generate_private_key(algorithm)
    key = _load_signing_key(key_pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    not_before, not_after = _validity(validity_days, now)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            # Certificates and CRLs only. With digitalSignature and no extended key usage,
            # OpenSSL let the CA's own certificate and key through as a TLS client (Redis
            # answered; attack pass of 2026-12-03, tests/integration/
            # test_tls_client_certificates.py): a connection naming no identity.
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _hash_for(key))
    )
    return CertifiedKey(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def issue_server_certificate(
    ca: CertifiedKey,
    common_name: str,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    algorithm: KeyAlgorithm | str = KeyAlgorithm.ECDSA_P256,
    validity_days: int,
    now: dt.datetime | None = None,
) -> CertifiedKey:
    """Issue a serverAuth leaf for the given DNS names and IP addresses (SANs)."""
    if not dns_names and not ip_addresses:
        raise PkiError("a server certificate needs at least one DNS name or IP address SAN")
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    for address in ip_addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError as exc:
            raise PkiError(f"invalid IP address SAN {address!r}") from exc
    return _issue_leaf(
        ca, common_name, sans, ExtendedKeyUsageOID.SERVER_AUTH, algorithm, validity_days, now
    )


def issue_client_certificate(
    ca: CertifiedKey,
    common_name: str,
    *,
    algorithm: KeyAlgorithm | str = KeyAlgorithm.ECDSA_P256,
    validity_days: int,
    now: dt.datetime | None = None,
) -> CertifiedKey:
    """Issue a clientAuth leaf identifying `common_name` (e.g. the app or the health check)."""
    return _issue_leaf(
        ca, common_name, [], ExtendedKeyUsageOID.CLIENT_AUTH, algorithm, validity_days, now
    )


def load_certificate(cert_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise PkiError("not a PEM-encoded X.509 certificate") from exc


def certificate_expiry(cert_pem: bytes) -> dt.datetime:
    """The certificate's notAfter, timezone-aware UTC."""
    return load_certificate(cert_pem).not_valid_after_utc


def needs_renewal(
    cert_pem: bytes, *, renew_before_days: int, now: dt.datetime | None = None
) -> bool:
    """True when the certificate expires within `renew_before_days` of `now`."""
    moment = now or dt.datetime.now(dt.UTC)
    return certificate_expiry(cert_pem) - moment <= dt.timedelta(days=renew_before_days)


def verify_chain(leaf_pem: bytes, ca_pem: bytes, *, now: dt.datetime | None = None) -> bool:
    """True when `leaf_pem` was signed by `ca_pem` and both are valid at `now`.

    One CA level is all this project issues, so the check is: issuer name matches, the CA is a
    CA, the signature verifies with the CA's key, and both validity windows contain `now`.
    """
    leaf, ca = load_certificate(leaf_pem), load_certificate(ca_pem)
    moment = now or dt.datetime.now(dt.UTC)
    if leaf.issuer != ca.subject:
        return False
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca:
        return False
    for cert in (leaf, ca):
        if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            return False
    try:
        leaf.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def issued_by_one_of(leaf_pem: bytes, bundle_pem: bytes, *, now: dt.datetime | None = None) -> bool:
    """True when one CA of the PEM bundle vouches for `leaf_pem` (verify_chain) at `now`."""
    encoding = serialization.Encoding.PEM
    return any(
        verify_chain(leaf_pem, ca.public_bytes(encoding), now=now)
        for ca in split_bundle(bundle_pem)
    )


def trust_bundle(cert_pems: Sequence[bytes]) -> bytes:
    """Several CA certificates as one PEM file (OpenSSL's CAfile format): a peer is trusted when
    any of them issued its certificate. Order is kept, duplicates are dropped."""
    seen: list[bytes] = []
    for pem in cert_pems:
        load_certificate(pem)  # refuse anything that is not a certificate
        block = pem.strip() + b"\n"
        if block not in seen:
            seen.append(block)
    if not seen:
        raise PkiError("a trust bundle needs at least one CA certificate")
    return b"".join(seen)


def split_bundle(bundle_pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order."""
    try:
        return x509.load_pem_x509_certificates(bundle_pem)
    except ValueError as exc:
        raise PkiError("not a PEM bundle of X.509 certificates") from exc


def key_matches_certificate(cert_pem: bytes, key_pem: bytes) -> bool:
    """True when `key_pem` is the private key for the certificate's public key."""
    public = load_certificate(cert_pem).public_key()
    private = _load_signing_key(key_pem)
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return public.public_bytes(enc, fmt) == private.public_key().public_bytes(enc, fmt)


def _issue_leaf(
    ca: CertifiedKey,
    common_name: str,
    sans: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    algorithm: KeyAlgorithm | str,
    validity_days: int,
    now: dt.datetime | None,
) -> CertifiedKey:
    ca_cert = load_certificate(ca.cert_pem)
    ca_key = _load_signing_key(ca.key_pem)
    key_pem = generate_private_key(algorithm)
    public_key = _load_signing_key(key_pem).public_key()
    not_before, not_after = _validity(validity_days, now)
    # A leaf never outlives its CA: clients would reject it on the day the CA expires anyway.
    not_after = min(not_after, ca_cert.not_valid_after_utc)
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=is_rsa,  # RSA key transport; meaningless for ECDSA
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_issuer_public_key(ca_cert)),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, _hash_for(ca_key))
    return CertifiedKey(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def _issuer_public_key(ca_cert: x509.Certificate) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    key: CertificatePublicKeyTypes = ca_cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise PkiError("the CA key must be ECDSA or RSA")
    return key


def _load_signing_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        # Never echo the PEM: it is secret material.
        raise PkiError("not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError("only ECDSA and RSA private keys are supported")
    return key


def _hash_for(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> hashes.SHA256 | hashes.SHA384:
    # Match the digest to the key strength (P-384 pairs with SHA-384).
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _validity(validity_days: int, now: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    if validity_days < 1:
        raise PkiError(f"validity_days must be at least 1, got {validity_days}")
    moment = now or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        raise PkiError("now must be timezone-aware")
    return moment - _BACKDATE, moment + dt.timedelta(days=validity_days)


__all__ = [
    "CertifiedKey",
    "KeyAlgorithm",
    "PkiError",
    "certificate_expiry",
    "create_ca",
    "generate_private_key",
    "issue_client_certificate",
    "issue_server_certificate",
    "issued_by_one_of",
    "key_matches_certificate",
    "load_certificate",
    "needs_renewal",
    "split_bundle",
    "trust_bundle",
    "verify_chain",
]
