"""The Redis exporter's /metrics HTTP server, bounded so that a client cannot exhaust it.

prometheus_client 0.26's `start_http_server` (wsgiref under ThreadingMixIn) starts a thread
per connection and never times a connection out. The exporter listens on the stack's frontend
network with an `nproc` budget of 64 threads for its uid (infra/components/exporter.py), so
about 60 connections that never send a request (slowloris) took every thread for as long as
they stayed open: scrapes were refused, the container's health check could not start a
process, and each refused connection printed a traceback (tests/e2e/test_e2e_attack_surface.py).
wsgiref also reads up to 100 header lines of 64 KiB each, about 6 MiB per connection, against
the exporter's 96 MiB memory limit.

This server keeps prometheus_client's WSGI application and changes only how connections are
served (tests/unit/test_metrics_server.py shows each bound):

- at most `max_connections` at once from other hosts, and at most `max_per_peer` of them from
  one address (so one container on the monitoring network, the app, cannot take every slot
  from Prometheus). A connection beyond either cap closes the longest-waiting connection that
  has not sent its request head yet (its own address's first, for the per-address cap); only
  when none is waiting is it closed at once, before a thread is started for it. Every user of
  the host arrives from the frontend gateway's one address, as a Prometheus on the host does:
  4 idle connections from a host shell kept such a Prometheus out (30 of 30 scrapes refused,
  attack pass of 2026-12-01), and a scrape, which sends its head at once, now always gets in.
  Loopback and the server's own address are not counted: the container's own health check
  connects there, and only a process inside the container can (a container without
  CAP_NET_RAW cannot send from another's address);
- every connection is shut down `deadline_s` after it was accepted, whatever it is doing (a
  request dribbled a byte at a time included); each read or write also times out on its own;
- a request head is read up to MAX_HEAD_BYTES; beyond that the client reads an end of file;
- a failed request is one log line naming the error class, never a traceback; refused
  connections are one line per REFUSAL_LOG_INTERVAL_S with their count.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from secure_cache.counted_log import COUNTED_LOG_INTERVAL_S, CountedEvents

# Scrapes are serialised on one Redis connection (redis_exporter.RedisCollector), so more
# parallel connections only wait; 8 leaves the nproc budget (64) most of its room.
MAX_CONNECTIONS: Final = 8
# Half of them: whoever shares the monitoring network with Prometheus (the app) cannot hold
# every slot, and Prometheus (one address, one scrape at a time) always finds one.
MAX_CONNECTIONS_PER_PEER: Final = 4
# Prometheus' default scrape timeout: a scrape that takes longer is lost to it anyway.
DEADLINE_S: Final = 10.0
IO_TIMEOUT_S: Final = 5.0
# A scrape's request head is a few hundred bytes.
MAX_HEAD_BYTES: Final = 16 * 1024
# Refused connections are logged as one line per this long, with their count, so a flood of
# them cannot rotate the container's log (10 MiB, infra/components/hardening.py) away.
REFUSAL_LOG_INTERVAL_S: Final = COUNTED_LOG_INTERVAL_S
LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})

logger = logging.getLogger("secure_cache.redis_exporter")


class _LimitedReader(io.RawIOBase):
    """At most `limit` bytes of `raw`, then end of file."""

    def __init__(self, raw: Any, limit: int) -> None:
        self._raw = raw
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: self._left]
        # readinto1: one read of the socket at most, so a short request is not held back
        # waiting for a full buffer.
        count = int(self._raw.readinto1(view) or 0)
        self._left -= count
        return count


class _Handler(WSGIRequestHandler):
    timeout = IO_TIMEOUT_S  # per read and write (StreamRequestHandler.setup)

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(_LimitedReader(self.rfile, MAX_HEAD_BYTES))

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        # The head is in (or refused): from now on the connection is being served.
        self.server.head_read(self.request)  # type: ignore[attr-defined]
        return parsed

    def log_message(self, format: str, *args: Any) -> None:
        """No access log (the path and query are the client's)."""


@dataclass
class _Open:
    """A connection accepted and not yet finished."""

    deadline: float
    peer: str | None  # its address when counted, else None
    waiting_since: float | None  # accepted at, until its request head is read


class BoundedMetricsServer(ThreadingWSGIServer):
    """ThreadingWSGIServer with a connection cap, a per-connection deadline and quiet errors."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_per_peer: int = MAX_CONNECTIONS_PER_PEER,
        deadline_s: float = DEADLINE_S,
        uncounted: Collection[str] = LOOPBACK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.max_connections = max_connections
        self.max_per_peer = max_per_peer
        self.deadline_s = deadline_s
        self.uncounted = frozenset(uncounted)
        self._clock = clock  # monotonic seconds: deadlines and the refusals' interval
        self._lock = threading.Lock()
        self._open: dict[socket.socket, _Open] = {}
        # The service's counting of repeated events (app/secure_cache/counted_log.py), without
        # CountedLog's timer: that one runs on an asyncio loop and this server has none (a
        # thread per connection). verify_request, its only user, runs on serve_forever's one
        # thread, so it needs no lock.
        self._refusals: CountedEvents[str] = CountedEvents(REFUSAL_LOG_INTERVAL_S)

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet finished (counted or not)."""
        with self._lock:
            return len(self._open)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        peer = str(client_address[0])
        if peer in self.uncounted:
            return True
        with self._lock:
            counted = {s: o for s, o in self._open.items() if o.peer is not None}
            own = {s: o for s, o in counted.items() if o.peer == peer}
            if len(counted) < self.max_connections and len(own) < self.max_per_peer:
                return True
            # The cap that is full decides whose waiting connection makes room.
            candidates = own if len(own) >= self.max_per_peer else counted
            waiting = [
                (o.waiting_since, s) for s, o in candidates.items() if o.waiting_since is not None
            ]
            oldest = min(waiting, key=lambda pair: pair[0], default=(0.0, None))[1]
            if oldest is not None:
                del self._open[oldest]  # its handler's _forget finds it gone
        if oldest is not None:
            with contextlib.suppress(OSError):  # its handler's read returns; its thread ends
                oldest.shutdown(socket.SHUT_RDWR)
        kind = "waiting_closed" if oldest is not None else "refused"
        if (counts := self._refusals.add(self._clock(), kind)) is not None:
            # The counts only: the peer's address is not logged (one line per interval).
            logger.warning(
                "event=metrics_connections_refused reason=too_many_connections count=%d "
                "waiting_closed=%d",
                counts.get("refused", 0),
                counts.get("waiting_closed", 0),
            )
        return oldest is not None

    def process_request(self, request: Any, client_address: Any) -> None:
        peer = str(client_address[0])
        counted = None if peer in self.uncounted else peer
        now = self._clock()
        with self._lock:
            self._open[request] = _Open(now + self.deadline_s, counted, now)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def service_actions(self) -> None:
        """Run by serve_forever between polls: shut down connections past their deadline
        (the handler's blocked read or write then returns, and its thread ends)."""
        now = self._clock()
        with self._lock:
            late = [sock for sock, entry in self._open.items() if entry.deadline <= now]
        for sock in late:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback here; the error class says enough.
        error = sys.exc_info()[0]
        logger.warning(
            "event=metrics_request_failed error=%s", error.__name__ if error else "unknown"
        )

    def head_read(self, request: Any) -> None:
        """`request` has sent its head: it is no longer one a newcomer may close."""
        with self._lock:
            entry = self._open.get(request)
            if entry is not None:
                entry.waiting_since = None

    def _forget(self, request: Any) -> None:
        with self._lock:
            self._open.pop(request, None)


def serve_metrics(
    registry: CollectorRegistry,
    host: str,
    port: int,
    **bounds: Any,
) -> tuple[BoundedMetricsServer, threading.Thread]:
    """Serve `registry` on host:port from a daemon thread (as start_http_server does).

    `host` may be a name (the exporter's network alias, infra/components/exporter.py): it is
    resolved once, here. Unless `uncounted` is given, loopback and that address are not
    counted against the caps: a server listening on one interface only is health-checked
    from inside its container at that address, and only that container sends from it."""
    address = listen_address(host)
    bounds.setdefault("uncounted", LOOPBACK | {address})
    server = BoundedMetricsServer((address, port), **bounds)
    server.set_app(make_wsgi_app(registry))
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return server, thread


def listen_address(host: str) -> str:
    """The numeric address `host` names (its first IPv4 one for a name; an address as given)."""
    if ":" in host:
        return host
    return socket.gethostbyname(host)


__all__ = [
    "DEADLINE_S",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_PEER",
    "MAX_HEAD_BYTES",
    "BoundedMetricsServer",
    "listen_address",
    "serve_metrics",
]
