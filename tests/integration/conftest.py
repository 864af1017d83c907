"""Fixtures that start real TLS-only redis-servers (see tests/support/tls_redis.py), the
cache clients the secure_cache tests open on them, and the app image the image tests run."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secure_cache import SecureCache
from tests.support.app_image import built_app_image
from tests.support.cache_env import cache_environ
from tests.support.cache_shells import SHELLS, open_cache
from tests.support.event_loops import LOOPS, RunOnLoop, run_on
from tests.support.exporter_redis import ExporterRedis, running_exporter_redis
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


@pytest.fixture
def server(tls_redis_factory: ServerFactory) -> TlsRedisServer:
    """A private server the test may stop, kill or restart (a file may define its own)."""
    return tls_redis_factory()


@pytest.fixture
def exporter_redis(tmp_path: Path) -> Iterator[ExporterRedis]:
    """A server of its own holding the exporter's user, for a test that fills its ACL LOG
    (a module whose tests share one overrides this with a module-scoped fixture)."""
    with running_exporter_redis(tmp_path) as setup:
        yield setup


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    """Each test runs against SecureCache and AsyncSecureCache (tests/support/cache_shells.py)."""
    mode: str = request.param
    return mode


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> RunOnLoop:
    """Runs a coroutine on a private loop, once per loop kind (tests/support/event_loops.py)."""
    return functools.partial(run_on, LOOPS[request.param])


@pytest.fixture
def cache(shell: str, tls_redis: TlsRedisServer, tmp_path: Path) -> Iterator[SecureCache]:
    """A client of each shell on the shared server, with its own key material."""
    with open_cache(shell, cache_environ(tls_redis, tmp_path / "secrets")) as client:
        yield client


@pytest.fixture(scope="session")
def app_image() -> Iterator[str]:
    """The app image, built once per session (per pytest-xdist worker) for every module that
    runs it (test_cache_image.py, test_exporter_image.py), not once per module: a build took
    17-35 s in CI on the 2-core machine when scripts/build-app-image.sh still removed its
    build stage afterwards, and each build still copies the app and its wheelhouse anew."""
    with built_app_image() as tag:
        yield tag
