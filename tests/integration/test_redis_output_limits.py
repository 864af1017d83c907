"""A client cannot make Redis build an unbounded reply (infra/redis_conf.py, REDIS-14).

The app's ACL allows MGET, and MGET may name one key any number of times: with the largest
value the app stores (about 1 MiB sealed), `MGET k k k ...` asks Redis for gigabytes in one
reply, past its container's memory limit. The server started here runs the stack's own
redis.conf; the abusive command gets its connection closed, Redis keeps serving everyone else,
and a reply of legitimate size still arrives whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from infra.redis_conf import VALUE_LIMIT_BYTES, output_limit_bytes
from tests.support.tls_redis import TlsRedisServer

# The largest value the app accepts, stored once; the reply repeats it.
VALUE = b"v" * VALUE_LIMIT_BYTES


def app_client(server: TlsRedisServer) -> redis.Redis:
    # The closed connection must surface, not be retried.
    return server.app_redis(socket_timeout=30, retry=Retry(NoBackoff(), 0))


@pytest.fixture
def large_key(tls_redis: TlsRedisServer) -> Iterator[str]:
    key = f"{tls_redis.key_prefix}large-output"
    client = app_client(tls_redis)
    client.set(key, VALUE)
    yield key
    client.delete(key)
    client.close()


def test_mget_of_one_large_key_many_times__is_cut_off_and_redis_keeps_serving(
    tls_redis: TlsRedisServer, large_key: str
) -> None:
    repeats = 4 * output_limit_bytes() // len(VALUE)  # a reply four times the hard limit
    abuser = app_client(tls_redis)
    with pytest.raises(RedisConnectionError):
        abuser.mget([large_key] * repeats)
    abuser.close()
    bystander = app_client(tls_redis)
    assert bystander.ping()
    assert bystander.get(large_key) == VALUE
    assert "for overcoming of output buffer limits" in tls_redis.log_file.read_text()


def test_a_reply_of_legitimate_size__arrives_whole(
    tls_redis: TlsRedisServer, large_key: str
) -> None:
    repeats = output_limit_bytes() // len(VALUE) // 4  # a quarter of the hard limit
    client = app_client(tls_redis)
    assert client.mget([large_key] * repeats) == [VALUE] * repeats
    client.close()
