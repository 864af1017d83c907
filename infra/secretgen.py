"""Secret values: ACL passwords and AES-256 data keys.

Pure functions over `secrets` (the OS CSPRNG); nothing is written anywhere.
"""

from __future__ import annotations

import base64
import math
import secrets
import string
from typing import Final

# Letters and digits only: nothing an ACL file (`>pass`, `#hash`, spaces), a URL (userinfo
# delimiters, percent-encoding) or a shell (quotes, `$`, `~`, leading `-`) treats specially.
PASSWORD_ALPHABET: Final = string.ascii_letters + string.digits
DATA_KEY_BYTES: Final = 32
MIN_PASSWORD_LENGTH: Final = 16  # ElastiCache AUTH's floor; environments require more


class SecretGenError(ValueError):
    """Bad input to a secret generator."""


def generate_password(length: int) -> str:
    """A uniformly random password of `length` characters from PASSWORD_ALPHABET."""
    if length < MIN_PASSWORD_LENGTH:
        raise SecretGenError(
            f"password length must be at least {MIN_PASSWORD_LENGTH}, got {length}"
        )
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def password_entropy_bits(length: int) -> float:
    """Entropy of a generate_password(length) result, in bits."""
    return length * math.log2(len(PASSWORD_ALPHABET))


def generate_data_key() -> str:
    """A new 32-byte AES-256 key, standard base64 (44 characters)."""
    return base64.b64encode(secrets.token_bytes(DATA_KEY_BYTES)).decode("ascii")


__all__ = [
    "DATA_KEY_BYTES",
    "MIN_PASSWORD_LENGTH",
    "PASSWORD_ALPHABET",
    "SecretGenError",
    "generate_data_key",
    "generate_password",
    "password_entropy_bits",
]
