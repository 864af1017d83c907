"""`python -m secure_cache serve`: the HTTP API (http_api.py) served by uvicorn.

Why uvicorn: the standard library's http.server is documented as not for production, and the
service's cache client has an asyncio twin (AsyncSecureCache), so an asyncio server holds an idle
or slow connection as a few kilobytes of protocol state instead of a thread. uvicorn with its
pure-Python h11 parser (no C extensions to ship in the image) reads request bodies only as the
application asks for them, pausing the socket past 64 KiB, which is what lets http_budget.py
bound the bytes in flight.

What this module adds to uvicorn, each for a measured gap (tests/integration/test_cache_service.py):

- a connection limit that refuses the connection itself (JSON 503, closed) rather than
  uvicorn's limit_concurrency, which counts idle connections too and answers plain text.
  Loopback is not counted: inside the deployed container only the container's own health
  check connects from there (the host's clients arrive through Docker from the frontend
  network's gateway), so 400 held connections from the host made /healthz answer 503 and
  the container unhealthy (attack pass of 2026-11-30); now they leave it healthy;
- a deadline for a request's headers from the moment a connection opens or finishes a
  response: uvicorn arms its keep-alive timer only after a response, so a connection that never
  sends a request (or dribbles one byte at a time) would otherwise stay forever;
- malformed requests (bad request line, HTTP/2.0, oversized headers) answered as JSON 400
  instead of h11's plain text.

/healthz needs neither the token nor any budget, so it answers while the others are busy.
/metrics (prometheus.py) is served behind the same token as the API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any, ClassVar, Final

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from secure_cache.client import AsyncSecureCache
from secure_cache.errors import SecureCacheError
from secure_cache.http_api import CacheAPI
from secure_cache.prometheus import CacheMetrics
from secure_cache.settings import ServiceSettings, Settings

logger = logging.getLogger("secure_cache.service")

# A connection must send a complete request head within this long of opening or of its last
# response; the same figure closes idle keep-alive connections.
HEADER_TIMEOUT_S: Final = 10
# Largest request head (request line and headers) h11 buffers before answering 400.
MAX_HEAD_BYTES: Final = 16 * 1024
# Peers not counted against the connection limit (see the module docstring).
LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


class ServeError(SecureCacheError):
    """The service could not start (e.g. the port is in use); the message says how to fix it."""


def _json_response(status: int, error: str) -> bytes:
    body = json.dumps({"error": error}).encode()
    reason = {400: b"Bad Request", 503: b"Service Unavailable"}[status]
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"cache-control: no-store\r\nconnection: close\r\n\r\n%s"
    ) % (status, reason, len(body), body)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection limit, a header deadline and JSON 400s."""

    max_connections: ClassVar[int] = 400

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_cycle: object = None
        self._head_timer: asyncio.TimerHandle | None = None
        peer = transport.get_extra_info("peername")
        self.counted = not (isinstance(peer, tuple) and peer[0] in LOOPBACK)
        counted = sum(1 for c in self.connections if getattr(c, "counted", True))
        if self.counted and counted > self.max_connections:
            logger.warning("event=http_overloaded connections=%d", counted)
            transport.write(_json_response(503, "too many connections; retry shortly"))
            transport.close()
            return
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not self._head_cycle:
            self._head_timer.cancel()  # a request head arrived
            self._head_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        # h11 refused the request (bad request line or version, header too large, ...).
        self.transport.write(_json_response(400, "malformed HTTP/1.1 request"))
        self.transport.close()

    def _arm_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_cycle = self.cycle
        self._head_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._head_deadline)

    def _head_deadline(self) -> None:
        self._head_timer = None
        if self.cycle is self._head_cycle and not self.transport.is_closing():
            self.transport.close()


def bind(settings: ServiceSettings) -> socket.socket:
    """The listening socket, or ServeError naming the address and the fix."""
    try:
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        sock = socket.create_server((settings.host, settings.port), family=family, backlog=256)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ServeError(
            f"cannot listen on {settings.host}:{settings.port} ({reason}); stop what uses that "
            "port or set HTTP_PORT (and HTTP_HOST) to a free one"
        ) from None
    sock.set_inheritable(True)
    return sock


def server_config(app: Any, settings: ServiceSettings) -> uvicorn.Config:
    GuardedH11Protocol.max_connections = settings.max_connections
    return uvicorn.Config(
        app,
        http=GuardedH11Protocol,
        ws="none",
        lifespan="off",
        interface="asgi3",
        access_log=False,  # http_api.py logs each request without its path (the key)
        log_config=None,  # keep the CLI's logging: one line per event, no tracebacks
        server_header=False,
        date_header=False,
        proxy_headers=False,  # nothing sits in front of it; never trust X-Forwarded-*
        timeout_keep_alive=HEADER_TIMEOUT_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_graceful_shutdown=5,
    )


def cache_metrics(
    cache: AsyncSecureCache, cache_settings: Settings, settings: ServiceSettings
) -> CacheMetrics:
    """The service's metrics, fed by `cache`: certificate files and the data-key generation
    file are re-read at each scrape, so in-place rotation shows without a restart."""
    metrics = CacheMetrics(
        cache.events,
        ca_file=cache_settings.ca_file,
        client_cert_file=cache_settings.cert_file,
        previous_keys=len(cache_settings.previous_keys),
        data_key_generation_file=settings.data_key_generation_file,
    )
    cache.attach_metrics(metrics)
    return metrics


async def _serve(settings: ServiceSettings, sock: socket.socket) -> None:
    cache_settings = Settings.from_env()
    cache = AsyncSecureCache(cache_settings)
    metrics = cache_metrics(cache, cache_settings, settings)
    await cache.ping()  # as from_env does: an unreachable Redis starts on the fallback
    try:
        server = uvicorn.Server(server_config(CacheAPI(cache, settings, metrics), settings))
        host, port = sock.getsockname()[:2]
        logger.info("event=service_started host=%s port=%s backend=%s", host, port, cache.backend)
        await server.serve(sockets=[sock])
    finally:
        await cache.close()
        logger.info("event=service_stopped")


def serve(settings: ServiceSettings) -> None:
    """Bind (ServeError if it cannot), then serve until SIGTERM or SIGINT."""
    sock = bind(settings)
    try:
        asyncio.run(_serve(settings, sock))
    finally:
        sock.close()


__all__ = [
    "HEADER_TIMEOUT_S",
    "GuardedH11Protocol",
    "ServeError",
    "bind",
    "cache_metrics",
    "serve",
    "server_config",
]
