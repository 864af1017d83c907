"""Certificates and keys found in property text, parsed once (cryptography)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

_CERT: Final = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_STRONG_CURVES: Final = frozenset({"secp256r1", "secp384r1", "secp521r1"})
MIN_RSA_BITS: Final = 2048

PublicKeyBytes = bytes


@dataclass(frozen=True)
class Certificate:
    is_ca: bool
    server_auth: bool
    client_auth: bool
    dns_names: frozenset[str]
    ip_addresses: frozenset[str]
    public_key: PublicKeyBytes
    weak_key: bool


def certificate_blocks(text: str) -> list[str]:
    return [m.group(0) for m in _CERT.finditer(text)]


@functools.lru_cache(maxsize=256)
def parse_certificate(pem: str) -> Certificate | None:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = set()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = frozenset(n.lower() for n in san.get_values_for_type(x509.DNSName))
        ips = frozenset(str(a) for a in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = frozenset(), frozenset()
    key = cert.public_key()
    return Certificate(
        is_ca=is_ca,
        server_auth=ExtendedKeyUsageOID.SERVER_AUTH in usages,
        client_auth=ExtendedKeyUsageOID.CLIENT_AUTH in usages,
        dns_names=dns,
        ip_addresses=ips,
        public_key=_public_bytes(key),
        weak_key=_weak(key),
    )


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _weak(key: object) -> bool:
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        return key.key_size < MIN_RSA_BITS
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.name not in _STRONG_CURVES
    return not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)


@functools.lru_cache(maxsize=256)
def private_key_public_bytes(pem: str) -> bytes | None:
    """The public half of a PEM private key, to match it against certificates."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        return None
    return _public_bytes(key.public_key())
