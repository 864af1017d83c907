"""RESP encoding of the commands the cache sends: bytes in, bytes out, no I/O.

The core (core.py) builds every request with these functions and the transports
(transport.py) only write the bytes and read the replies, in the sans-IO style of h11.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import hiredis

Arg = bytes | str | int

# RESP-encode one command, in C. (hiredis' stub types the argument as a 1-tuple.)
pack_command: Callable[[tuple[Arg, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]

# GET and SET are built by hand: joining precomputed pieces is about twice as fast as
# pack_command for the commands every cache call sends.
_SET_HEADS: Final = {0: b"*3\r\n$3\r\nSET\r\n$", 2: b"*5\r\n$3\r\nSET\r\n$"}
Expiry = tuple[int, bytes]  # (number of extra arguments, their RESP encoding)
NO_EXPIRY: Final[Expiry] = (0, b"")


def resp_args(*args: bytes) -> bytes:
    """RESP bulk strings for `args`, to append to a command header."""
    return b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def pack_get(name: bytes) -> bytes:
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(name), name)


def pack_set(name: bytes, value: bytes, expiry: Expiry = NO_EXPIRY) -> bytes:
    return b"".join(
        (
            _SET_HEADS[expiry[0]],
            b"%d\r\n" % len(name),
            name,
            b"\r\n$%d\r\n" % len(value),
            value,
            b"\r\n",
            expiry[1],
        )
    )


def pack_many(commands: list[tuple[Arg, ...]]) -> bytes:
    """Several commands in one write (a pipeline)."""
    return b"".join(pack_command(c) for c in commands)


__all__ = [
    "NO_EXPIRY",
    "Arg",
    "Expiry",
    "pack_command",
    "pack_get",
    "pack_many",
    "pack_set",
    "resp_args",
]
