"""The HTTP service in-process against the TLS fixture: routes, limits, logs."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from secure_cache import SecureCache
from secure_cache.service import CacheHTTPServer
from secure_cache.settings import ServiceSettings
from tests.support.cache_env import cache_environ
from tests.support.tls_redis import TlsRedisServer

MAX_BYTES = 4096


@pytest.fixture
def service(tls_redis: TlsRedisServer, tmp_path: Path) -> Iterator[tuple[str, int]]:
    cache = SecureCache.from_env(cache_environ(tls_redis, tmp_path / "s"))
    server = CacheHTTPServer(
        cache, ServiceSettings(host="127.0.0.1", port=0, max_value_bytes=MAX_BYTES)
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield str(host), int(port)
    finally:
        server.shutdown()
        server.server_close()
        cache.close()


def _request(
    service: tuple[str, int], method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection(*service, timeout=10)
    try:
        conn.request(method, path, body=body)
        reply = conn.getresponse()
        return reply.status, reply.read(), reply
    finally:
        conn.close()


def test_put_get_delete__round_trip(service: tuple[str, int]) -> None:
    value = bytes(range(256))
    assert _request(service, "PUT", "/cache/user%3A1?ttl=60", value)[0] == 204
    status, body, reply = _request(service, "GET", "/cache/user%3A1")
    assert (status, body) == (200, value)
    assert reply.getheader("Content-Type") == "application/octet-stream"
    assert reply.getheader("Cache-Control") == "no-store"
    assert _request(service, "DELETE", "/cache/user%3A1")[0] == 204
    assert _request(service, "GET", "/cache/user%3A1")[0] == 404
    assert _request(service, "DELETE", "/cache/user%3A1")[0] == 404


def test_percent_encoded_unicode_key__round_trips(service: tuple[str, int]) -> None:
    path = "/cache/" + quote("ключ/with slash", safe="")
    assert _request(service, "PUT", path, b"v")[0] == 204
    assert _request(service, "GET", path)[1] == b"v"


def test_healthz__reports_backend(service: tuple[str, int]) -> None:
    status, body, _ = _request(service, "GET", "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "backend": "redis"}


def test_security_status__is_the_status_json(service: tuple[str, int]) -> None:
    status, body, _ = _request(service, "GET", "/security-status")
    assert status == 200
    payload = json.loads(body)
    assert payload["backend"] == "redis"
    assert payload["redis"]["tls_version"] == "TLSv1.3"
    assert payload["encryption"]["cipher"] == "AES-256-GCM"
    assert "integrity_failures" in payload["counters"]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("PUT", "/cache/k", b"x" * (MAX_BYTES + 1), 413),
        ("PUT", "/cache/k?ttl=0", b"x", 400),
        ("PUT", "/cache/k?ttl=abc", b"x", 400),
        ("GET", "/cache/", None, 400),
        ("GET", "/cache/%ff%fe", None, 400),
        ("GET", "/nope", None, 404),
        ("POST", "/cache/k", b"x", 405),
    ],
    ids=["too-large", "ttl-zero", "ttl-text", "empty-key", "bad-utf8", "unknown-route", "post"],
)
def test_bad_requests__are_refused(
    service: tuple[str, int], method: str, path: str, body: bytes | None, expected: int
) -> None:
    assert _request(service, method, path, body)[0] == expected


def test_access_log__names_the_route_not_the_key(
    service: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="secure_cache.service"):
        _request(service, "PUT", "/cache/secret-customer-id", b"secret-value")
        _request(service, "GET", "/cache/secret-customer-id")
    lines = [r.getMessage() for r in caplog.records if r.name == "secure_cache.service"]
    assert "event=http_request method=PUT route=/cache/{key} status=204" in lines
    assert "event=http_request method=GET route=/cache/{key} status=200" in lines
    assert not [line for line in lines if "secret" in line]


class _OneWorkerServer(CacheHTTPServer):
    MAX_WORKERS = 1


def test_overload__extra_connections_get_503(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    cache = SecureCache.from_env(cache_environ(tls_redis, tmp_path / "s"))
    server = _OneWorkerServer(cache, ServiceSettings(host="127.0.0.1", port=0))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = str(server.server_address[0]), int(server.server_address[1])
    busy = http.client.HTTPConnection(host, port, timeout=10)
    try:
        busy.request("GET", "/healthz")
        assert busy.getresponse().read()  # keep-alive: this connection now holds the worker
        assert _request((host, port), "GET", "/healthz")[0] == 503
    finally:
        busy.close()
        server.shutdown()
        server.server_close()
        cache.close()
