"""`python -m secure_cache serve`: the HTTP API (http_api.py) served by uvicorn.

Why uvicorn: the standard library's http.server is documented as not for production, and the
service's cache client has an asyncio twin (AsyncSecureCache), so an asyncio server holds an idle
or slow connection as a few kilobytes of protocol state instead of a thread. uvicorn with its
pure-Python h11 parser (not httptools) reads request bodies only as the application asks for
them, pausing the socket past 64 KiB, which is what lets http_budget.py bound the bytes in
flight. It runs on uvloop's event loop (serve).

What this module adds to uvicorn, each for a measured gap (tests/integration/test_cache_service.py):

- a connection limit that keeps the service reachable rather than uvicorn's
  limit_concurrency, which counts idle connections too and answers plain text. At the limit a
  new connection closes the counted connection that has waited longest for a request head or
  served requests its client pipelined behind another without awaiting its answer (never one
  whose client awaits the answer being prepared); only when every counted connection is
  serving such a request is the new one refused (JSON 503, closed). A client that pipelined
  4 MB of /healthz requests on each connection and read no answer kept every one "being
  served": 5 such connections held a service limited to 5 at 503 for the whole minute
  measured, no token needed (attack pass of 2026-12-01). Anyone who reaches the port can open
  connections without the token, and the host's clients all arrive from one address (Docker's
  proxy on the frontend gateway), so a per-peer cap cannot tell them apart: 450 connections
  that one host process kept reopening got 95% of other clients' requests a 503 (attack pass
  of 2026-12-01); a connection that sends its request at once is now never the one closed.
  Loopback is not counted: inside the deployed container only the container's own health
  check connects from there, so 400 held connections from the host made /healthz answer 503
  and the container unhealthy (attack pass of 2026-11-30); now they leave it healthy;
- a deadline for a response its client does not read (HTTP_STALL_TIMEOUT_S, settings.py);
- a deadline for a request's headers from the moment a connection opens or finishes a
  response: uvicorn arms its keep-alive timer only after a response, so a connection that never
  sends a request (or dribbles one byte at a time) would otherwise stay forever;
- malformed requests (bad request line, HTTP/2.0, oversized headers) answered as JSON 400
  instead of h11's plain text, and counted in the access log (`method=- route=- status=400
  count=N`, counted_log.py) instead of uvicorn's warning line for each; uvicorn's two
  warnings for each request with an Upgrade header (served as a plain request, and logged
  as one) are dropped. Anyone who reaches the port could write those lines as fast as the
  service answers: 73 and 248 bytes a request, more than the access-log lines counted for
  the same reason (tests/integration/test_service_access_log.py).

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
import uvloop
from uvicorn.protocols.http.h11_impl import H11Protocol

from secure_cache.client import AsyncSecureCache
from secure_cache.counted_log import COUNTED_LOG_INTERVAL_S, CountedLog
from secure_cache.http_api import CacheAPI, log_request_counts
from secure_cache.prometheus import CacheMetrics
from secure_cache.settings import DEFAULT_HTTP_STALL_TIMEOUT_S, ServiceSettings, Settings
from secure_cache.transport import cache_options as transport_cache_options

logger = logging.getLogger("secure_cache.service")

# A connection must send a complete request head within this long of opening or of its last
# response; the same figure closes idle keep-alive connections.
HEADER_TIMEOUT_S: Final = 10
# Largest request head (request line and headers) h11 buffers before answering 400.
MAX_HEAD_BYTES: Final = 16 * 1024
# Peers not counted against the connection limit (see the module docstring).
LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
# Connections closed at the limit are logged at most this often (_OverloadLog).
OVERLOAD_LOG_INTERVAL_S: Final = COUNTED_LOG_INTERVAL_S
# The warnings uvicorn's h11 protocol logs for each such request (see the module docstring).
_PER_REQUEST_WARNINGS: Final = (
    "Invalid HTTP request received.",
    "Unsupported upgrade request.",
    "No supported WebSocket library detected.",
)
# A request h11 could not parse, as the access log counts it: it has no method or route.
_MALFORMED: Final = ("-", "-", "400")


def _json_response(status: int, error: str) -> bytes:
    body = json.dumps({"error": error}).encode()
    reason = {400: b"Bad Request", 503: b"Service Unavailable"}[status]
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"cache-control: no-store\r\nconnection: close\r\n\r\n%s"
    ) % (status, reason, len(body), body)


class _OverloadLog:
    """Connections closed at the limit, logged at most once per OVERLOAD_LOG_INTERVAL_S with
    the counts since the last line (counted_log.py): a line per connection let a flood
    rotate the container's whole log (10 MiB x 3) away within minutes."""

    def __init__(self) -> None:
        self._log: CountedLog[str] = CountedLog(self._write, OVERLOAD_LOG_INTERVAL_S)
        self._connections = 0

    def record(self, now: float, *, evicted: bool, connections: int) -> None:
        self._connections = connections
        self._log.record(now, "idle_closed" if evicted else "refused")

    def flush(self) -> None:
        """Log what was counted since the last line (the service is stopping)."""
        self._log.flush()

    def _write(self, counts: dict[str, int]) -> None:
        logger.warning(
            "event=http_overloaded connections=%d idle_closed=%d refused=%d",
            self._connections,
            counts.get("idle_closed", 0),
            counts.get("refused", 0),
        )


class _NoPerRequestWarnings(logging.Filter):
    """Drops uvicorn's per-request warnings (_PER_REQUEST_WARNINGS) from its error logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_PER_REQUEST_WARNINGS))


_NO_PER_REQUEST_WARNINGS: Final = _NoPerRequestWarnings()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection limit, a header deadline and JSON 400s."""

    max_connections: ClassVar[int] = 400
    # A response its client does not read for this long (the transport's buffer stays above
    # its high-water mark) is abandoned: a client with the token that pipelined requests for a
    # large value and read no answer held the request being answered, and the value's bytes in
    # http_budget.py, for ever. ServiceSettings.stall_timeout_s (HTTP_STALL_TIMEOUT_S).
    stall_timeout_s: ClassVar[float] = DEFAULT_HTTP_STALL_TIMEOUT_S
    overload_log: ClassVar[_OverloadLog] = _OverloadLog()
    malformed_log: ClassVar[CountedLog[tuple[str, str, str]]] = CountedLog(log_request_counts)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_cycle: object = None
        self._head_timer: asyncio.TimerHandle | None = None
        # Loop times since which the connection has waited for a request head, and since which
        # it has served requests its client sent before it had the previous answer; None if not.
        self._head_since: float | None = None
        self._pipelined_since: float | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        peer = transport.get_extra_info("peername")
        self.counted = not (isinstance(peer, tuple) and peer[0] in LOOPBACK)
        counted = [c for c in self.connections if isinstance(c, GuardedH11Protocol) and c.counted]
        if self.counted and len(counted) > self.max_connections:
            waiting = [(since, c) for c in counted if (since := c.waiting_since()) is not None]
            oldest = min(waiting, key=lambda pair: pair[0], default=(0.0, None))[1]
            self.overload_log.record(
                self.loop.time(), evicted=oldest is not None, connections=len(counted)
            )
            if oldest is None:  # every counted connection is serving a request
                transport.write(_json_response(503, "too many connections; retry shortly"))
                transport.close()
                return
            oldest.close_waiting()
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not self._head_cycle:
            self._head_timer.cancel()  # a request head arrived
            self._head_timer = None
            self._head_since = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn may have started a pipelined request above: the client sent it before it
        # had this answer, so it is not waiting for that one's answer either.
        if self._idle():
            self._pipelined_since = None
            if not self.transport.is_closing():
                self._arm_head_deadline()
        elif self._pipelined_since is None:
            self._pipelined_since = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._stall_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(self.stall_timeout_s, self.close_waiting)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def send_400_response(self, msg: str) -> None:
        # h11 refused the request (bad request line or version, header too large, ...).
        self.malformed_log.record(self.loop.time(), _MALFORMED)
        self.transport.write(_json_response(400, "malformed HTTP/1.1 request"))
        self.transport.close()

    def waiting_since(self) -> float | None:
        """Loop time since which the connection has waited for a request head or served
        requests its client queued without awaiting the answers; None: its client awaits the
        answer to the request being served."""
        since = (self._head_since, self._pipelined_since)
        times = [t for t in since if t is not None]
        return min(times, default=None)

    def close_waiting(self) -> None:
        """Close a connection that waits on its client, at once: close() would first wait for
        a client that reads nothing to read what is still buffered for it, and until then the
        connection stays counted."""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.transport.abort()

    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_cycle = self.cycle
        self._head_since = self.loop.time()
        self._head_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._head_deadline)

    def _head_deadline(self) -> None:
        self._head_timer = None
        if self.cycle is self._head_cycle and self._idle():
            self.close_waiting()


def server_config(app: Any, settings: ServiceSettings) -> uvicorn.Config:
    GuardedH11Protocol.max_connections = settings.max_connections
    GuardedH11Protocol.stall_timeout_s = settings.stall_timeout_s
    logging.getLogger("uvicorn.error").addFilter(_NO_PER_REQUEST_WARNINGS)  # added once
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
        # The loop is serve()'s (uvloop). uvicorn reads this only in Server.run, which the
        # service does not call, so its default ("auto") claimed a choice it never made.
        loop="none",
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


class _Server(uvicorn.Server):
    """uvicorn's server, writing the counted log lines still held back (counted_log.py) once
    it has stopped serving. Here rather than after serve(): on SIGTERM uvicorn raises the
    signal again as serve() returns (Server.capture_signals), which ends the process."""

    def __init__(self, config: uvicorn.Config, api: CacheAPI) -> None:
        super().__init__(config)
        self._api = api

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().shutdown(sockets)
        finally:
            self._api.flush_counted_log()
            GuardedH11Protocol.overload_log.flush()
            GuardedH11Protocol.malformed_log.flush()


def cache_options(settings: ServiceSettings) -> dict[str, Any]:
    """What the service's cache is built with beside its settings: a reply is read up to what
    Redis sends for the values this service accepts (16 of the largest, reply_limit_bytes),
    not the library's default. Derived, so HTTP_MAX_VALUE_BYTES moves both, as the stack's
    proto-max-bulk-len and output-buffer limit follow it (infra/redis_conf.py); the CLI's
    client derives its own the same way (transport.cache_options, from_env)."""
    return transport_cache_options(settings.max_value_bytes)


async def _serve(settings: ServiceSettings, sockets: list[socket.socket]) -> None:
    cache_settings = Settings.from_env()
    cache = AsyncSecureCache(cache_settings, **cache_options(settings))
    metrics = cache_metrics(cache, cache_settings, settings)
    await cache.ping()  # as from_env does: an unreachable Redis starts on the fallback
    try:
        api = CacheAPI(cache, settings, metrics)
        server = _Server(server_config(api, settings), api)
        host, port = sockets[0].getsockname()[:2]
        loop = type(asyncio.get_running_loop())
        logger.info(
            "event=service_started host=%s port=%s backend=%s loop=%s.%s",
            host,
            port,
            cache.backend,
            loop.__module__,
            loop.__qualname__,
        )
        await server.serve(sockets=sockets)
    finally:
        await cache.close()
        logger.info("event=service_stopped")


def serve(settings: ServiceSettings, sockets: list[socket.socket]) -> None:
    """Serve on `sockets` (listen.bind, before this module was imported: listen.py says why)
    until SIGTERM or SIGINT; a stop asked that way ends with the Redis connections closed,
    `event=service_stopped` and exit 0 (listen.stop_on_signals).

    uvicorn catches both signals while it serves, then restores the handlers it found and
    raises the signal again (Server.capture_signals). With Python's own handlers that ended
    the process on SIGTERM's default action (exit 143, `docker stop` recorded as a failure),
    before `cache.close()` and the last log line; listen.py's is the handler it finds instead.

    The loop is uvloop's, made here: uvicorn.Config's `loop` setting is read only by
    uvicorn.Server.run, and this calls Server.serve inside a loop of its own, so that
    setting never chose anything. On uvloop a 1 KiB request takes 20% fewer instructions
    (docs/benchmark.md, "The event loop")."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(settings, sockets))


__all__ = [
    "HEADER_TIMEOUT_S",
    "GuardedH11Protocol",
    "cache_metrics",
    "serve",
    "server_config",
]
