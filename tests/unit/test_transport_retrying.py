"""transport.Retrying: the retry decisions both transports' loops follow, without I/O."""

from __future__ import annotations

import pytest
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from secure_cache.errors import ConfigurationError
from secure_cache.transport import (
    MIN_MAX_REPLY_BYTES,
    RETRY_BACKOFF_BASE_S,
    RETRY_BACKOFF_CAP_S,
    BaseTransport,
    ConnectionMaterial,
    Retrying,
    TransportConfig,
)


class Reloads:
    """on_refused: says whether rereading the material files changed it; counts the calls."""

    def __init__(self, changed: bool) -> None:
        self.changed = changed
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.changed


def _transport(retries: int, changed: bool = False) -> BaseTransport:
    material = ConnectionMaterial(ssl_context=None, username="app", password="x")  # type: ignore[arg-type]
    transport = BaseTransport(TransportConfig("h", 1, 0, material, retries=retries))
    transport.on_refused = Reloads(changed)
    return transport


def _delays(retrying: Retrying, errors: list[BaseException]) -> list[float]:
    """Drive the loop as a transport does: each attempt fails with the next error."""
    delays = []
    while (delay := retrying.delay()) is not None:
        delays.append(delay)
        with retrying.attempt():
            raise errors.pop(0)
    return delays


def test_transient_failures__get_retries_more_attempts_the_first_at_once() -> None:
    retrying = Retrying(_transport(3), RedisConnectionError("reset"), 3)
    delays = _delays(retrying, [RedisTimeoutError("t")] * 3)
    assert len(delays) == 3
    assert delays[0] == 0.0
    assert all(RETRY_BACKOFF_BASE_S / 2 <= d <= RETRY_BACKOFF_CAP_S for d in delays[1:])
    assert isinstance(retrying.error, RedisTimeoutError)  # the last failure is reported
    assert retrying.unavailable().kind == "timeout"


def test_no_retries__gives_up_at_once() -> None:
    retrying = Retrying(_transport(0), RedisConnectionError("reset"), 0)
    assert retrying.delay() is None
    assert retrying.unavailable().kind == "connection"


@pytest.mark.parametrize("changed", [True, False])
def test_a_refusal__gets_one_attempt_only_when_the_material_changed(changed: bool) -> None:
    transport = _transport(2, changed=changed)
    retrying = Retrying(transport, AuthenticationError("WRONGPASS"), 2)
    delays = _delays(retrying, [AuthenticationError("WRONGPASS")] * 2)
    assert delays == ([0.0] if changed else [])
    assert retrying.unavailable().kind == "auth"
    assert transport.on_refused.calls == 1  # type: ignore[attr-defined]


def test_a_refusal_then_a_transient_failure__the_transient_budget_still_applies() -> None:
    retrying = Retrying(_transport(1, changed=True), AuthenticationError("WRONGPASS"), 1)
    delays = _delays(retrying, [RedisConnectionError("reset"), RedisConnectionError("reset")])
    assert delays == [0.0, 0.0]  # the reload's attempt, then the one transient retry


def test_an_attempt__lets_other_errors_through() -> None:
    retrying = Retrying(_transport(1), RedisConnectionError("reset"), 1)
    with pytest.raises(ValueError, match="bug"), retrying.attempt():
        raise ValueError("bug")


def test_a_reply_limit_below_one_socket_read__is_refused_with_what_to_pass() -> None:
    material = ConnectionMaterial(ssl_context=None, username="app", password="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="reply_limit_bytes"):
        TransportConfig("h", 1, 0, material, max_reply_bytes=MIN_MAX_REPLY_BYTES - 1)
    TransportConfig("h", 1, 0, material, max_reply_bytes=MIN_MAX_REPLY_BYTES)
