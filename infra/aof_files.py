"""Which files of Redis's data directory may still hold writes from before its last AOF rewrite.

After `BGREWRITEAOF` (scripts/rotate.sh, at the end of a data-key rotation) Redis 7 writes a
new base and a new incremental part, names them in `appendonly.aof.manifest`, marks the older
parts history (`type h`) and deletes those from a background thread (unless
`aof-disable-auto-gc yes`). So once the rewrite is done, every file under `appendonlydir` is
the manifest itself or a part it names as base (`b`) or incremental (`i`); anything else
there, and any file beside `appendonlydir` (a `dump.rdb`: the stack sets `save ""`, so one
comes only from an older configuration, a `SHUTDOWN SAVE` or a copy; a `temp-*` file of a
rewrite or save that died), may hold envelopes of the retired data key. The names come from
Redis's defaults, which infra/redis_conf.py keeps (it sets neither `appendfilename` nor
`appenddirname`). Pure: the probe (infra/rotation_probe.py) reads the listing and the
manifest in Redis's container.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Final

DATA_DIR: Final = "/data"
AOF_DIR: Final = "appendonlydir"
MANIFEST: Final = "appendonly.aof.manifest"
# The manifest's file types that hold what Redis holds now: base and incremental.
LIVE_TYPES: Final = frozenset({"b", "i"})


class ManifestError(ValueError):
    """The manifest is not what Redis 7 writes."""


def manifest_parts(text: str) -> dict[str, str]:
    """The manifest's files, each to its type (`b`, `i`, `h`). A line is `file NAME seq N
    type T` (Redis quotes a name with blanks, as a shell would)."""
    parts: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise ManifestError(f"unreadable manifest line {line[:80]!r}: {exc}") from None
        fields = dict(zip(words[::2], words[1::2], strict=False))
        if "file" not in fields or "type" not in fields:
            raise ManifestError(f"manifest line without file and type: {line[:80]!r}")
        parts[fields["file"]] = fields["type"]
    if not any(kind == "b" for kind in parts.values()):
        raise ManifestError("the manifest names no base file")
    return parts


def base_file(manifest: str) -> str:
    """The base file the manifest names: a new one after each rewrite."""
    return next(name for name, kind in manifest_parts(manifest).items() if kind == "b")


def left_behind(files: Iterable[str], manifest: str) -> list[str]:
    """Files (paths under DATA_DIR) that are neither the manifest nor a part it names as
    base or incremental: older than the last rewrite, or outside the AOF."""
    live = {name for name, kind in manifest_parts(manifest).items() if kind in LIVE_TYPES}
    kept = {f"{AOF_DIR}/{name}" for name in (*live, MANIFEST)}
    return sorted(path for path in files if path not in kept)


__all__ = [
    "AOF_DIR",
    "DATA_DIR",
    "LIVE_TYPES",
    "MANIFEST",
    "ManifestError",
    "base_file",
    "left_behind",
    "manifest_parts",
]
