"""Transactions survive a Redis restart: the AOF replays them under the stack's own ACL.

Redis 7.0 replays its append-only file as a client running as the `default` user, and EXEC
checks each queued command's ACL again (redis/redis#14541, fixed upstream after 7.0; valkey
#3983). With `default` off and `-@all`, every MULTI/EXEC written since the last AOF rewrite is
refused on load, silently: the rotation pass's transactions (SET under the new key, DEL of the
old one) vanish on any restart, and once the old key is retired those entries are lost. The
server here runs the stack's redis.conf and ACL (appendonly, `default` off), is killed, and is
started again from its AOF.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.support.cache_env import raw_client
from tests.support.tls_redis import TlsRedisServer


def test_a_transaction_is_still_there_after_redis_is_killed_and_started_again(
    tls_redis_factory: Callable[..., TlsRedisServer],
) -> None:
    server = tls_redis_factory()
    prefix = server.key_prefix
    client = server.app_redis()
    client.set(f"{prefix}old", b"sealed under the old key")
    client.close()
    # What the rotation pass (its own ACL user) sends for one entry: the new name written, the
    # old one deleted.
    rotation = raw_client(server, rotation=True)
    with rotation.pipeline(transaction=True) as pipe:
        pipe.set(f"{prefix}new", b"sealed under the new key", nx=True)
        pipe.delete(f"{prefix}old")
        pipe.execute()
    rotation.close()
    time.sleep(1.5)  # appendfsync everysec: the AOF holds the transaction
    server.kill()
    server.start()
    client = server.app_redis()
    assert client.get(f"{prefix}new") == b"sealed under the new key"
    assert client.get(f"{prefix}old") is None
    client.close()
    assert "AOF-loading-client" not in server.log_file.read_text()
