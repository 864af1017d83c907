"""A minimal HTTP service over SecureCache (standard library only).

    PUT    /cache/{key}[?ttl=SECONDS]   body = raw bytes      -> 204
    GET    /cache/{key}                                      -> 200 raw bytes | 404
    DELETE /cache/{key}                                      -> 204 | 404
    GET    /healthz                                          -> 200 {"status": "ok", "backend": ...}
    GET    /security-status                                  -> 200 SecureCache.status()

`{key}` is percent-decoded UTF-8. The service has no authentication of its own: it is meant
to sit on a private network next to the application that uses it (the stack publishes its
port on the host's 127.0.0.1 only, see infra/components/app.py). Access logs name the
route, never the key:

    event=http_request method=GET route=/cache/{key} status=200
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final
from urllib.parse import parse_qs, unquote, urlsplit

from secure_cache.client import SecureCache
from secure_cache.core import logical_key
from secure_cache.settings import ServiceSettings

logger = logging.getLogger("secure_cache.service")

CACHE_PREFIX: Final = "/cache/"
_BUSY: Final = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_REQUEST_TIMEOUT_S: Final = 30


class CacheRequestHandler(BaseHTTPRequestHandler):
    """Routes requests to the cache held by the server (see CacheHTTPServer)."""

    server: CacheHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "secure-cache"
    sys_version = ""  # do not advertise the Python version
    timeout = _REQUEST_TIMEOUT_S  # slow or stalled clients are dropped
    _route = "-"

    # -- routing --------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._route = "/healthz"
            self._json(HTTPStatus.OK, {"status": "ok", "backend": self.server.cache.backend})
        elif path == "/security-status":
            self._route = "/security-status"
            self._json(HTTPStatus.OK, self.server.cache.status())
        elif path.startswith(CACHE_PREFIX):
            key = self._cache_key(path)
            if key is None:
                return
            value = self.server.cache.get(key)
            if value is None:
                self._empty(HTTPStatus.NOT_FOUND)
            else:
                self._send(HTTPStatus.OK, value, "application/octet-stream")
        else:
            self._not_found()

    def do_PUT(self) -> None:
        parts = urlsplit(self.path)
        if not parts.path.startswith(CACHE_PREFIX):
            self._not_found()
            return
        key = self._cache_key(parts.path)
        if key is None:
            return
        ok, ttl = self._ttl(parts.query)
        if not ok:
            return
        body = self._body()
        if body is None:
            return
        self.server.cache.set(key, body, ttl)
        self._empty(HTTPStatus.NO_CONTENT)

    def do_DELETE(self) -> None:
        path = urlsplit(self.path).path
        if not path.startswith(CACHE_PREFIX):
            self._not_found()
            return
        key = self._cache_key(path)
        if key is None:
            return
        deleted = self.server.cache.delete(key)
        self._empty(HTTPStatus.NO_CONTENT if deleted else HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:
        self._method_not_allowed()

    do_PATCH = do_POST
    do_HEAD = do_POST

    # -- helpers --------------------------------------------------------------------------

    def _cache_key(self, path: str) -> str | None:
        """The decoded key of a /cache/ path, or None after answering 400."""
        self._route = "/cache/{key}"
        try:
            key = unquote(path[len(CACHE_PREFIX) :], errors="strict")
            if not key:
                raise ValueError("empty key")
            logical_key(key)
        except (UnicodeDecodeError, ValueError):
            self._json(
                HTTPStatus.BAD_REQUEST,
                {"error": "the key must be 1-4096 bytes of percent-encoded UTF-8"},
            )
            return None
        return key

    def _ttl(self, query: str) -> tuple[bool, int | None]:
        """(ok, ttl seconds or None); after a 400 answer ok is False."""
        values = parse_qs(query).get("ttl")
        if not values:
            return True, None
        raw = values[-1]
        if raw.isdigit() and 0 < int(raw) <= 10 * 365 * 86400:
            return True, int(raw)
        self._json(HTTPStatus.BAD_REQUEST, {"error": "ttl must be a positive number of seconds"})
        return False, None

    def _body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "send Content-Length, not chunks"})
            self.close_connection = True
            return None
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"})
            self.close_connection = True
            return None
        length = int(length_header)
        if length > self.server.settings.max_value_bytes:
            # The body is not read, so the connection cannot be reused.
            self.close_connection = True
            self._json(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"values are limited to {self.server.settings.max_value_bytes} bytes"},
            )
            return None
        return self.rfile.read(length)

    def _not_found(self) -> None:
        self._route = "-"
        self._json(HTTPStatus.NOT_FOUND, {"error": "no such route"})

    def _method_not_allowed(self) -> None:
        self._route = "-"
        body = json.dumps({"error": "method not allowed"}).encode()
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, PUT, DELETE")
        self._headers(body, "application/json")

    def _json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _empty(self, status: HTTPStatus) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self._headers(body, content_type)

    def _headers(self, body: bytes, content_type: str) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- logging: never the path (it holds the key), never the request line ---------------

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = code.value if isinstance(code, HTTPStatus) else code
        logger.info(
            "event=http_request method=%s route=%s status=%s",
            self.command or "-",
            self._route,
            status,
        )

    def log_error(self, format: str, *args: Any) -> None:
        logger.warning("event=http_error method=%s route=%s", self.command or "-", self._route)

    def log_message(self, format: str, *args: Any) -> None:
        return


class CacheHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that holds the cache and service settings.

    At most MAX_WORKERS connections are served at once; beyond that a connection gets an
    immediate 503 instead of another thread (a flood cannot exhaust threads or memory).
    """

    MAX_WORKERS: ClassVar[int] = 64
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, cache: SecureCache, settings: ServiceSettings) -> None:
        self.cache = cache
        self.settings = settings
        self._slots = threading.BoundedSemaphore(self.MAX_WORKERS)
        super().__init__((settings.host, settings.port), CacheRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            logger.warning("event=http_overloaded workers=%d", self.MAX_WORKERS)
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def serve(cache: SecureCache, settings: ServiceSettings) -> None:
    """Serve until SIGTERM or SIGINT, then close the cache."""
    server = CacheHTTPServer(cache, settings)

    def stop(signum: int, _frame: object) -> None:
        logger.info("event=service_stopping signal=%s", signal.Signals(signum).name)
        # shutdown() waits for serve_forever() to return, so it cannot run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    logger.info("event=service_started host=%s port=%s backend=%s", host, port, cache.backend)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        cache.close()
        logger.info("event=service_stopped")


__all__ = ["CacheHTTPServer", "CacheRequestHandler", "serve"]
