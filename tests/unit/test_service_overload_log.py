"""Connections closed at the HTTP connection limit are logged as counts, at most once per
interval: a line per connection let a flood of connections (hundreds a second from one host
process, attack pass of 2026-12-01) rotate the container's whole log away within minutes."""

from __future__ import annotations

import logging

import pytest

from secure_cache.service import OVERLOAD_LOG_INTERVAL_S, _OverloadLog


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "secure_cache.service"]


def test_a_flood_within_one_interval_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    log = _OverloadLog()
    with caplog.at_level(logging.WARNING, logger="secure_cache.service"):
        for step in range(1000):
            log.record(100.0 + step / 1000, evicted=step % 2 == 0, connections=401)
    assert _lines(caplog) == ["event=http_overloaded connections=401 idle_closed=1 refused=0"]


def test_the_next_line_carries_the_counts_since_the_last(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = _OverloadLog()
    with caplog.at_level(logging.WARNING, logger="secure_cache.service"):
        log.record(0.0, evicted=True, connections=401)
        for _ in range(3):
            log.record(1.0, evicted=True, connections=401)
        log.record(2.0, evicted=False, connections=401)
        log.record(OVERLOAD_LOG_INTERVAL_S, evicted=False, connections=402)
    assert _lines(caplog) == [
        "event=http_overloaded connections=401 idle_closed=1 refused=0",
        "event=http_overloaded connections=402 idle_closed=3 refused=2",
    ]
