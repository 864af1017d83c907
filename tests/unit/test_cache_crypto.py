"""crypto.Keyring: envelopes, names, rotation, one opaque error for every bad input."""

from __future__ import annotations

import os
import re
import zlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secure_cache import crypto
from secure_cache.crypto import EXPIRY_ALLOWANCE_MS, Keyring, body_bytes, expiry_stamp
from secure_cache.errors import IntegrityError
from tests.support.cache_env import FakeClock
from tests.support.envelopes import with_version

KEY = bytes(range(32))
OLD = bytes(range(100, 132))
LOGICAL = b"user:42:profile"


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(KEY)


def _sealed(keyring: Keyring, value: bytes = b"hello") -> tuple[bytes, bytes]:
    name = keyring.primary.name(LOGICAL)
    return name, keyring.seal(name, LOGICAL, value)


def _key_seal(raw: bytes) -> AESSIV:
    """The AES-SIV key that seals logical keys, derived here as crypto.py documents it."""
    info = b"secure-cache v2 key seal key"
    return AESSIV(HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=info).derive(raw))


def _padded(logical: bytes) -> bytes:
    """A logical key padded as crypto.py documents: 0x80, then zeros to a multiple of 32."""
    return logical + b"\x80" + bytes(-(len(logical) + 1) % 32)


def _v3(
    keyring: Keyring,
    nonce: bytes,
    name: bytes,
    value: bytes,
    expires_ms: int = 0,
    logical: bytes = LOGICAL,
) -> bytes:
    """A version-3 envelope built from its documented layout, not by crypto.py."""
    key = keyring.primary
    sealed = _key_seal(KEY).encrypt(_padded(logical), None)
    prefix = bytes((3,)) + key.key_id + b"\x00" + nonce + expires_ms.to_bytes(8, "big")
    prefix += len(sealed).to_bytes(2, "big") + sealed
    aad = prefix + len(logical).to_bytes(2, "big") + logical + name
    return prefix + key.aead.encrypt(nonce, value, aad)


def _v2(
    keyring: Keyring,
    nonce: bytes,
    name: bytes,
    value: bytes,
    flags: int = 0,
    logical: bytes = LOGICAL,
    raw: bytes = KEY,
) -> bytes:
    """A version-2 envelope built from its documented layout, not by crypto.py."""
    key = keyring.primary
    sealed = _key_seal(raw).encrypt(_padded(logical), None)
    prefix = bytes((2,)) + key.key_id + bytes((flags,)) + nonce + len(sealed).to_bytes(2, "big")
    prefix += sealed
    aad = prefix + len(logical).to_bytes(2, "big") + logical + name
    return prefix + key.aead.encrypt(nonce, value, aad)


def _v1(
    keyring: Keyring,
    nonce: bytes,
    name: bytes,
    value: bytes,
    flags: int = 0,
    logical: bytes = LOGICAL,
) -> bytes:
    """A version-1 envelope (written before 2026-12-02) built from its documented layout."""
    key = keyring.primary
    header = bytes((1,)) + key.key_id + bytes((flags,))
    plaintext = len(logical).to_bytes(2, "big") + logical + value
    return header + nonce + key.aead.encrypt(nonce, plaintext, header + name)


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00\xff\x00\x80", b"a" * 1024, os.urandom(200_000)],
    ids=["empty", "binary", "1KiB", "200KB"],
)
def test_seal_open__round_trips(keyring: Keyring, value: bytes) -> None:
    name, envelope = _sealed(keyring, value)
    assert keyring.open_value(name, LOGICAL, envelope) == value
    opened = keyring.open(name, envelope)
    assert opened is not None
    assert (opened.logical, opened.value, opened.key_id) == (LOGICAL, value, keyring.primary.key_id)


def test_envelope__has_the_documented_layout(keyring: Keyring) -> None:
    name = keyring.primary.name(LOGICAL)
    nonce = bytes(range(12))
    prefix, body = keyring._seal_with(keyring.primary, nonce, name, LOGICAL, b"value")
    envelope = prefix + body
    assert envelope[0] == 3  # version
    assert envelope[1:5] == keyring.primary.key_id
    assert envelope[5] == 0  # flags: not compressed
    assert envelope[6:18] == nonce
    assert envelope[18:26] == bytes(8)  # expiry: none
    sealed_length = int.from_bytes(envelope[26:28], "big")
    assert sealed_length == 16 + 32  # AES-SIV: its 16-byte IV, then the key padded to 32
    assert prefix == envelope[: 28 + sealed_length]  # then the value's ciphertext and tag
    assert _key_seal(KEY).decrypt(envelope[28 : 28 + sealed_length], None) == _padded(LOGICAL)
    # The value's plaintext is the value alone, authenticated with everything before it,
    # the logical key and the stored name.
    aad = prefix + len(LOGICAL).to_bytes(2, "big") + LOGICAL + name
    assert keyring.primary.aead.decrypt(nonce, body, aad) == b"value"
    assert len(body) == len(b"value") + 16
    assert envelope == _v3(keyring, nonce, name, b"value")
    assert b"value" not in envelope
    assert LOGICAL not in envelope


# -- version 3: the expiry in the header (docs/attack-surface.md, "A replay past the TTL") ---

NOW_S = 1_800_000_000.0  # the injected wall clock's start (2027-01-15)
NOW_MS = int(NOW_S * 1000)


def _clocked() -> tuple[Keyring, FakeClock]:
    clock = FakeClock(NOW_S)
    return Keyring(KEY, clock=clock), clock


def test_expiry__round_trips_in_the_header_and_is_authenticated() -> None:
    keyring, _ = _clocked()
    name = keyring.primary.name(LOGICAL)
    stamp = expiry_stamp(NOW_MS + 300_000)
    envelope = keyring.seal(name, LOGICAL, b"value", stamp)
    assert envelope[18:26] == (NOW_MS + 300_000).to_bytes(8, "big")
    assert envelope == _v3(keyring, envelope[6:18], name, b"value", NOW_MS + 300_000)
    assert keyring.open_value(name, LOGICAL, envelope) == b"value"
    opened = keyring.open(name, envelope)
    assert opened is not None
    assert (opened.value, opened.expires) == (b"value", stamp)


@pytest.mark.parametrize(
    "edited",
    [NOW_MS + 300_001, NOW_MS + 10**9, 0, 2**64 - 1],
    ids=["a-millisecond-later", "years-later", "no-expiry", "the-largest"],
)
def test_expiry__edited_raises_integrity_error(edited: int) -> None:
    """A server that keeps an envelope cannot extend its life, or remove its expiry."""
    keyring, _ = _clocked()
    name = keyring.primary.name(LOGICAL)
    envelope = keyring.seal(name, LOGICAL, b"value", expiry_stamp(NOW_MS + 300_000))
    forged = envelope[:18] + edited.to_bytes(8, "big") + envelope[26:]
    with pytest.raises(IntegrityError):
        keyring.open_value(name, LOGICAL, forged)
    with pytest.raises(IntegrityError):
        keyring.open(name, forged)


def test_expiry__past_it_is_a_miss_and_past_the_allowance_an_integrity_error() -> None:
    keyring, clock = _clocked()
    name = keyring.primary.name(LOGICAL)
    envelope = keyring.seal(name, LOGICAL, b"value", expiry_stamp(NOW_MS + 300_000))
    clock.advance(300.0)  # at its expiry: still live
    assert keyring.open_value(name, LOGICAL, envelope) == b"value"
    clock.advance(0.002)  # just past it: a miss, what Redis answers from then on
    assert keyring.open_value(name, LOGICAL, envelope) is None
    assert keyring.open(name, envelope) is None
    assert keyring.reseal(name, envelope) is None
    clock.advance(EXPIRY_ALLOWANCE_MS / 1000)  # later than Redis returns it: replayed
    with pytest.raises(IntegrityError):
        keyring.open_value(name, LOGICAL, envelope)
    with pytest.raises(IntegrityError):
        keyring.open(name, envelope)


def test_expiry__none_never_expires_and_reads_no_clock() -> None:
    def no_clock() -> float:
        raise AssertionError("an entry without a TTL reads no clock")

    keyring = Keyring(KEY, clock=no_clock)
    name = keyring.primary.name(LOGICAL)
    envelope = keyring.seal(name, LOGICAL, b"value")
    assert envelope[18:26] == bytes(8)
    assert keyring.open_value(name, LOGICAL, envelope) == b"value"


def test_expiry_stamp__is_unix_milliseconds_in_eight_bytes() -> None:
    assert expiry_stamp(0) == bytes(8)
    assert expiry_stamp(NOW_MS) == NOW_MS.to_bytes(8, "big")
    for bad in (-1, 2**64):
        with pytest.raises(ValueError, match="Unix milliseconds"):
            expiry_stamp(bad)


def test_version_2_envelope__still_opens_and_reseals_as_version_3_with_the_stamp_given() -> None:
    """Entries written before version 3 stay readable after an upgrade; they carry no
    expiry, so the rotation pass gives them one (core.plan_batch, from Redis's TTL)."""
    keyring, _ = _clocked()
    name = keyring.primary.name(LOGICAL)
    envelope = _v2(keyring, b"\x07" * 12, name, b"from version 2")
    assert keyring.open_value(name, LOGICAL, envelope) == b"from version 2"
    opened = keyring.open(name, envelope)
    assert opened is not None
    assert (opened.logical, opened.value, opened.expires) == (LOGICAL, b"from version 2", None)
    resealed = keyring.reseal(name, envelope, expiry_stamp(NOW_MS + 5_000))
    assert resealed is not None
    new_name, new_envelope, _ = resealed
    assert (new_envelope[0], new_envelope[18:26]) == (3, expiry_stamp(NOW_MS + 5_000))
    assert keyring.open_value(new_name, LOGICAL, new_envelope) == b"from version 2"


def test_reseal__carries_a_version_3_expiry_over_unchanged() -> None:
    clock = FakeClock(NOW_S)
    old = Keyring(OLD, clock=clock)
    old_name = old.primary.name(LOGICAL)
    envelope = old.seal(old_name, LOGICAL, b"v", expiry_stamp(NOW_MS + 60_000))
    rotating = Keyring(KEY, [OLD], clock=clock)
    # The stamp given is for entries that carry none: this one keeps its own.
    resealed = rotating.reseal(old_name, envelope, expiry_stamp(NOW_MS + 999_999))
    assert resealed is not None
    _, new_envelope, _ = resealed
    assert new_envelope[18:26] == envelope[18:26]
    assert new_envelope[1:5] == rotating.primary.key_id


def test_version_3_header__keeps_version_and_key_id_where_every_version_has_them() -> None:
    """What lets older code tell a newer entry from a damaged one (Keyring.newer_version):
    a version-3 envelope passes version 2's test, and a version-4 one made from version 3's
    layout passes this version's."""
    keyring, _ = _clocked()
    name = keyring.primary.name(LOGICAL)
    envelope = keyring.seal(name, LOGICAL, b"v", expiry_stamp(NOW_MS + 1))
    assert (envelope[0], envelope[1:5]) == (3, keyring.primary.key_id)
    assert name.startswith(keyring.primary.name_prefix)
    assert keyring.newer_version(name, envelope) is None  # this version's own
    assert keyring.newer_version(name, with_version(envelope, 4)) == 4


@pytest.mark.parametrize("compress", [None, 64], ids=["plain", "compressed"])
def test_seal_framed__is_the_envelope_between_its_framing(compress: int | None) -> None:
    keyring = Keyring(KEY, compress_min_bytes=compress)
    name, nonce, value = keyring.primary.name(LOGICAL), bytes(range(12)), b"v" * 40_000
    lengths: list[int] = []

    def frame(length: int) -> tuple[bytes, bytes]:
        lengths.append(length)
        return b"<before %d>" % length, b"<after>"

    framed = keyring._seal_framed_with(keyring.primary, nonce, name, LOGICAL, value, frame)
    prefix, body = keyring._seal_with(keyring.primary, nonce, name, LOGICAL, value)
    envelope = prefix + body
    # The framing was asked for the envelope's true length (also when compressed), and the
    # buffer is exactly that framing around the same envelope seal() makes.
    assert lengths == [len(envelope)]
    assert bytes(framed) == b"<before %d>" % len(envelope) + envelope + b"<after>"
    assert keyring.open_value(name, LOGICAL, envelope) == value


@pytest.mark.parametrize("size", [0, 100, 20_000])
def test_body_bytes__is_the_length_of_the_sealed_body(keyring: Keyring, size: int) -> None:
    value = b"v" * size
    _, body = keyring.seal_parts(keyring.primary.name(LOGICAL), LOGICAL, value)
    assert body_bytes(len(value)) == len(body)


def test_seal_framed__draws_a_fresh_nonce(keyring: Keyring) -> None:
    name = keyring.primary.name(LOGICAL)
    frames = [
        keyring.seal_framed(name, LOGICAL, b"x" * 20_000, lambda _: (b"", b"")) for _ in range(2)
    ]
    assert frames[0][6:18] != frames[1][6:18]
    assert all(keyring.open_value(name, LOGICAL, bytes(f)) == b"x" * 20_000 for f in frames)


def test_seal__is_deterministic_for_a_fixed_nonce(keyring: Keyring) -> None:
    name = keyring.primary.name(LOGICAL)
    nonce = b"\x00" * 12
    first = keyring._seal_with(keyring.primary, nonce, name, LOGICAL, b"v")
    assert first == Keyring(KEY)._seal_with(Keyring(KEY).primary, nonce, name, LOGICAL, b"v")


def test_nonces__never_repeat_within_a_keyring(keyring: Keyring) -> None:
    name = keyring.primary.name(LOGICAL)
    nonces = {keyring.seal(name, LOGICAL, b"v")[6:18] for _ in range(10_000)}
    assert len(nonces) == 10_000


def test_nonces__differ_between_keyrings_with_the_same_key() -> None:
    a, b = Keyring(KEY), Keyring(KEY)
    name = a.primary.name(LOGICAL)
    assert a.seal(name, LOGICAL, b"v")[6:18] != b.seal(name, LOGICAL, b"v")[6:18]


def test_seal__draws_each_nonce_from_os_urandom(
    keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[int] = []

    def fake_urandom(size: int) -> bytes:
        drawn.append(size)
        return bytes([len(drawn)]) * size

    monkeypatch.setattr("secure_cache.crypto._urandom", fake_urandom)
    name = keyring.primary.name(LOGICAL)
    first, second = (keyring.seal(name, LOGICAL, b"v") for _ in range(2))
    assert drawn == [12, 12]
    assert (first[6:18], second[6:18]) == (b"\x01" * 12, b"\x02" * 12)


def test_seal_many__slices_one_os_urandom_draw_into_distinct_nonces(
    keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[int] = []

    def counting_urandom(size: int) -> bytes:
        drawn.append(size)
        return os.urandom(size)

    monkeypatch.setattr("secure_cache.crypto._urandom", counting_urandom)
    logicals = [b"k%d" % i for i in range(50)]
    names = [keyring.primary.name(lg) for lg in logicals]
    parts = keyring.seal_many([(n, lg, b"v" + lg) for n, lg in zip(names, logicals, strict=True)])
    assert drawn == [12 * 50]  # drawn at once, before any value is sealed
    sealed = [prefix + body for prefix, body in parts]
    assert drawn == [12 * 50]
    assert len({envelope[6:18] for envelope in sealed}) == 50
    opened = [
        keyring.open_value(n, lg, e) for n, lg, e in zip(names, logicals, sealed, strict=True)
    ]
    assert opened == [b"v" + lg for lg in logicals]


def test_forked_child__and_parent_draw_different_nonces(keyring: Keyring) -> None:
    name = keyring.primary.name(LOGICAL)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the nonce of its first seal, then exit at once
        os.close(read_end)
        os.write(write_end, keyring.seal(name, LOGICAL, b"v")[6:18])
        os._exit(0)
    os.close(write_end)
    child_nonce = os.read(read_end, 12)
    os.close(read_end)
    os.waitpid(pid, 0)
    parent_nonce = keyring.seal(name, LOGICAL, b"v")[6:18]
    assert len(child_nonce) == 12
    assert child_nonce != parent_nonce


def _flip(envelope: bytes, index: int) -> bytes:
    data = bytearray(envelope)
    data[index] ^= 0x80
    return bytes(data)


@pytest.mark.parametrize(
    "index",
    [0, 1, 4, 5, 6, 17, 18, 19, 20, 20 + 16 + 32 - 1, -18, -16, -1],
    ids=[
        "version",
        "key-id-first",
        "key-id-last",
        "flags",
        "nonce-first",
        "nonce-last",
        "sealed-key-length-first",
        "sealed-key-length-last",
        "sealed-key-first",
        "sealed-key-last",
        "ciphertext",
        "tag-first",
        "tag-last",
    ],
)
def test_flipped_bit__raises_integrity_error(keyring: Keyring, index: int) -> None:
    name, envelope = _sealed(keyring)
    with pytest.raises(IntegrityError):
        keyring.open_value(name, LOGICAL, _flip(envelope, index))
    with pytest.raises(IntegrityError):
        keyring.open(name, _flip(envelope, index))


@pytest.mark.parametrize("length", [0, 1, 5, 18, 20, 35, 36, 51, 52, -1], ids=lambda n: f"len{n}")
def test_truncated_envelope__raises_integrity_error(keyring: Keyring, length: int) -> None:
    name, envelope = _sealed(keyring)
    with pytest.raises(IntegrityError):
        keyring.open_value(name, LOGICAL, envelope[:length])
    with pytest.raises(IntegrityError):
        keyring.open(name, envelope[:length])


@pytest.mark.parametrize(
    "blob",
    [b"hello", b'{"json": "plaintext"}', b"\x01" + b"\x00" * 60, b"gAAAAABh" + b"A" * 80],
    ids=["plaintext", "json", "version-1-zeros", "fernet-token"],
)
def test_not_an_envelope__raises_integrity_error(keyring: Keyring, blob: bytes) -> None:
    with pytest.raises(IntegrityError):
        keyring.open_value(keyring.primary.name(LOGICAL), LOGICAL, blob)
    with pytest.raises(IntegrityError):
        keyring.open(keyring.primary.name(LOGICAL), blob)


def test_value_under_another_name__raises_integrity_error(keyring: Keyring) -> None:
    _, envelope = _sealed(keyring)
    with pytest.raises(IntegrityError):
        keyring.open_value(keyring.primary.name(b"other"), LOGICAL, envelope)


def test_value_for_another_logical_key__raises_integrity_error(keyring: Keyring) -> None:
    name, envelope = _sealed(keyring)
    with pytest.raises(IntegrityError):
        keyring.open_value(name, b"user:43:profile", envelope)


def test_foreign_key__raises_integrity_error(keyring: Keyring) -> None:
    foreign = Keyring(os.urandom(32))
    name = keyring.primary.name(LOGICAL)
    with pytest.raises(IntegrityError):
        keyring.open_value(name, LOGICAL, foreign.seal(name, LOGICAL, b"v"))


def test_integrity_error__is_opaque(keyring: Keyring) -> None:
    name, envelope = _sealed(keyring, b"secret value")
    messages = set()
    for bad in (b"", envelope[:-1], _flip(envelope, 30), b"secret value"):
        with pytest.raises(IntegrityError) as caught:
            keyring.open_value(name, LOGICAL, bad)
        messages.add(str(caught.value))
    assert messages == {"stored value failed authentication"}


def test_previous_key__still_opens_and_reseal_moves_to_primary() -> None:
    old = Keyring(OLD)
    old_name = old.primary.name(LOGICAL)
    envelope = old.seal(old_name, LOGICAL, b"legacy")
    rotating = Keyring(KEY, [OLD])
    assert rotating.names(LOGICAL) == (rotating.primary.name(LOGICAL), old_name)
    assert rotating.open_value(old_name, LOGICAL, envelope) == b"legacy"
    resealed = rotating.reseal(old_name, envelope)
    assert resealed is not None
    new_name, new_envelope, opened = resealed
    assert opened.key_id == old.primary.key_id
    assert new_name == rotating.primary.name(LOGICAL)
    assert Keyring(KEY).open_value(new_name, LOGICAL, new_envelope) == b"legacy"
    with pytest.raises(IntegrityError):  # the old key alone cannot read the new entry
        old.open_value(new_name, LOGICAL, new_envelope)


def test_names__are_keyed_opaque_and_prefixed(keyring: Keyring) -> None:
    name = keyring.primary.name(LOGICAL)
    kid = keyring.primary.key_id_hex
    assert re.fullmatch(rf"cache:{kid}:[0-9a-f]{{32}}", name.decode())
    assert b"user" not in name
    assert b"42" not in name
    assert name == Keyring(KEY).primary.name(LOGICAL)  # stable across processes
    assert name != Keyring(os.urandom(32)).primary.name(LOGICAL)  # keyed
    assert keyring.primary.name(b"user:43:profile") != name


def test_prefix__is_the_namespace_of_every_name() -> None:
    assert Keyring(KEY, prefix="tenant-a:").primary.name(LOGICAL).startswith(b"tenant-a:")


def test_key_id__is_derived_not_the_key() -> None:
    keyring = Keyring(KEY)
    assert len(keyring.primary.key_id) == 4
    assert keyring.primary.key_id not in KEY
    assert keyring.primary.key_id != Keyring(OLD).primary.key_id


def test_same_key_twice__is_refused() -> None:
    with pytest.raises(ValueError, match="same data key twice"):
        Keyring(KEY, [KEY])


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_wrong_key_length__is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Keyring(b"k" * length)


def test_compression__above_threshold_only_when_it_helps() -> None:
    keyring = Keyring(KEY, compress_min_bytes=1024)
    name = keyring.primary.name(LOGICAL)
    text = b"compressible " * 1000
    random_bytes = os.urandom(4096)
    small = keyring.seal(name, LOGICAL, b"compressible " * 10)
    big = keyring.seal(name, LOGICAL, text)
    noise = keyring.seal(name, LOGICAL, random_bytes)
    assert small[5] == 0
    assert big[5] == crypto.FLAG_ZLIB
    assert len(big) < len(text) // 4
    assert noise[5] == 0  # incompressible: stored as is
    assert keyring.open_value(name, LOGICAL, big) == text
    assert keyring.open_value(name, LOGICAL, noise) == random_bytes


def test_compressed_envelope__opens_without_the_compression_setting() -> None:
    writer = Keyring(KEY, compress_min_bytes=10)
    name = writer.primary.name(LOGICAL)
    envelope = writer.seal(name, LOGICAL, b"z" * 5000)
    assert Keyring(KEY).open_value(name, LOGICAL, envelope) == b"z" * 5000


def test_unknown_flag__raises_integrity_error() -> None:
    """A future flag under a valid tag is refused, not misread (defence in depth)."""
    keyring = Keyring(KEY)
    name = keyring.primary.name(LOGICAL)
    nonce = b"\x01" * 12
    for envelope in (
        _v2(keyring, nonce, name, zlib.compress(b"v"), flags=2),
        _v1(keyring, nonce, name, zlib.compress(b"v"), flags=2),
    ):
        with pytest.raises(IntegrityError):
            keyring.open_value(name, LOGICAL, envelope)
        with pytest.raises(IntegrityError):
            keyring.open(name, envelope)


@pytest.mark.parametrize("flags", [0, 1], ids=["plain", "compressed"])
def test_version_1_envelope__still_opens_and_reseals_as_version_3(flags: int) -> None:
    """Entries written before the version-2 envelope stay readable after an upgrade."""
    keyring = Keyring(KEY)
    name = keyring.primary.name(LOGICAL)
    stored = zlib.compress(b"legacy " * 50) if flags else b"legacy " * 50
    envelope = _v1(keyring, b"\x03" * 12, name, stored, flags)
    assert keyring.open_value(name, LOGICAL, envelope) == b"legacy " * 50
    opened = keyring.open(name, envelope)
    assert opened is not None
    assert (opened.logical, opened.value) == (LOGICAL, b"legacy " * 50)
    resealed = keyring.reseal(name, envelope)
    assert resealed is not None
    new_name, new_envelope, _ = resealed
    assert new_envelope[0] == 3
    assert keyring.open_value(new_name, LOGICAL, new_envelope) == b"legacy " * 50


@pytest.mark.parametrize("index", [0, 5, 17, 18, 30, -1], ids=lambda i: f"byte{i}")
def test_version_1_envelope__flipped_bit_raises_integrity_error(index: int) -> None:
    keyring = Keyring(KEY)
    name = keyring.primary.name(LOGICAL)
    envelope = _flip(_v1(keyring, b"\x03" * 12, name, b"legacy"), index)
    with pytest.raises(IntegrityError):
        keyring.open_value(name, LOGICAL, envelope)
    with pytest.raises(IntegrityError):
        keyring.open(name, envelope)


def test_version_1_envelope__for_another_logical_key_raises_integrity_error() -> None:
    keyring = Keyring(KEY)
    name = keyring.primary.name(LOGICAL)
    envelope = _v1(keyring, b"\x03" * 12, name, b"legacy")
    with pytest.raises(IntegrityError):
        keyring.open_value(name, b"user:43:profile", envelope)


def test_sealed_key__swapped_in_from_another_entry_raises_integrity_error(
    keyring: Keyring,
) -> None:
    """The sealed logical key is authenticated with the value: an entry whose sealed key
    was replaced by another entry's (a rotation would move it to that key's name) opens
    neither for a read nor for rotation."""
    name, envelope = _sealed(keyring, b"mine")
    other = keyring.seal(keyring.primary.name(b"other"), b"other", b"theirs")
    start, other_start = (28 + int.from_bytes(e[26:28], "big") for e in (envelope, other))
    swapped = envelope[:26] + other[26:other_start] + envelope[start:]
    with pytest.raises(IntegrityError):
        keyring.open_value(name, LOGICAL, swapped)
    with pytest.raises(IntegrityError):
        keyring.open(name, swapped)


@pytest.mark.parametrize(
    "logical", [b"k", b"a\x00\x00", b"ends in 0x80 \x80", "caf\u00e9".encode(), b"x" * 4096]
)
def test_sealed_key__round_trips_whatever_the_key_ends_with(logical: bytes) -> None:
    keyring = Keyring(KEY)
    name = keyring.primary.name(logical)
    opened = keyring.open(name, keyring.seal(name, logical, b"v"))
    assert opened is not None
    assert (opened.logical, opened.value) == (logical, b"v")


def test_sealed_key__shows_the_key_length_only_to_within_32_bytes(keyring: Keyring) -> None:
    def length(logical: bytes) -> int:
        return len(keyring.seal(keyring.primary.name(logical), logical, b"v"))

    assert {length(b"k" * n) for n in range(1, 32)} == {length(b"k")}
    assert length(b"k" * 32) == length(b"k") + 32


def test_version_1_entry_of_a_previous_key__rotates_to_version_3_under_the_primary() -> None:
    old = Keyring(OLD)
    old_name = old.primary.name(LOGICAL)
    envelope = _v1(old, b"\x04" * 12, old_name, b"from before the upgrade")
    rotating = Keyring(KEY, [OLD])
    resealed = rotating.reseal(old_name, envelope)
    assert resealed is not None
    new_name, new_envelope, opened = resealed
    assert (opened.logical, opened.key_id) == (LOGICAL, old.primary.key_id)
    assert new_name == rotating.primary.name(LOGICAL)
    assert new_envelope[0] == 3
    assert new_envelope[1:5] == rotating.primary.key_id
    assert Keyring(KEY).open_value(new_name, LOGICAL, new_envelope) == b"from before the upgrade"


def test_seal_parts__is_seal_with_for_the_nonce_it_draws(
    keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """seal_parts writes out _seal_with's steps for speed; both must make the same envelope."""
    monkeypatch.setattr("secure_cache.crypto._urandom", lambda size: b"\x05" * size)
    name = keyring.primary.name(LOGICAL)
    inlined = keyring.seal_parts(name, LOGICAL, b"value")
    assert inlined == keyring._seal_with(keyring.primary, b"\x05" * 12, name, LOGICAL, b"value")
    assert inlined[0] + inlined[1] == _v3(keyring, b"\x05" * 12, name, b"value")
    stamp = expiry_stamp(NOW_MS)
    inlined = keyring.seal_parts(name, LOGICAL, b"value", stamp)
    assert inlined[0] + inlined[1] == _v3(keyring, b"\x05" * 12, name, b"value", NOW_MS)


def test_logical_key_longer_than_a_writer_makes__is_an_integrity_error(keyring: Keyring) -> None:
    """open_value of an over-long key (len(K) would not fit its u16), and reseal of an entry
    only a holder of the data key could have made with one (it would stop a rotation pass
    at the seal), fail as every bad entry does."""
    name, envelope = _sealed(keyring)
    with pytest.raises(IntegrityError):
        keyring.open_value(name, b"k" * 70_000, envelope)
    long_key = b"k" * (crypto.MAX_LOGICAL_KEY_BYTES + 1)
    long_name = keyring.primary.name(long_key)
    for forged in (
        _v2(keyring, b"\x06" * 12, long_name, b"v", logical=long_key),
        _v1(keyring, b"\x06" * 12, long_name, b"v", logical=long_key),
    ):
        with pytest.raises(IntegrityError):
            keyring.reseal(long_name, forged)


def test_sealed_key__is_sealed_once_per_hot_key(keyring: Keyring) -> None:
    name = keyring.primary.name(LOGICAL)
    envelopes = [keyring.seal(name, LOGICAL, b"v%d" % i) for i in range(3)]
    assert keyring.sealed_key.cache_info().misses == 1  # type: ignore[attr-defined]
    assert len({e[26 : 28 + 16 + 32] for e in envelopes}) == 1
    assert len({e[6:18] for e in envelopes}) == 3  # a fresh nonce each time


def test_logical_key_too_long__is_refused(keyring: Keyring) -> None:
    long_key = b"k" * (crypto.MAX_LOGICAL_KEY_BYTES + 1)
    with pytest.raises(ValueError, match="at most"):
        keyring.seal(keyring.primary.name(long_key), long_key, b"v")


@pytest.mark.parametrize("key_bytes", [1, 31, 32, crypto.MAX_LOGICAL_KEY_BYTES])
def test_max_overhead__bounds_what_sealing_adds_and_is_reached_by_the_longest_key(
    keyring: Keyring, key_bytes: int
) -> None:
    # MAX_OVERHEAD_BYTES sizes the stack's proto-max-bulk-len (infra/redis_conf.py) and the
    # client's reply limit: an envelope larger than it would be refused by Redis or the client.
    logical = b"k" * key_bytes
    value = os.urandom(1000)  # incompressible: compression is kept only when it shrinks
    added = len(keyring.seal(keyring.primary_name(logical), logical, value)) - len(value)
    assert added <= crypto.MAX_OVERHEAD_BYTES
    if key_bytes == crypto.MAX_LOGICAL_KEY_BYTES:
        assert added == crypto.MAX_OVERHEAD_BYTES
