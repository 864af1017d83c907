"""The exception tree of secure_cache.

    SecureCacheError
    +-- ConfigurationError   bad settings; raised once, at construction, listing every problem
    +-- IntegrityError       a stored value failed authentication (crypto.py only)
    +-- BackendUnavailable   Redis could not be reached (transport.py; the client turns it
                             into the memory fallback, so cache callers never see it)
    +-- CommandRejected      Redis answered with an error (e.g. NOPERM from the ACL)

No message ever contains a secret, a cached value or a logical key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

FailureKind = Literal["auth", "tls", "timeout", "connection", "pool"]


class SecureCacheError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigurationError(SecureCacheError):
    """The configuration cannot work; `problems` lists each fault with its fix."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(one_line(p) for p in problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"secure_cache configuration is invalid ({count} {noun}):\n{lines}")


def one_line(problem: str) -> str:
    """A problem as one printable line: a newline or an escape sequence that came with a value
    (REDIS_TLS_CA_CERT=$'/certs/\\e[2J') is shown escaped, never sent to the terminal or log.
    infra/cli.py `printable` escapes what containers write with it too."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in problem)


# How much of a value from the environment a message quotes: a user name may be 1024
# characters (settings.MAX_CREDENTIAL_CHARS), a path thousands; the prefix names it.
SHOWN_CHARS: Final = 64


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """`value` as a message quotes it: at most `limit` characters of it, escaped as
    `one_line` does, and its length when that cut it (the authentication line echoed a
    1024-character REDIS_USERNAME whole)."""
    head = one_line(value[:limit])
    return head if len(value) <= limit else f"{head}... ({len(value)} characters)"


class IntegrityError(SecureCacheError):
    """A stored value is not a valid envelope for this key and keyring.

    Deliberately opaque (like Fernet's InvalidToken): tampered, truncated, swapped, foreign,
    wrong-key and not-an-envelope values are indistinguishable to the caller, so there is no
    oracle. The client turns it into a miss plus a counted security event.
    """

    MESSAGE: Final = "stored value failed authentication"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class BackendUnavailable(SecureCacheError):
    """Redis could not serve a command; `kind` says why (auth, tls, timeout, connection)."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        self.kind: FailureKind = kind
        super().__init__(f"redis unavailable ({kind}): {one_line(detail)}")


class CommandRejected(SecureCacheError):
    """Redis refused a command; `acl` is true when the ACL denied it (NOPERM)."""

    def __init__(self, *, acl: bool, detail: str) -> None:
        self.acl = acl
        # `detail` quotes Redis's error line, which a compromised or replaced server writes:
        # escaped, it can neither drive the terminal the CLI prints it to nor start a line of
        # its own in a log (tests/integration/test_hostile_redis.py).
        super().__init__(
            f"redis rejected the command ({'acl' if acl else 'error'}): {one_line(detail)}"
        )


__all__ = [
    "BackendUnavailable",
    "CommandRejected",
    "ConfigurationError",
    "FailureKind",
    "IntegrityError",
    "SecureCacheError",
    "one_line",
    "shown",
]
