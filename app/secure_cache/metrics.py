"""Security event counters and their log lines.

Each event increments one counter and writes one plain, structured log line such as

    event=integrity_failure key=cache:1f2e3d4c:9a8b...

`key` is only ever the opaque stored name (a keyed hash), never the caller's key, and no line
carries a value or a secret. Counters are process-local and reported by status().

An event of _ONCE is logged only the first time a process records it, with its `note` (what
to do); every later one is counted, not logged: `newer_envelope` comes with every read of an
entry a newer secure-cache wrote, for as long as a rollback lasts, and its line says the same
each time.
"""

from __future__ import annotations

import logging
import threading
from typing import Final, Literal

Event = Literal[
    "auth_failure",
    "tls_failure",
    "integrity_failure",
    "newer_envelope",
    "fallback",
    "reconnect",
    "connection_failure",
    "timeout",
    "acl_denied",
    "command_error",
    "replay_failure",
    "material_reload",
    "reload_failure",
]

# event -> (counter name in status(), log level)
_EVENTS: Final[dict[str, tuple[str, int]]] = {
    "auth_failure": ("auth_failures", logging.ERROR),
    "tls_failure": ("tls_failures", logging.ERROR),
    "integrity_failure": ("integrity_failures", logging.WARNING),
    "newer_envelope": ("newer_envelopes", logging.WARNING),
    "fallback": ("fallbacks", logging.WARNING),
    "reconnect": ("reconnects", logging.INFO),
    "connection_failure": ("connection_failures", logging.WARNING),
    "timeout": ("timeouts", logging.WARNING),
    "acl_denied": ("acl_denied", logging.ERROR),
    "command_error": ("command_errors", logging.WARNING),
    "replay_failure": ("replay_failures", logging.WARNING),
    "material_reload": ("material_reloads", logging.INFO),
    "reload_failure": ("reload_failures", logging.WARNING),
}
COUNTERS: Final = tuple(counter for counter, _ in _EVENTS.values())
_ONCE: Final = frozenset({"newer_envelope"})

logger = logging.getLogger("secure_cache")


class SecurityEvents:
    """Thread-safe counters; record() also logs the event."""

    def __init__(self, log: logging.Logger = logger) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)

    def record(
        self, event: Event, *, key: bytes | None = None, note: str = "", **fields: str
    ) -> None:
        """Count `event` and log it with `key` (an opaque stored name), plain `fields` and
        `note` (a fixed sentence of the caller's, never data), after ` -- `."""
        counter, level = _EVENTS[event]
        with self._lock:
            self._counts[counter] += 1
            first = self._counts[counter] == 1
        if (first or event not in _ONCE) and self._log.isEnabledFor(level):
            parts = [f"event={event}"]
            if key is not None:
                parts.append(f"key={key.decode('ascii', 'replace')}")
            parts.extend(f"{name}={_plain(value)}" for name, value in fields.items())
            if note:
                parts.append(f"-- {note}")
            self._log.log(level, " ".join(parts))

    def count(self, counter: str) -> int:
        return self._counts[counter]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def _plain(text: str) -> str:
    """One token: ASCII, no spaces or newlines, so a log line stays one parseable line."""
    cleaned = "".join(c if c.isascii() and c.isprintable() and c != " " else "_" for c in text)
    return cleaned[:200]


__all__ = ["COUNTERS", "Event", "SecurityEvents", "logger"]
