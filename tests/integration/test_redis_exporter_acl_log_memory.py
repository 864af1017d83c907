"""A full ACL LOG of the largest denials costs the exporter no more than a small one.

Any authenticated identity (the app's) can fill Redis's ACL LOG with 8 denials (acllog-max-len)
of a 2 MiB argument each. redis-py builds a reply whole, so each scrape held the 16 MiB log
two and three times over: the real exporter under scrapes peaked at 97 MiB, past its 96 MiB
container limit (infra/components/exporter.py). The exporter reads ACL LOG with
BoundedRespReader (app/secure_cache/redis_exporter.py), which drops long strings as they
arrive; the Python allocations of one scrape (tracemalloc's peak) stay under one argument.
"""

from __future__ import annotations

import tracemalloc

import pytest
import redis
from prometheus_client import generate_latest

from infra.redis_conf import ACL_LOG_MAX_LEN, VALUE_LIMIT_BYTES, bulk_limit_bytes
from secure_cache.redis_exporter import connect, registry_for
from tests.support.exporter_redis import ExporterRedis

ARGUMENT_BYTES = bulk_limit_bytes(VALUE_LIMIT_BYTES) - 64  # under proto-max-bulk-len


def test_a_scrape_of_a_full_acl_log__holds_less_than_one_of_its_arguments(
    exporter_redis: ExporterRedis,
) -> None:
    app = exporter_redis.server.app_redis()
    for i in range(ACL_LOG_MAX_LEN):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.get(b"other:%d" % i + b"k" * ARGUMENT_BYTES)
    registry = registry_for(connect(exporter_redis.settings()))
    generate_latest(registry)  # connect and authenticate outside the measurement
    tracemalloc.start()
    try:
        body = generate_latest(registry)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert b'redis_acl_log_entries{reason="key"} %d.0' % ACL_LOG_MAX_LEN in body
    assert b'redis_acl_log_events{reason="key"} %d.0' % ACL_LOG_MAX_LEN in body
    assert peak < ARGUMENT_BYTES, f"one scrape held {peak >> 20} MiB"


def test_a_denial_of_a_name_that_is_not_utf8__is_still_scraped(
    exporter_redis: ExporterRedis,
) -> None:
    """Any identity can put a short non-UTF-8 key name into ACL LOG (the app: GET other:\\xff);
    the reader keeps short fields, and decoding one strictly failed every scrape (no redis_up,
    no WRONGPASS or NOPERM counted) until the entry left the log."""
    app = exporter_redis.server.app_redis()
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.get(b"other:\xff\xfe")
    body = generate_latest(registry_for(connect(exporter_redis.settings())))
    assert b"\nredis_up 1.0\n" in body
    assert b'redis_acl_log_entries{reason="key"} 1.0' in body
