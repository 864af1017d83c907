"""Watching the material files: has a certificate, key, CA bundle or secret file changed?

Deployments rotate material by rewriting the mounted files (DESIGN: the app reloads its
files). A check stats every file the settings were read from and compares device, inode,
size and modification time with the last state it applied, so a rename-into-place, a
symlink swap and an in-place rewrite are all seen. The clients call `due()` on every
command - one clock read - and `poll()` at most once per interval, or at once when Redis
refused the credentials or certificate; the HTTP API does the same with its bearer-token
files (api_tokens.py), on every request and at once when a token is refused. The file I/O
is here; what a change means is decided by core.CacheCore.plan_reload for the client and
by api_tokens.ApiTokens for the HTTP API.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Generic, Protocol, Self, TypeVar

from secure_cache.errors import ConfigurationError

Signature = tuple[int, int, int, int] | None  # (device, inode, size, mtime ns); None: missing
Snapshot = tuple[Signature, ...]


class FileBacked(Protocol):
    """Settings read (partly) from files: the client's Settings, the service's ServiceSettings."""

    @property
    def watched_files(self) -> tuple[str, ...]: ...

    def reread(self) -> Self:
        """The same sources read again; ConfigurationError when they do not validate."""
        ...


_S = TypeVar("_S", bound=FileBacked)


def _signature(path: str) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class MaterialFiles(Generic[_S]):
    """The files `settings` came from, and the state of them that was last applied."""

    def __init__(self, settings: _S, *, clock: Callable[[], float], interval: float | None) -> None:
        self._paths = settings.watched_files
        self._clock = clock
        # None (or no file to watch): never checked on a timer; refusals still check.
        self._interval = interval if interval is not None and self._paths else None
        self._next = clock() + self._interval if self._interval is not None else float("inf")
        self._settings = settings
        self._applied = self._snapshot()
        self._failed: Snapshot | None = None

    def _snapshot(self) -> Snapshot:
        return tuple(_signature(p) for p in self._paths)

    def due(self) -> bool:
        """Is a timed check due? (The hot path: one clock read and a compare.)"""
        return self._clock() >= self._next

    def poll(self) -> tuple[_S, frozenset[str], Snapshot] | None:
        """Stat the files; when they changed, read the settings again.

        Returns (settings, changed paths, snapshot to pass to `applied`), or None when
        nothing changed. Raises ConfigurationError when the files changed into something
        that does not validate (e.g. a certificate written before its key): the caller keeps
        its material, and the same state is not reread until the files change again.
        """
        if self._interval is not None:
            self._next = self._clock() + self._interval
        snapshot = self._snapshot()
        if snapshot in (self._applied, self._failed):
            return None
        try:
            settings = self._settings.reread()
        except ConfigurationError:
            self._failed = snapshot
            raise
        changed = frozenset(
            path
            for path, now, before in zip(self._paths, snapshot, self._applied, strict=True)
            if now != before
        )
        return settings, changed, snapshot

    def applied(self, settings: _S, snapshot: Snapshot) -> None:
        self._settings = settings
        self._applied = snapshot
        self._failed = None

    def rejected(self, snapshot: Snapshot) -> None:
        """The reread settings could not be used (e.g. the TLS context failed to load)."""
        self._failed = snapshot


__all__ = ["FileBacked", "MaterialFiles"]
