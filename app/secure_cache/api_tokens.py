"""The HTTP API's bearer tokens: which ones are accepted now, and rotating them in place.

A token rotates in two phases, like the Redis passwords (infra/providers/secrets.py): the
stack adds a new token (HTTP_API_TOKEN_FILE) and keeps the old one accepted beside it
(HTTP_API_PREVIOUS_TOKENS_FILE); clients switch to the new one; the retire's `up`
(scripts/rotate.sh api-token-retire, no other) empties the second file and the old token is
refused. The service never restarts for it: the token files
are watched the way the cache client watches its material (material.MaterialFiles, one stat
per file at most once per interval, one clock read per request), and read at once when a
presented token is refused, so a client that just read the new token from the file is let
in without waiting for the next timed check (a refusal costs a stat of the two files; they are
read only when they changed, so a flood of wrong tokens reads nothing). A retired token is
refused from the first check after its file changed (within `interval` seconds).

The comparison runs hmac.compare_digest against every accepted token, without stopping at a
match, so how long it takes says nothing about which token (if any) matched or how much of
one. No token, nor any part of one, is logged or put in an exception.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable

from secure_cache.core import DEFAULT_RELOAD_INTERVAL_S
from secure_cache.errors import ConfigurationError
from secure_cache.material import MaterialFiles
from secure_cache.settings import ServiceSettings

logger = logging.getLogger("secure_cache.service")


def token_accepted(presented: bytes, accepted: Iterable[bytes]) -> bool:
    """Is `presented` one of `accepted`? Compares with every one, in constant time each."""
    found = False
    for token in accepted:
        # `|` rather than `or`: every token is compared whatever matched before.
        found |= hmac.compare_digest(presented, token)
    return found


class ApiTokens:
    """The tokens the API accepts, kept current with their files."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float | None = DEFAULT_RELOAD_INTERVAL_S,
    ) -> None:
        self._files = MaterialFiles(settings, clock=clock, interval=interval)
        self._tokens = _encoded(settings)
        self._previous = len(settings.previous_api_tokens)

    @property
    def count(self) -> int:
        """How many tokens are accepted now (2 while one rotates in)."""
        return len(self._tokens)

    @property
    def previous(self) -> int:
        """How many previous tokens are accepted beside the current one (0 outside a
        rotation): `secure_cache_api_previous_tokens`, ApiTokenRotationUnfinished. As of the
        latest check of the files; a scrape of /metrics runs one, being a request."""
        return self._previous

    def accepts(self, presented: bytes) -> bool:
        """Check `presented` against the current tokens, looking at their files first when a
        timed check is due, and once more at once when it is refused."""
        if self._files.due():
            self._reload()
        if token_accepted(presented, self._tokens):
            return True
        return self._reload() and token_accepted(presented, self._tokens)

    def _reload(self) -> bool:
        """Adopt changed token files; True when the accepted tokens changed."""
        try:
            found = self._files.poll()
        except ConfigurationError as exc:
            # The old tokens stay in force; the files are read again when they change again.
            logger.warning("event=api_token_reload_failure problems=%d", len(exc.problems))
            return False
        if found is None:
            return False
        settings, _changed, snapshot = found
        tokens = _encoded(settings)
        self._files.applied(settings, snapshot)
        self._previous = len(settings.previous_api_tokens)
        if tokens == self._tokens:
            return False
        self._tokens = tokens
        logger.info("event=api_token_reload accepted=%d", len(tokens))
        return True


def _encoded(settings: ServiceSettings) -> tuple[bytes, ...]:
    return tuple(t.encode("utf-8") for t in settings.api_tokens)


__all__ = ["ApiTokens", "token_accepted"]
