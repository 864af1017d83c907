"""Value envelopes and opaque key names: AES-256-GCM under a keyring. No I/O, no logging.

Each configured data key (32 random bytes) is expanded with HKDF-SHA256 into four
independent values, so no key is used for two purposes:

    value key     AES-256-GCM key that seals cached values
    name key      BLAKE2b key for the stored key names (a keyed hash, RFC 7693 section 2.5)
    key id        4 public bytes naming the data key in envelopes and stored names
    key seal key  64-byte AES-SIV key that seals the logical key inside an envelope

Stored name of logical key K under data key D (ASCII, under the ACL's prefix):

    <prefix><key id hex>:<BLAKE2b-128(K, key=name key D) hex>

The name reveals neither K nor D; the key id part lets a rotation pass SCAN exactly the
entries of one key. Envelope (version 3, what every write makes), all integers big-endian:

    offset 0     1 byte   version (3)
           1     4 bytes  key id of the data key that sealed it
           5     1 byte   flags (bit 0: value zlib-compressed before sealing)
           6    12 bytes  random nonce
          18     8 bytes  expiry: Unix time in milliseconds (u64) after which the entry is
                          gone; 0 for an entry written without a TTL ("Expiry" below)
          26     2 bytes  L, the length of the sealed logical key
          28     L bytes  AES-SIV(K || 0x80 || zeros to a multiple of 32 bytes) under the
                          key seal key (RFC 5297; deterministic)
        28+L     ...      AES-256-GCM(value) with the 16-byte tag appended

The associated data of the value is everything before it (bytes 0 to 28+L), then len(K)
(u16), K and the stored name, so a value copied under another name (another key, another
prefix), read for another logical key, or with any edited byte before it (its expiry
included) fails authentication. A read already knows K and the name: it opens the value with
one AES-GCM call and never touches the sealed key. The sealed key is what lets rotation move
an entry to the primary key's name (the name itself is one-way): rotation opens it first,
then the value, whose associated data checks it. It is deterministic, so equal keys give
equal sealed keys; the stored name already shows that much (it is a deterministic hash of
K), and it lets a writer keep a hot key's sealed form with its name (Keyring.sealed_key)
instead of sealing it on every write. Padded, it shows K's length only to within 32 bytes.
Nothing of K is in the value's plaintext: the value is sealed from the caller's bytes and
opened into the bytes returned, with no copy into or out of a larger plaintext
(docs/benchmark.md, "Large values").

Expiry (version 3, 2026-12-03). Redis never returns a key past its TTL, but a compromised or
replaced Redis returns what it likes: it could keep an envelope and answer with it long after
the entry expired (docs/attack-surface.md). So the entry's absolute expiry is sealed with it,
and an authentic envelope whose expiry has passed is never returned: a read of it is a miss.
A writer derives the field from the same TTL as Redis's EX or PX, in one place
(core.ttl_args), from the keyring's wall clock (Keyring.clock, time.time; injected by
tests). The unit is Redis's own (PX, PTTL: milliseconds); the clock is the wall clock,
because the field is read by other processes, on other hosts and after restarts, where no
monotonic clock means anything. An entry without a TTL has 0 and is read as before, without
a clock read: the one extra step of a read is unpacking the 8 bytes, and of a read or write
with a TTL one clock read.

How late counts as a replay. Redis removes a key lazily when it is accessed past its expiry,
to the millisecond, by the clock of its own host. The writer computes the field before Redis
receives the SET: a round trip earlier, and when the first attempt timed out unseen and its
retry got through, up to the connect timeout plus twice the socket timeout earlier (6 s with
transport.py's defaults). A reader compares the field with its own clock, which on another
host may be apart from the writer's. An envelope past its expiry by at most
EXPIRY_ALLOWANCE_MS (10 s) is therefore a plain miss: Redis could honestly have returned it
(a SET that reached it late, clocks a little apart). Later than that
it is an integrity failure, counted and logged as any forged envelope: Redis does not return
such an entry, so either it replays or the clocks are further apart than the allowance, and
an operator should see both. The allowance only decides what is counted: the value is not
returned past its expiry, by the reader's clock. What this leaves (docs/attack-surface.md):
a reader whose clock is behind the writer's accepts a replay for as long as the two are
apart; an older envelope can still be replayed until its own expiry; an entry written
without a TTL, or by version 1 or 2, carries no expiry at all. The stack's app, its rotation
job and Redis share one host clock; a library user whose processes run on several hosts
should keep their clocks in step (NTP) to well within the allowance.

Version 2 (written from 2026-12-02 to 2026-12-03) is version 3 without the expiry: the
sealed key's length at byte 18, the sealed key from byte 20. Version 1 (written before
2026-12-02) sealed len(K) u16 || K || value in one AES-GCM call, with the 6-byte header plus
the stored name as associated data, right after the nonce. Reads still open both, so entries
written before an upgrade stay readable until they expire or are overwritten; a rotation
pass rewrites those of a previous key in version 3, with the expiry of the remaining TTL
Redis reports for them (core.CacheCore.plan_batch), and those of the current key stay as
they are until the next data-key rotation. A version-3 entry keeps its expiry through a
rotation, byte for byte (Keyring.reseal), and Redis its remaining TTL.

Every failure to open - truncated, flipped, swapped, foreign, unknown key id, not an envelope
at all - raises the same IntegrityError: callers get no oracle (cf. Fernet's InvalidToken).
"Not an envelope" includes a reply that is not a byte string: a compromised or replaced Redis
answered GET with an integer, a RESP3 double or a boolean, and len() raised TypeError out of
the cache's get (tests/integration/test_hostile_redis.py).

Every version, this one and any later one, keeps two things where they are: the version at
byte 0 and the key id of the sealing data key at bytes 1 to 4. That is what lets code that is
older than an entry tell it apart from a damaged one after a rollback (Keyring.newer_version):
an envelope whose version is above VERSION, whose key id is a data key of the keyring and
the one of the name it is stored under, is an entry of a newer secure-cache, which the
client counts apart (event newer_envelope, not integrity_failure) and a rotation pass leaves
in place instead of deleting it. Version 1 code has no such test: it deletes version 2.
Version 2 code from 2026-12-03 on has it, and counts version 3 so
(tests/unit/test_cache_rollback.py runs that code, from git, against a version-3 entry).

Nonces: 96 random bits from the OS for every value (os.urandom(12)), the construction
cryptography's AEAD documentation recommends for AES-GCM. Two values collide on a nonce
with probability about q**2 / 2**97 for q values under one key, which NIST SP 800-38D
keeps below 2**-32 for q up to 2**32 values per key; rotate the data key long before that.
Random nonces need no state, so forks and threads cannot repeat one. A batch (seal_many)
draws all its nonces in one os.urandom call; set_many seals its large values one by one in
place (seal_framed, core._in_place), each with a nonce of its own. Tests that need a fixed
envelope pass the nonce explicitly (Keyring._seal_with).
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secure_cache.errors import IntegrityError

_urandom = os.urandom
_u64_at = struct.Struct(">Q").unpack_from  # an envelope's expiry field, read in place

Frame = Callable[[int], tuple[bytes, bytes]]
"""Given an envelope's length, the bytes a writer puts before and after it (resp.set_frame)."""
WallClock = Callable[[], float]
"""Unix time in seconds (time.time): what envelope expiries are written and checked with."""

DATA_KEY_BYTES: Final = 32
VERSION: Final = 3
VERSION_2: Final = 2
VERSION_1: Final = 1
KEY_ID_BYTES: Final = 4
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
HEADER_BYTES: Final = 1 + KEY_ID_BYTES + 1
PREFIX_BYTES: Final = HEADER_BYTES + NONCE_BYTES  # every version's nonce ends here
EXPIRY_BYTES: Final = 8
STAMPED_BYTES: Final = PREFIX_BYTES + EXPIRY_BYTES  # version 3: the expiry ends here
NO_EXPIRY_STAMP: Final = bytes(EXPIRY_BYTES)
# How late past its expiry an envelope may be read and be a plain miss rather than an
# integrity failure (module docstring, "Expiry"). Never a read that returns the value.
EXPIRY_ALLOWANCE_MS: Final = 10_000
LEN_BYTES: Final = 2
SIV_BYTES: Final = 16  # AES-SIV's synthetic IV, before the sealed key
KEY_PAD_BYTES: Final = 32  # a sealed logical key is padded to a multiple of this
MIN_ENVELOPE_BYTES: Final = STAMPED_BYTES + LEN_BYTES + SIV_BYTES + KEY_PAD_BYTES + TAG_BYTES
MIN_ENVELOPE_V2_BYTES: Final = PREFIX_BYTES + LEN_BYTES + SIV_BYTES + KEY_PAD_BYTES + TAG_BYTES
MIN_ENVELOPE_V1_BYTES: Final = PREFIX_BYTES + LEN_BYTES + TAG_BYTES
MAX_LOGICAL_KEY_BYTES: Final = 4096
# The most sealing adds to a value, in any version written: the version 3 header, nonce and
# expiry, the key length, the sealed logical key (the longest, padded) and the GCM tag
# (compression is kept only when it shrinks the value). The stack's proto-max-bulk-len
# (infra/redis_conf.py) and the client's reply limit (transport.reply_limit_bytes) add it.
MAX_OVERHEAD_BYTES: Final = (
    STAMPED_BYTES
    + LEN_BYTES
    + SIV_BYTES
    + (MAX_LOGICAL_KEY_BYTES // KEY_PAD_BYTES + 1) * KEY_PAD_BYTES
    + TAG_BYTES
)
NAME_DIGEST_BYTES: Final = 16
VIEW_BYTES: Final = 16 * 1024  # envelopes from this size are opened through a view
NAME_CACHE_SIZE: Final = 4096
FLAG_ZLIB: Final = 0x01
CIPHER_NAME: Final = "AES-256-GCM"
NAME_HASH: Final = "BLAKE2b-128 keyed (HKDF-SHA256 subkey of the data key)"

_INFO_VALUE: Final = b"secure-cache v1 value key"
_INFO_NAME: Final = b"secure-cache v1 name key"
_INFO_KEY_ID: Final = b"secure-cache v1 key id"
_INFO_KEY_SEAL: Final = b"secure-cache v2 key seal key"


def expiry_stamp(expires_ms: int) -> bytes:
    """An envelope's expiry field for an absolute expiry in Unix milliseconds (0: none)."""
    if not 0 <= expires_ms < 1 << 64:
        raise ValueError(f"an expiry is Unix milliseconds from 0 to 2**64 - 1, not {expires_ms}")
    return expires_ms.to_bytes(EXPIRY_BYTES, "big")


def body_bytes(value_bytes: int) -> int:
    """The length of seal_parts()'s body (the ciphertext with its tag) for a value of this
    length, stored uncompressed."""
    return value_bytes + TAG_BYTES


def _hkdf(raw: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(raw)


@dataclass(frozen=True, slots=True)
class DataKey:
    """One data key, expanded into its value key, name key and public key id."""

    key_id: bytes
    aead: AESGCM = field(repr=False)
    name_key: bytes = field(repr=False)
    key_seal: AESSIV = field(repr=False)
    header: bytes = field(repr=False)  # version || key id || flags=0, precomputed
    name_prefix: bytes = field(repr=False)  # "<prefix><key id hex>:" as bytes

    @classmethod
    def from_bytes(cls, raw: bytes, prefix: str) -> DataKey:
        if len(raw) != DATA_KEY_BYTES:
            raise ValueError(f"a data key must be {DATA_KEY_BYTES} bytes, got {len(raw)}")
        key_id = _hkdf(raw, _INFO_KEY_ID, KEY_ID_BYTES)
        return cls(
            key_id=key_id,
            aead=AESGCM(_hkdf(raw, _INFO_VALUE, 32)),
            name_key=_hkdf(raw, _INFO_NAME, 32),
            key_seal=AESSIV(_hkdf(raw, _INFO_KEY_SEAL, 64)),
            header=bytes((VERSION,)) + key_id + b"\x00",
            name_prefix=f"{prefix}{key_id.hex()}:".encode("ascii"),
        )

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    def name(self, logical: bytes) -> bytes:
        """The stored name of `logical` under this key."""
        digest = hashlib.blake2b(logical, key=self.name_key, digest_size=NAME_DIGEST_BYTES)
        return self.name_prefix + digest.hexdigest().encode("ascii")

    def sealed_key(self, logical: bytes) -> bytes:
        """`logical` sealed for an envelope under this key: the sealed length (u16) and
        AES-SIV(K padded).

        Padded (0x80, then zeros, to a multiple of KEY_PAD_BYTES, ISO/IEC 7816-4) so that
        the envelope shows the key's length only to within KEY_PAD_BYTES, as the stored name
        shows none of it. No associated data: the value's associated data binds this record
        to the header, the logical key and the stored name."""
        padded = logical + b"\x80" + bytes(-(len(logical) + 1) % KEY_PAD_BYTES)
        sealed = self.key_seal.encrypt(padded, None)
        return len(sealed).to_bytes(LEN_BYTES, "big") + sealed

    def unseal_key(self, sealed: bytes) -> bytes:
        """The logical key of sealed_key()'s AES-SIV part; IntegrityError on any fault."""
        if len(sealed) < SIV_BYTES + KEY_PAD_BYTES:
            raise IntegrityError
        try:
            padded = self.key_seal.decrypt(sealed, None).rstrip(b"\x00")
        except InvalidTag:
            raise IntegrityError from None
        # Authenticated, so only a writer's bug or a holder of the data key gets past these;
        # a key longer than any writer makes would stop a rotation pass at reseal's seal.
        if not padded.endswith(b"\x80") or len(padded) - 1 > MAX_LOGICAL_KEY_BYTES:
            raise IntegrityError
        return padded[:-1]


@dataclass(frozen=True)
class Opened:
    """A successfully opened envelope."""

    logical: bytes
    value: bytes
    key_id: bytes
    # Its expiry field (version 3; NO_EXPIRY_STAMP: none), None for versions 1 and 2, which
    # carry no time: a rotation pass carries it over as it is (Keyring.reseal).
    expires: bytes | None = None


class Keyring:
    """The primary key seals; primary and previous keys open (like MultiFernet).

    Args:
        primary: the current 32-byte data key; every new value is sealed with it.
        previous: older data keys that stay readable until a rotation pass has moved their
            entries to the primary key.
        prefix: the namespace every stored name starts with (the ACL's key pattern).
        compress_min_bytes: zlib-compress values at least this long before sealing (None:
            never). Compression makes the stored length depend on the content; leave it off
            when attacker-chosen and secret data share one value (CRIME-style leaks).
        clock: the wall clock (Unix seconds) envelope expiries are checked against, and
            written with (core.ttl_args reads this one): tests inject one.
    """

    def __init__(
        self,
        primary: bytes,
        previous: Sequence[bytes] = (),
        *,
        prefix: str = "cache:",
        compress_min_bytes: int | None = None,
        clock: WallClock = time.time,
    ) -> None:
        raws = [primary, *previous]
        if len(set(raws)) != len(raws):
            raise ValueError("the keyring holds the same data key twice")
        keys = tuple(DataKey.from_bytes(raw, prefix) for raw in raws)
        self._by_id = {k.key_id: k for k in keys}
        if len(self._by_id) != len(keys):  # 2**-32 per pair; refuse rather than mis-open
            raise ValueError("two data keys share a key id; generate a new primary key")
        self.primary: DataKey = keys[0]
        self.previous: tuple[DataKey, ...] = keys[1:]
        self.keys: tuple[DataKey, ...] = keys
        self.prefix = prefix
        self.clock = clock
        # Hot keys repeat: memoise their names (a dict hit instead of a BLAKE2b call) and
        # their sealed form (instead of an AES-SIV call, several microseconds). Only logical
        # keys, public names and sealed keys are kept, never values or key material.
        self.primary_name: Callable[[bytes], bytes] = functools.lru_cache(NAME_CACHE_SIZE)(
            self.primary.name
        )
        self.sealed_key: Callable[[bytes], bytes] = functools.lru_cache(NAME_CACHE_SIZE)(
            self.primary.sealed_key
        )
        self.names: Callable[[bytes], tuple[bytes, ...]] = functools.lru_cache(NAME_CACHE_SIZE)(
            self._names
        )
        if compress_min_bytes is not None and compress_min_bytes < 1:
            raise ValueError("compress_min_bytes must be positive or None")
        self.compress_min_bytes = compress_min_bytes

    def _names(self, logical: bytes) -> tuple[bytes, ...]:
        """The names `logical` may be stored under, the primary key's first."""
        return tuple(k.name(logical) for k in self.keys)

    def seal(
        self, name: bytes, logical: bytes, value: bytes, stamp: bytes = NO_EXPIRY_STAMP
    ) -> bytes:
        """The envelope of `value` for `logical`, stored under `name`, with the primary key;
        `stamp` is its expiry field (expiry_stamp; core.ttl_args makes it with the TTL)."""
        prefix, body = self.seal_parts(name, logical, value, stamp)
        return prefix + body

    def seal_parts(
        self, name: bytes, logical: bytes, value: bytes, stamp: bytes = NO_EXPIRY_STAMP
    ) -> tuple[bytes, bytes]:
        """seal() in two parts, everything before the value's ciphertext and the ciphertext
        with its tag, whose concatenation is the envelope. The cache writes them as they are
        (resp.pack_set joins them with the framing): the value is sealed from the caller's
        bytes, and its ciphertext is copied once, into the write."""
        if self.compress_min_bytes is not None or len(logical) > MAX_LOGICAL_KEY_BYTES:
            return self._seal_with(self.primary, _urandom(NONCE_BYTES), name, logical, value, stamp)
        # The common case, inlined: this runs once per write.
        key = self.primary
        nonce = _urandom(NONCE_BYTES)
        prefix = key.header + nonce + stamp + self.sealed_key(logical)
        aad = prefix + len(logical).to_bytes(LEN_BYTES, "big") + logical + name  # _binding
        return prefix, key.aead.encrypt(nonce, value, aad)

    def seal_many(
        self, entries: Sequence[tuple[bytes, bytes, bytes]], stamp: bytes = NO_EXPIRY_STAMP
    ) -> Iterator[tuple[bytes, bytes]]:
        """seal_parts() for several (name, logical, value) entries with the primary key, each
        sealed when the caller takes it: a batch seals its next values while the first
        ones are being written (core.set_many). One expiry for all (one TTL per batch).

        Their nonces come from one os.urandom call, made at once and sliced 12 bytes per
        entry: on this machine a getrandom system call costs more than sealing a 1 KiB value,
        and a batch pays it once. Nothing is kept between calls, so forks cannot repeat a
        nonce.
        """
        pool = _urandom(NONCE_BYTES * len(entries))
        key = self.primary
        return (
            self._seal_with(key, pool[i * NONCE_BYTES : (i + 1) * NONCE_BYTES], *entry, stamp)
            for i, entry in enumerate(entries)
        )

    def seal_framed(
        self,
        name: bytes,
        logical: bytes,
        value: bytes,
        frame: Frame,
        stamp: bytes = NO_EXPIRY_STAMP,
    ) -> bytearray:
        """The envelope of seal(), sealed in place between the two parts `frame` returns for
        its length, in one buffer: what a writer sends in one write.

        For large values (core.py decides which): three pieces (framing, ciphertext,
        framing) cost three writes and three TLS records, and the framing's short ones
        woke Redis twice more per SET; a sequential 100 KiB SET ran at 0.75 of the TLS
        transport written so and at 0.84 joined into one buffer (2026-11-30, this machine).
        Sealing in place (encrypt_into) gets the one buffer without that join's copy: 28.9 us
        against 27.6 us for the separate pieces at 100 KiB, 30.4 us joined.
        """
        return self._seal_framed_with(
            self.primary, _urandom(NONCE_BYTES), name, logical, value, frame, stamp
        )

    def _compressed(self, key: DataKey, logical: bytes, value: bytes) -> tuple[bytes, bytes]:
        """(header, value to seal): flags set and the value packed when compression pays."""
        if len(logical) > MAX_LOGICAL_KEY_BYTES:
            raise ValueError(f"a cache key may be at most {MAX_LOGICAL_KEY_BYTES} bytes")
        threshold = self.compress_min_bytes
        if threshold is not None and len(value) >= threshold:
            packed = zlib.compress(value, 1)
            if len(packed) < len(value):
                return key.header[:-1] + bytes((FLAG_ZLIB,)), packed
        return key.header, value

    def _prefix(
        self, key: DataKey, header: bytes, nonce: bytes, stamp: bytes, logical: bytes
    ) -> bytes:
        """Everything an envelope holds before the value's ciphertext."""
        if len(stamp) != EXPIRY_BYTES:
            raise ValueError(f"an expiry stamp is {EXPIRY_BYTES} bytes (expiry_stamp)")
        sealed = self.sealed_key(logical) if key is self.primary else key.sealed_key(logical)
        return header + nonce + stamp + sealed

    def _seal_with(
        self,
        key: DataKey,
        nonce: bytes,
        name: bytes,
        logical: bytes,
        value: bytes,
        stamp: bytes = NO_EXPIRY_STAMP,
    ) -> tuple[bytes, bytes]:
        """Seal with an explicit key and nonce (deterministic tests; never reuse a nonce).

        Not encrypt_into() into a buffer that already holds the RESP framing: measured on
        this machine (2026-11-30), its fixed cost and the zeroed buffer make it slower than
        encrypt() and a join up to about 64 KiB (1 KiB: 5 to 7 us against 2 to 3 us), and
        returning the ciphertext as its own part avoids the copy encrypt_into() would save,
        at every size. (Large values are still sealed in place, seal_framed, to be written
        in one piece.)
        """
        header, value = self._compressed(key, logical, value)
        prefix = self._prefix(key, header, nonce, stamp, logical)
        return prefix, key.aead.encrypt(nonce, value, prefix + _binding(logical, name))

    def _seal_framed_with(
        self,
        key: DataKey,
        nonce: bytes,
        name: bytes,
        logical: bytes,
        value: bytes,
        frame: Frame,
        stamp: bytes = NO_EXPIRY_STAMP,
    ) -> bytearray:
        header, value = self._compressed(key, logical, value)
        prefix = self._prefix(key, header, nonce, stamp, logical)
        before, after = frame(len(prefix) + len(value) + TAG_BYTES)
        start = len(before) + len(prefix)
        end = start + len(value) + TAG_BYTES
        buffer = bytearray(end + len(after))
        buffer[:start] = before + prefix
        aad = prefix + _binding(logical, name)
        key.aead.encrypt_into(nonce, value, aad, memoryview(buffer)[start:end])
        buffer[end:] = after
        return buffer

    def open(self, name: bytes, envelope: bytes) -> Opened | None:
        """Open an envelope stored under `name` without knowing its logical key (rotation);
        None when it has expired (as open_value), IntegrityError on any fault."""
        if type(envelope) is not bytes:  # not a bulk string: see open_value
            raise IntegrityError
        expires = None
        if len(envelope) >= MIN_ENVELOPE_BYTES and envelope[0] == VERSION:
            key, start = self._key(envelope, STAMPED_BYTES)
            logical = key.unseal_key(envelope[STAMPED_BYTES + LEN_BYTES : start])
            value = _decrypt(key, envelope, start, envelope[:start] + _binding(logical, name))
            expires = envelope[PREFIX_BYTES:STAMPED_BYTES]
            if self._expired(expires):
                return None
        elif len(envelope) >= MIN_ENVELOPE_V2_BYTES and envelope[0] == VERSION_2:
            key, start = self._key(envelope, PREFIX_BYTES)
            logical = key.unseal_key(envelope[PREFIX_BYTES + LEN_BYTES : start])
            value = _decrypt(key, envelope, start, envelope[:start] + _binding(logical, name))
        else:
            key, plaintext = self._open_v1(name, envelope)
            end = LEN_BYTES + (plaintext[0] << 8 | plaintext[1])
            if end > len(plaintext) or end - LEN_BYTES > MAX_LOGICAL_KEY_BYTES:
                raise IntegrityError
            logical, value = plaintext[LEN_BYTES:end], plaintext[end:]
        value = _unpack(value, envelope[5])
        return Opened(logical=logical, value=value, key_id=key.key_id, expires=expires)

    def open_value(self, name: bytes, logical: bytes, envelope: bytes) -> bytes | None:
        """Open the value of `logical` stored under `name` (the read hot path): one AES-GCM
        call whose output is the value, the logical key checked as associated data. None
        when the envelope's expiry has passed (module docstring, "Expiry")."""
        if len(logical) > MAX_LOGICAL_KEY_BYTES or type(envelope) is not bytes:
            # No writer stores such a key (and len(K) is a u16); Redis replies bytes, and
            # anything else is a hostile or broken server's answer (module docstring).
            raise IntegrityError
        if len(envelope) >= MIN_ENVELOPE_BYTES and envelope[0] == VERSION:
            # _key, _binding, _decrypt and _expired written out. On a sequential call every
            # Python call runs with caches cold from the round trip before it and costs
            # microseconds, not the fraction of one it costs in a loop (an earlier change took
            # four calls out of a SET and saved about 9 us at 10 KiB, docs/benchmark.md).
            key = self._by_id.get(envelope[1:5])
            start = STAMPED_BYTES + LEN_BYTES + (envelope[26] << 8 | envelope[27])
            if key is None or start + TAG_BYTES > len(envelope):
                raise IntegrityError
            aad = envelope[:start] + len(logical).to_bytes(LEN_BYTES, "big") + logical + name
            body = envelope[start:] if len(envelope) < VIEW_BYTES else memoryview(envelope)[start:]
            try:
                value = key.aead.decrypt(envelope[HEADER_BYTES:PREFIX_BYTES], body, aad)
            except InvalidTag:
                raise IntegrityError from None
            # Checked once authentic (the expiry is in the associated data): an entry without
            # a TTL costs one unpack, one with a TTL a clock read more. unpack_from reads it in
            # place: a slice and int.from_bytes cost twice its instructions (cachegrind).
            expires = _u64_at(envelope, 18)[0]
            if expires:
                late_ms = self.clock() * 1000 - expires
                if late_ms > 0:
                    if late_ms > EXPIRY_ALLOWANCE_MS:
                        raise IntegrityError
                    return None
        else:
            value = self._open_older(name, logical, envelope)
        flags = envelope[5]
        return value if not flags else _unpack(value, flags)

    def _open_older(self, name: bytes, logical: bytes, envelope: bytes) -> bytes:
        """open_value's value of a version-2 or version-1 envelope, still packed."""
        if len(envelope) >= MIN_ENVELOPE_V2_BYTES and envelope[0] == VERSION_2:
            key, start = self._key(envelope, PREFIX_BYTES)
            return _decrypt(key, envelope, start, envelope[:start] + _binding(logical, name))
        plaintext = self._open_v1(name, envelope)[1]
        size = len(logical)
        # The name already binds the entry to `logical`; comparing the sealed copy as
        # well means even a forged name collision cannot return another key's value.
        if plaintext[0] << 8 | plaintext[1] != size or plaintext[2 : 2 + size] != logical:
            raise IntegrityError
        return plaintext[2 + size :]

    def _expired(self, stamp: bytes) -> bool:
        """Whether an authentic expiry field has passed: True within EXPIRY_ALLOWANCE_MS
        of it (a miss), IntegrityError later (a replay, or clocks apart by more than that)."""
        expires_ms = int.from_bytes(stamp, "big")
        if not expires_ms:
            return False
        late_ms = self.clock() * 1000 - expires_ms
        if late_ms > EXPIRY_ALLOWANCE_MS:
            raise IntegrityError
        return late_ms > 0

    def _key(self, envelope: bytes, at: int) -> tuple[DataKey, int]:
        """The data key of a version-3 or version-2 envelope, whose sealed key's length is
        at `at`, and where its value's ciphertext starts."""
        key = self._by_id.get(envelope[1:5])
        start = at + LEN_BYTES + (envelope[at] << 8 | envelope[at + 1])
        if key is None or start + TAG_BYTES > len(envelope):
            raise IntegrityError
        return key, start

    def _open_v1(self, name: bytes, envelope: bytes) -> tuple[DataKey, bytes]:
        """The data key and plaintext (len(K) || K || value) of a version-1 envelope."""
        if len(envelope) < MIN_ENVELOPE_V1_BYTES or envelope[0] != VERSION_1:
            raise IntegrityError
        key = self._by_id.get(envelope[1:5])
        if key is None:
            raise IntegrityError
        return key, _decrypt(key, envelope, PREFIX_BYTES, envelope[:HEADER_BYTES] + name)

    def newer_version(self, name: bytes, envelope: bytes) -> int | None:
        """The version of an envelope that failed to open when it is plausibly one a newer
        secure-cache wrote (its version is above VERSION, its key id at bytes 1 to 4 is a
        data key of this keyring, and it is stored under a name of that key, where every
        writer puts it); None for anything else (tampered, foreign, not an envelope).

        Only for the failure path, after open or open_value raised: it adds nothing to a
        successful open. It authenticates nothing (no key opens a version this code does not
        know), so anyone who can write to Redis can make a value pass it; docs/day2.md, "Rolling
        back the app", says what that gains them (nothing a DEL does not) and what shows it."""
        if type(envelope) is not bytes or len(envelope) <= HEADER_BYTES or envelope[0] <= VERSION:
            return None
        key = self._by_id.get(bytes(envelope[1:5]))
        if key is None or not name.startswith(key.name_prefix):
            return None
        return envelope[0]

    def reseal(
        self, name: bytes, envelope: bytes, stamp: bytes = NO_EXPIRY_STAMP
    ) -> tuple[bytes, bytes, Opened] | None:
        """Open an entry under any key and seal it for the primary key's name, with the
        expiry it has: a version-3 entry's own, unchanged; `stamp` for a version-1 or 2
        entry, which carries none (the rotation pass makes it from Redis's remaining TTL).

        Returns (new name, new envelope, what was opened), None when it has expired;
        raises IntegrityError.
        """
        opened = self.open(name, envelope)
        if opened is None:
            return None
        new_name = self.primary.name(opened.logical)
        if opened.expires is not None:
            stamp = opened.expires
        return new_name, self.seal(new_name, opened.logical, opened.value, stamp), opened


def _binding(logical: bytes, name: bytes) -> bytes:
    """The end of a value's associated data: len(K) (u16), K and the stored name."""
    return len(logical).to_bytes(LEN_BYTES, "big") + logical + name


def _decrypt(key: DataKey, envelope: bytes, start: int, aad: bytes) -> bytes:
    """AES-GCM-open the ciphertext from `start` to the end of `envelope`."""
    # A large ciphertext is passed as a view, not copied by slicing; a small one is sliced,
    # because cryptography takes a view about 1 us slower per call (measured 2026-11-30 on
    # the build machine, decrypt: 1 KiB 1.4 us sliced, 2.5 us as a view; 10 KiB about even;
    # 100 KiB 39 us sliced, 32 us as a view).
    body = envelope[start:] if len(envelope) < VIEW_BYTES else memoryview(envelope)[start:]
    try:
        return key.aead.decrypt(envelope[HEADER_BYTES:PREFIX_BYTES], body, aad)
    except InvalidTag:
        raise IntegrityError from None


def _unpack(value: bytes, flags: int) -> bytes:
    if not flags:
        return value
    if flags != FLAG_ZLIB:  # authenticated, so only a newer writer could set other bits
        raise IntegrityError
    try:
        return zlib.decompress(value)
    except zlib.error:
        raise IntegrityError from None


__all__ = [
    "CIPHER_NAME",
    "DATA_KEY_BYTES",
    "EXPIRY_ALLOWANCE_MS",
    "MAX_LOGICAL_KEY_BYTES",
    "NAME_HASH",
    "NO_EXPIRY_STAMP",
    "VERSION",
    "DataKey",
    "Frame",
    "Keyring",
    "Opened",
    "WallClock",
    "body_bytes",
    "expiry_stamp",
]
