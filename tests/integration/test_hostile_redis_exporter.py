"""The Redis exporter against a compromised or replaced Redis (tests/support/hostile_redis.py):
mutual TLS and AUTH succeed, then INFO and ACL LOG are answered with crafted replies.

What must hold: any reply the exporter cannot read as INFO's or ACL LOG's is a failed scrape
(`redis_up 0` and one log line naming the failure's class), never an exception out of
/metrics, never the server's text in a log line or a label, and never a reply read whole
whatever its length.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from secure_cache.redis_exporter import ExporterSettings, RedisCollector, connect
from tests.support.hostile_redis import HostileRedis, array, bulk, exporter_environ, hostile_redis


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileRedis]:
    with hostile_redis() as server:
        yield server


@pytest.fixture
def scrape(hostile: HostileRedis) -> Iterator[object]:
    client = connect(ExporterSettings.from_env(exporter_environ(hostile)))
    registry = CollectorRegistry()
    registry.register(RedisCollector(client))

    def run() -> str:
        return generate_latest(registry).decode()

    try:
        yield run
    finally:
        hostile.answer = hostile.honest
        client.close()


def _answer(hostile: HostileRedis, *, info: bytes | None = None, acl: bytes | None = None) -> None:
    def answer(command: list[bytes]) -> bytes | None:
        if command[0] == b"INFO" and info is not None:
            return info
        if command[0] == b"ACL" and acl is not None:
            return acl
        return hostile.honest(command)  # type: ignore[return-value]

    hostile.answer = answer


def _entry(**fields: bytes) -> bytes:
    return array(*(part for name, value in fields.items() for part in (bulk(name.encode()), value)))


def test_an_honest_server__is_up(hostile: HostileRedis, scrape: object) -> None:
    assert "redis_up 1.0" in scrape()  # type: ignore[operator]


HOSTILE = [
    ("errorstat-count-not-a-number", {"info": bulk(b"errorstat_ERR:count=abc\x1b[2J,x=1\r\n")}),
    ("info-an-integer", {"info": b":5\r\n"}),
    ("info-an-array", {"info": array(bulk(b"uptime_in_seconds:1"))}),
    ("acl-log-count-not-a-number", {"acl": array(_entry(reason=bulk(b"auth"), count=bulk(b"x")))}),
    (
        "acl-log-count-an-array",
        {"acl": array(_entry(reason=bulk(b"auth"), count=array(b":1\r\n")))},
    ),
    ("info-error-with-escapes", {"info": b"-ERR \x1b]0;owned\x07 password=hunter2\r\n"}),
]


@pytest.mark.parametrize(("label", "replies"), HOSTILE, ids=[label for label, _ in HOSTILE])
def test_a_reply_that_is_not_info_s_or_acl_log_s__is_a_failed_scrape_logged_by_class(
    hostile: HostileRedis,
    scrape: object,
    caplog: pytest.LogCaptureFixture,
    label: str,
    replies: dict[str, bytes],
) -> None:
    # On main the first five raised ValueError, AttributeError or TypeError out of collect(),
    # failing the whole /metrics answer instead of reporting redis_up 0.
    _answer(hostile, **replies)
    with caplog.at_level(logging.WARNING, logger="secure_cache.redis_exporter"):
        text = scrape()  # type: ignore[operator]
    assert "redis_up 0.0" in text
    assert "\x1b" not in text
    assert "hunter2" not in text
    # Only the exporter's own: a record of another logger (asyncio's, from an earlier test's
    # loop collected meanwhile) may land here too.
    lines = [r.getMessage() for r in caplog.records if r.name == "secure_cache.redis_exporter"]
    assert lines
    assert all(line.startswith("event=redis_scrape_failed error=") for line in lines)
    assert all(line.isprintable() and "hunter2" not in line for line in lines), lines


def test_an_info_reply_longer_than_any_redis_sends__is_refused_unread(
    hostile: HostileRedis, scrape: object
) -> None:
    # On main redis-py read it whole and parse_info split it: a 16 MiB INFO took the exporter
    # from 171 to 418 MiB, past its 96 MiB container limit.
    _answer(hostile, info=bulk(b"uptime_in_seconds:1\r\n" * 50_000))  # 1 MiB
    assert "redis_up 0.0" in scrape()  # type: ignore[operator]
    hostile.answer = hostile.honest
    assert "redis_up 1.0" in scrape()  # type: ignore[operator]  # a fresh connection
