"""Fixtures that start real TLS-only redis-servers (see tests/support/tls_redis.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from tests.support.tls_redis import REDIS_SERVER, TlsRedisServer

ServerFactory = Callable[..., TlsRedisServer]


@pytest.fixture(scope="session")
def _require_redis_server() -> None:
    if shutil.which(REDIS_SERVER) is None:
        pytest.skip("redis-server is not installed; run scripts/bootstrap.sh as root")


@pytest.fixture(scope="session")
def tls_redis(_require_redis_server: None) -> Iterator[TlsRedisServer]:
    """One shared TLS-only server (dev profile: TLS 1.2 + 1.3) for the whole session."""
    server = TlsRedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def tls_redis_factory(_require_redis_server: None) -> Iterator[ServerFactory]:
    """Start private servers a test may stop, kill or restart; all are removed afterwards."""
    servers: list[TlsRedisServer] = []

    def make(**kwargs: object) -> TlsRedisServer:
        server = TlsRedisServer(**kwargs)  # type: ignore[arg-type]
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.close()
