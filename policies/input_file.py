"""Read a file the user names on `python -m policies.check`'s command line, or say why not.

A FIFO with no writer, /dev/zero or a directory would block the checker forever, read until
memory runs out, or fail with a bare OSError; each is one line instead (`InputFileError`).
The same rules as the cache client's settings files (app/secure_cache/settings.py read_file),
with a limit that fits a whole stack's records.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any


class InputFileError(ValueError):
    """The file cannot be used; the message names it and says what to pass instead."""


def read_text(path: Path, what: str, limit: int) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes; `what` names it in errors."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of blocking.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise InputFileError(f"{what} {path} is a directory; pass the file itself")
        raise InputFileError(
            f"{what} {path} is not a regular file (a pipe, socket or device); write it to a "
            f"file and pass that"
        )
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputFileError(
            f"{what} {path} is larger than {limit // (1 << 20)} MiB, far more than a {what} "
            f"holds; check that it is the right file"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"{what} {path} is not UTF-8 text; pass a JSON file") from None


def parse_json(text: str, path: Path, what: str) -> Any:
    """json.loads of a file read with read_text. json.JSONDecodeError and RecursionError go to
    the caller, which names the fix for its kind of file; a number of more than 4300 digits
    (sys.get_int_max_str_digits()), which int() refuses with a plain ValueError the callers
    did not expect ("could not process this input (ValueError)"), is an InputFileError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:
        raise InputFileError(
            f"{what} {path} holds a number of thousands of digits, which no {what} has; "
            "check that it is the right file"
        ) from None
