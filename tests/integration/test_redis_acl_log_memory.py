"""The ACL LOG cannot grow Redis past its memory budget (infra/redis_conf.py, REDIS-14).

Redis keeps each ACL denial's argument whole: the username typed at a failed AUTH, the key a
NOPERM refused. An unauthenticated client's arguments are capped at 16 KiB by Redis itself,
but any authenticated connection (the app's, the exporter's) may send arguments up to
proto-max-bulk-len (2 MiB here). Each such failed AUTH held 2.1 MiB (Redis 7.0.15; 128 with
1 MiB usernames: 162 MiB), so Redis's default of 128 entries meant about 270 MiB outside
maxmemory: every write refused with OOM, and past the container's limit (2 x maxmemory +
48 MiB then) the kernel's OOM killer. The server started here runs the stack's own redis.conf.
"""

from __future__ import annotations

import secrets
import socket
import time

import pytest
import redis

from infra.redis_conf import (
    ACL_LOG_MAX_LEN,
    VALUE_LIMIT_BYTES,
    acl_log_limit_bytes,
    bulk_limit_bytes,
)
from tests.integration.conftest import ServerFactory
from tests.support.tls_redis import OBSERVER, TlsRedisServer, observer_acl

OBSERVER_PASSWORD = secrets.token_urlsafe(24)  # this run's only


def _resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _failed_auths_as_the_app(server: TlsRedisServer, count: int) -> list[bytes]:
    """Log in as the app, then send `count` AUTHs with distinct usernames of the largest
    argument size; the replies' first lines."""
    context = server.client_ssl_context()
    raw = socket.create_connection((server.host, server.port), timeout=30)
    replies = []
    with context.wrap_socket(raw, server_hostname="localhost") as tls, tls.makefile("rb") as f:
        password = server.material.app_password.encode()
        tls.sendall(_resp(b"AUTH", b"app", password))
        replies.append(f.readline())
        size = bulk_limit_bytes(VALUE_LIMIT_BYTES)  # proto-max-bulk-len: the largest argument
        for i in range(count):
            username = b"%08d" % i + b"u" * (size - 8)
            tls.sendall(_resp(b"AUTH", username, b"wrong"))
            replies.append(f.readline())
    return replies


def _wait_until_only_this_client_is_connected(observer: redis.Redis) -> None:
    """The attacker's connection (and its query buffer, client memory that maxmemory-clients
    bounds) is gone, so what remains grown is the log's."""
    for _ in range(100):
        if len(observer.client_list()) == 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"clients still connected: {observer.client_list()}")


def test_failed_auths_with_the_largest_usernames__grow_redis_only_within_the_acl_log_budget(
    tls_redis_factory: ServerFactory,
) -> None:
    server = tls_redis_factory(extra_acl=observer_acl(OBSERVER_PASSWORD))
    observer = server.app_redis(username=OBSERVER, password=OBSERVER_PASSWORD)
    before = int(observer.info("memory")["used_memory"])
    replies = _failed_auths_as_the_app(server, 3 * ACL_LOG_MAX_LEN)
    assert replies[0] == b"+OK\r\n"
    assert all(r.startswith(b"-WRONGPASS") for r in replies[1:]), "positive control"
    _wait_until_only_this_client_is_connected(observer)
    grown = int(observer.info("memory")["used_memory"]) - before
    entries = observer.acl_log(count=1000)
    observer.close()
    assert len(entries) == ACL_LOG_MAX_LEN, "the log keeps its newest entries only"
    assert grown <= acl_log_limit_bytes(), f"Redis grew by {grown / 2**20:.1f} MiB"


def test_the_acl_log_still_records_a_denial(tls_redis_factory: ServerFactory) -> None:
    """The forensic record the alert runbook points to (monitoring/alerts.yml) stays."""
    server = tls_redis_factory(extra_acl=observer_acl(OBSERVER_PASSWORD))
    app = server.app_redis()
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.get("outside-the-prefix")
    observer = server.app_redis(username=OBSERVER, password=OBSERVER_PASSWORD)
    entries = observer.acl_log()
    observer.close()
    app.close()
    assert [(e["reason"], e["username"]) for e in entries] == [("key", "app")]
