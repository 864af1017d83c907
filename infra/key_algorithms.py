"""The key types a stack's CA and leaf keys may have (the `keyAlgorithm` setting).

Apart from infra/pki.py, which generates the keys: infra/settings.py checks the setting with
this alone, and the operator commands that read settings need no `cryptography`.
"""

from __future__ import annotations

from enum import StrEnum


class KeyAlgorithm(StrEnum):
    """Key types accepted for CA and leaf keys. All are usable with TLS 1.3 (RFC 8446 4.2.3)."""

    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"


__all__ = ["KeyAlgorithm"]
