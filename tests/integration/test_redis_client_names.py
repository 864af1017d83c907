"""No identity can name its connection (infra/redis_conf.py, `rename-command HELLO ""`).

Redis runs HELLO for every connection whatever its ACL (it is flagged `no_auth`, like AUTH),
and `HELLO 2 AUTH <user> <password> SETNAME <name>` names the connection without the CLIENT
grant no stack user has. Redis 7.0 keeps the name for the connection's life, in used_memory
but not in what maxmemory-clients counts, and does not bound its length below
proto-max-bulk-len (2 MiB here). Two things followed, both shown here on a real server with
the stack's own redis.conf and ACL:
- the app's identity could hold 2 MiB per connection outside every client limit: 40 of them
  took used_memory to 110-124 MiB against a maxmemory of 64 MiB, every write refused with OOM
  (512 connections would hold 1 GiB, past the container's memory limit);
- every ACL LOG entry carries its client's name, so eight denials from named connections made
  the exporter's `ACL LOG` reply larger than the 32 MiB output-buffer limit: Redis closed the
  exporter's connection at every scrape (`redis_up 0`, and no WRONGPASS or NOPERM counted).
Nothing the stack runs sends HELLO (redis-py and the app speak RESP2 and authenticate with
AUTH; redis-cli sends it only with -3), so the command is renamed away.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import redis
from prometheus_client import generate_latest

from infra.redis_conf import ACL_LOG_MAX_LEN, VALUE_LIMIT_BYTES, bulk_limit_bytes
from secure_cache.redis_exporter import connect, registry_for
from tests.integration.conftest import ServerFactory
from tests.support.exporter_redis import ExporterRedis
from tests.support.tls_redis import OBSERVER, TlsRedisServer, observer_acl

OBSERVER_PASSWORD = "observer-" + "x" * 24  # a throwaway server's only user besides the stack's
# The largest argument an authenticated connection may send (proto-max-bulk-len), less room for
# a distinct suffix.
NAME_BYTES = bulk_limit_bytes(VALUE_LIMIT_BYTES) - 16
MAXMEMORY_MB = 64
# Enough 2 MiB names to hold more than maxmemory.
NAMED_CONNECTIONS = 40


def _resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


@contextmanager
def _named_app_connections(
    server: TlsRedisServer, count: int, denied_key: bytes = b""
) -> Iterator[list[bytes]]:
    """`count` connections as the app, each asking HELLO to name it with a 2 MiB name (and,
    with `denied_key`, then reading that key plus a distinct suffix), held open; the first
    line of each HELLO reply."""
    context = server.client_ssl_context()
    password = server.material.app_password.encode()
    replies = []
    with ExitStack() as stack:
        for i in range(count):
            raw = socket.create_connection((server.host, server.port), timeout=30)
            tls = stack.enter_context(context.wrap_socket(raw, server_hostname="localhost"))
            reply = stack.enter_context(tls.makefile("rb"))
            tls.sendall(_resp(b"AUTH", b"app", password))
            assert reply.readline() == b"+OK\r\n"
            name = b"%08d" % i + b"n" * (NAME_BYTES - 8)
            tls.sendall(_resp(b"HELLO", b"2", b"SETNAME", name))
            first = reply.readline()
            replies.append(first)
            if first.startswith(b"*"):  # HELLO's map as a RESP2 array: read it whole
                for _ in range(int(first[1:])):
                    if reply.readline().startswith(b"$"):
                        reply.readline()
            if denied_key:
                tls.sendall(_resp(b"GET", denied_key + b"%08d" % i))
                assert reply.readline().startswith(b"-NOPERM")
        yield replies


def test_hello_cannot_name_connections_past_maxmemory(tls_redis_factory: ServerFactory) -> None:
    server = tls_redis_factory(maxmemory_mb=MAXMEMORY_MB, extra_acl=observer_acl(OBSERVER_PASSWORD))
    observer = server.app_redis(username=OBSERVER, password=OBSERVER_PASSWORD)
    app = server.app_redis()
    with _named_app_connections(server, NAMED_CONNECTIONS) as replies:
        used = int(observer.info("memory")["used_memory"])
        try:
            written: object = app.set("cache:written-while-named", b"v")
        except redis.exceptions.OutOfMemoryError as exc:
            written = exc
    assert used < MAXMEMORY_MB << 20, f"used_memory {used >> 20} MiB past maxmemory"
    assert written is True
    assert all(r.startswith(b"-ERR unknown command 'HELLO'") for r in replies), replies[:2]


def test_a_full_acl_log_of_the_largest_denials__is_still_scraped(
    exporter_redis: ExporterRedis,
) -> None:
    server = exporter_redis.server
    # Each connection is refused its largest key outside the app's prefix: a full ACL LOG
    # (acllog-max-len entries) of a 2 MiB object, each with its client's description.
    key = b"other:" + b"k" * (NAME_BYTES - 16)
    with _named_app_connections(server, ACL_LOG_MAX_LEN, denied_key=key):
        body = generate_latest(registry_for(connect(exporter_redis.settings())))
    assert b"\nredis_up 1.0\n" in body
    assert b'redis_acl_log_entries{reason="key"} %d.0' % ACL_LOG_MAX_LEN in body
