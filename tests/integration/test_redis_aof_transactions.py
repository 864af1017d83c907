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

EXEC = b"*1\r\n$4\r\nEXEC\r\n"  # the transaction's last command as the AOF records it
AOF_WAIT_S = 10.0


def _wait_until_the_aof_holds_the_exec(server: TlsRedisServer) -> None:
    """Until Redis has written the EXEC to its append-only file. With appendfsync everysec,
    Redis 7.0 answers EXEC first and postpones its AOF write (up to 2 s) while a background
    fsync of earlier writes runs: on a busy disk a fixed 1.5 s wait saw the EXEC arrive 1.8 s
    after the reply. What was written survives a SIGKILL (it is in the page cache)."""
    aof_dir = server.data_dir / "appendonlydir"
    deadline = time.monotonic() + AOF_WAIT_S
    while not any(EXEC in f.read_bytes() for f in aof_dir.glob("*.aof")):
        if time.monotonic() > deadline:
            names = sorted(f.name for f in aof_dir.glob("*"))
            raise AssertionError(f"no EXEC in the AOF after {AOF_WAIT_S:.0f} s; {aof_dir}: {names}")
        time.sleep(0.02)


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
    _wait_until_the_aof_holds_the_exec(server)
    server.kill()
    server.start()
    client = server.app_redis()
    assert client.get(f"{prefix}new") == b"sealed under the new key"
    assert client.get(f"{prefix}old") is None
    client.close()
    assert "AOF-loading-client" not in server.log_file.read_text()
