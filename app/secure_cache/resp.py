"""RESP encoding of the commands the cache sends: bytes in, bytes out, no I/O.

The core (core.py) builds every request with these functions and the transports
(transport.py) only write the bytes and read the replies, in the sans-IO style of h11.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final

import hiredis

from secure_cache.crypto import NO_EXPIRY_STAMP

Arg = bytes | str | int
# What a transport writes: packed commands or pieces of them, in order.
Buffer = bytes | bytearray
# Pieces below JOIN_BYTES (the TLS record size) are joined into writes of about WRITE_BYTES;
# larger ones are written as they are (see writes). Two TLS records: a batch larger than that
# goes out in writes Redis can start on while the client seals the next (core.set_many).
JOIN_BYTES: Final = 16 * 1024
WRITE_BYTES: Final = 32 * 1024

# RESP-encode one command, in C. (hiredis' stub types the argument as a 1-tuple.)
pack_command: Callable[[tuple[Arg, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]

# GET and SET are built by hand: joining precomputed pieces is about twice as fast as
# pack_command for the commands every cache call sends.
_SET_HEADS: Final = {0: b"*3\r\n$3\r\nSET\r\n$", 2: b"*5\r\n$3\r\nSET\r\n$"}
# A SET's TTL: (number of extra arguments, their RESP encoding, the sealed envelope's expiry
# field for the same TTL). core.ttl_args makes all three from one TTL, so Redis's expiry and
# the envelope's cannot be given apart (crypto.py, "Expiry"); the framing uses the first two.
Expiry = tuple[int, bytes, bytes]
NO_EXPIRY: Final[Expiry] = (0, b"", NO_EXPIRY_STAMP)


def resp_args(*args: bytes) -> bytes:
    """RESP bulk strings for `args`, to append to a command header."""
    return b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def pack_get(name: bytes) -> bytes:
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(name), name)


def set_frame(name: bytes, length: int, expiry: Expiry) -> tuple[bytes, bytes]:
    """What goes around a value of `length` bytes in `SET name <value> [expiry]`: the RESP
    (head, tail). set_pieces and a value sealed in place between them (core.py) share it."""
    head = b"".join((_SET_HEADS[expiry[0]], b"%d\r\n" % len(name), name, b"\r\n$%d\r\n" % length))
    return head, b"\r\n" + expiry[1]


def set_pieces(name: bytes, prefix: bytes, body: bytes, expiry: Expiry) -> tuple[bytes, ...]:
    """`SET name <prefix + body> [expiry]` in three pieces, (RESP head + prefix, body,
    tail), for writes(): the body is never copied to frame it."""
    head, tail = set_frame(name, len(prefix) + len(body), expiry)
    return head + prefix, body, tail


def pack_set(name: bytes, value: bytes, expiry: Expiry = NO_EXPIRY, prefix: bytes = b"") -> bytes:
    """`SET name <prefix + value> [expiry]` in one buffer: what a single SET of a value below
    JOIN_BYTES writes (core.py), its sealed value's two parts copied once, into the write."""
    return b"".join(
        (
            _SET_HEADS[expiry[0]],
            b"%d\r\n" % len(name),
            name,
            b"\r\n$%d\r\n" % (len(prefix) + len(value)),
            prefix,
            value,
            b"\r\n",
            expiry[1],
        )
    )


def iter_writes(pieces: Iterable[Buffer]) -> Iterator[Buffer]:
    """Packed commands, or pieces of them, as the chunks to write in order: pieces below
    JOIN_BYTES joined into chunks of about WRITE_BYTES, larger ones as they are.

    Joining 100 SETs of 100 KiB copied 10 MB into a fresh buffer per batch, the largest
    single cost of the client's batch on this machine (fresh memory is dear here: about
    100 us per 100 KiB under load, scripts/bench.py). Writing small pieces one by one would
    cost a system call and a short TLS record each. Chunks of 32 KiB rather than 256 let a
    batch sealed as it is written (core.set_many) overlap with Redis: 100 pipelined SETs +
    100 GETs of 1 KiB ran at 0.82 of plaintext redis-py with 256 KiB and 0.96 with 32 KiB
    (0.90 with 16, 0.94 with 64), of 10 KiB at 0.96 and 1.08 of the TLS transport (median
    of 9 alternating rounds, 2026-11-30, this 2-core machine under `chrt -f`).
    """
    small: list[Buffer] = []
    size = 0
    for piece in pieces:
        length = len(piece)
        if length >= JOIN_BYTES:
            if small:
                yield b"".join(small)
                small, size = [], 0
            yield piece
            continue
        small.append(piece)
        size += length
        if size >= WRITE_BYTES:
            yield b"".join(small)
            small, size = [], 0
    if small:
        yield b"".join(small)


def writes(pieces: Iterable[Buffer]) -> list[Buffer]:
    """iter_writes() at once."""
    return list(iter_writes(pieces))


class Deferred(Iterable[Buffer]):
    """The chunks of `chunks`, made as a writer iterates (a batch seals its next values
    while the first ones are being written, core.set_many) and kept, so that a retry writes
    the same bytes again. If making a chunk failed, every later iteration fails the same
    way rather than write a batch with a hole in it."""

    def __init__(self, chunks: Iterator[Buffer]) -> None:
        self._source: Iterator[Buffer] | None = chunks
        self._made: list[Buffer] = []
        self._failed: BaseException | None = None

    def __iter__(self) -> Iterator[Buffer]:
        index = 0
        while True:
            while index < len(self._made):
                yield self._made[index]
                index += 1
            if self._failed is not None:
                raise self._failed
            if self._source is None:
                return
            try:
                chunk = next(self._source, None)
            except BaseException as exc:
                self._failed = exc
                raise
            if chunk is None:
                self._source = None
                return
            self._made.append(chunk)


def pack_many(commands: list[tuple[Arg, ...]]) -> bytes:
    """Several commands in one write (a pipeline)."""
    return b"".join(pack_command(c) for c in commands)


__all__ = [
    "JOIN_BYTES",
    "NO_EXPIRY",
    "WRITE_BYTES",
    "Arg",
    "Buffer",
    "Deferred",
    "Expiry",
    "iter_writes",
    "pack_command",
    "pack_get",
    "pack_many",
    "pack_set",
    "resp_args",
    "set_frame",
    "set_pieces",
    "writes",
]
