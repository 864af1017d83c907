"""Envelopes of a future secure-cache, for the rollback tests (docs/day2.md, "Rolling back the
app").

A newer version is expected to keep the two things app/secure_cache/crypto.py's docstring
fixes for every version (the version at byte 0, the sealing key's id at bytes 1 to 4) and may
change anything else. The envelope made here is the most realistic such entry this code can
make: this version's layout (VERSION) under a later version byte, sealed and authenticated as
a writer of that version would (the header with its version byte is in the value's associated
data), so its only fault is a version this code does not read: no key of this code opens it.
"""

from __future__ import annotations

import dataclasses
import os

from secure_cache.crypto import HEADER_BYTES, NONCE_BYTES, VERSION, Keyring

FUTURE_VERSION = VERSION + 1


def future_envelope(
    keyring: Keyring, logical: bytes, value: bytes, *, version: int = FUTURE_VERSION
) -> tuple[bytes, bytes]:
    """(stored name, envelope) of `value` for `logical`, as a newer writer with `keyring`'s
    primary key would store it."""
    key = keyring.primary
    header = bytes((version,)) + key.key_id + key.header[HEADER_BYTES - 1 :]
    future = dataclasses.replace(key, header=header)
    name = key.name(logical)
    prefix, body = keyring._seal_with(future, os.urandom(NONCE_BYTES), name, logical, value)
    return name, prefix + body


def version_2_envelope(keyring: Keyring, logical: bytes, value: bytes) -> tuple[bytes, bytes]:
    """(stored name, envelope) of `value` for `logical` as version 2 wrote it (before
    2026-12-03; crypto.py): version 3's layout without the expiry field, which it lacked."""
    key = keyring.primary
    name = key.name(logical)
    nonce = os.urandom(NONCE_BYTES)
    sealed = key.sealed_key(logical)
    prefix = bytes((2,)) + key.key_id + b"\x00" + nonce + sealed
    aad = prefix + len(logical).to_bytes(2, "big") + logical + name
    return name, prefix + key.aead.encrypt(nonce, value, aad)


def with_version(envelope: bytes, version: int) -> bytes:
    """`envelope` with its version byte replaced (what a one-byte edit in Redis makes)."""
    return bytes((version,)) + envelope[1:]
