"""app/secure_cache/metrics_server.py: the exporter's /metrics server bounds what one client
can hold (real sockets on loopback; the deployed attack is tests/e2e/test_e2e_attack_surface.py).

Loopback is uncounted in the deployed server (the health check), so the connection cap is
shown here with `uncounted=()`.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics_core import Metric

from secure_cache.exporter_health import healthcheck as exporter_healthcheck
from secure_cache.metrics_server import (
    MAX_HEAD_BYTES,
    REFUSAL_LOG_INTERVAL_S,
    BoundedMetricsServer,
    listen_address,
    serve_metrics,
)

# How long a test waits for the server to close a connection: far beyond the short deadlines
# used here, far below the server's per-read timeout (5 s), so only the deadline can do it.
CLOSE_WAIT_S = 4.0
OPEN_COUNT_WAIT_S = 10.0


class _GatedCollector:
    """A collector that holds each scrape until `gate` is set (a slow Redis): a connection
    whose request is being answered, which the caps never close for a newcomer."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    def collect(self) -> Iterator[Metric]:
        self.gate.wait(OPEN_COUNT_WAIT_S)
        return iter(())


@contextmanager
def metrics_server(gate: threading.Event | None = None, **bounds: Any) -> Iterator[int]:
    registry = CollectorRegistry()
    Gauge("probe_value", "A value to serve.", registry=registry).set(1)
    if gate is not None:
        registry.register(_GatedCollector(gate))
    server, thread = serve_metrics(registry, "127.0.0.1", 0, **bounds)
    _SERVERS[int(server.server_address[1])] = server
    try:
        yield int(server.server_address[1])
    finally:
        _SERVERS.pop(int(server.server_address[1]), None)
        server.shutdown()
        server.server_close()
        thread.join()


_SERVERS: dict[int, BoundedMetricsServer] = {}


def _wait_for_open_connections(port: int, reached: Callable[[int], bool], what: str) -> None:
    """Until the server's count of open connections satisfies `reached`: its handler threads
    take connections in, and see them closed, some time after the client acts (a loaded
    machine stretches that). The bound is only there to end a broken server's test."""
    deadline = time.monotonic() + OPEN_COUNT_WAIT_S
    while not reached(_SERVERS[port].open_connections):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what}: still {_SERVERS[port].open_connections} open after {OPEN_COUNT_WAIT_S} s"
            )
        time.sleep(0.01)


def _wait_until_accepted(port: int, count: int) -> None:
    """The server has taken `count` connections in (so the next one meets the cap)."""
    _wait_for_open_connections(port, lambda n: n >= count, f"{count} connections taken in")


def _closed_by_server(sock: socket.socket, wait_s: float) -> bool:
    sock.settimeout(wait_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def _scrape(port: int, accept: str = "") -> tuple[int, str, str]:
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status, reply.headers.get("content-type", ""), reply.read().decode()


def test_a_connection_that_sends_nothing_is_closed_at_its_deadline() -> None:
    with metrics_server(deadline_s=0.5) as port, socket.create_connection(("127.0.0.1", port)) as s:
        assert _closed_by_server(s, CLOSE_WAIT_S)


def test_a_request_dribbled_byte_by_byte_is_cut_at_its_deadline() -> None:
    """Each byte arrives well within the per-read timeout; the deadline still ends it."""
    with metrics_server(deadline_s=0.5) as port, socket.create_connection(("127.0.0.1", port)) as s:
        cut = False
        for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 200:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                cut = True
                break
            if _closed_by_server(s, 0.05):
                cut = True
                break
        assert cut, "the server was still reading after 10 s of dribbling"


def _busy(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A connection whose scrape is being answered (held by a gated collector)."""
    sock = _connect_from(source, port)
    sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
    return sock


def test_connections_beyond_the_cap_are_closed_at_once_when_every_slot_is_serving() -> None:
    gate = threading.Event()
    with metrics_server(gate, max_connections=2, uncounted=()) as port:
        busy = [_busy(port) for _ in range(2)]
        try:
            _wait_until_accepted(port, 2)
            time.sleep(0.2)  # their heads have been read
            with socket.create_connection(("127.0.0.1", port)) as extra:
                assert _closed_by_server(extra, CLOSE_WAIT_S)
            assert not any(_closed_by_server(s, 0.1) for s in busy), "the busy ones stay open"
        finally:
            gate.set()
            for sock in busy:
                sock.close()
        # The two handler threads notice the close and end; until then they hold the cap.
        _wait_for_open_connections(port, lambda n: n == 0, "the closed connections released")
        status, _, body = _scrape(port)
    assert status == 200
    assert "probe_value 1.0" in body


def test_loopback_is_not_counted_against_the_cap() -> None:
    """The deployed exporter's health check connects over loopback: an attacker holding every
    slot from the network cannot make the container unhealthy."""
    with (
        metrics_server(max_connections=1) as port,
        socket.create_connection(("127.0.0.1", port)) as idle,
    ):
        _wait_until_accepted(port, 1)
        status, _, _ = _scrape(port)
        assert not _closed_by_server(idle, 0.1)
    assert status == 200


def test_the_request_head_is_read_only_up_to_its_bound() -> None:
    """A header beyond the first MAX_HEAD_BYTES of the head never reaches the application
    (wsgiref alone buffers up to 100 lines of 64 KiB): the Accept header sent after the
    padding is not seen, so the answer is the default text format."""
    padding = "x" * (MAX_HEAD_BYTES + 1024)
    with metrics_server() as port, socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: %s\r\n"
            b"Accept: application/openmetrics-text; version=1.0.0\r\n\r\n" % padding.encode()
        )
        s.settimeout(10)
        received = b""
        while b"\r\n\r\n" not in received and (chunk := s.recv(4096)):
            received += chunk
        head = received.decode(errors="replace")
    assert head.startswith("HTTP/1.0 200") or head.startswith("HTTP/1.1 200"), head[:200]
    assert "openmetrics" not in head.lower()


@pytest.mark.parametrize("accept", ["", "application/openmetrics-text; version=1.0.0"])
def test_a_scrape_answers_in_the_format_it_asks_for(accept: str) -> None:
    """Positive control for the bound above: a short head's Accept header is honoured."""
    with metrics_server() as port:
        status, content_type, body = _scrape(port, accept)
    assert status == 200
    assert ("openmetrics" in content_type) == bool(accept)
    assert "probe_value" in body


def test_a_flood_of_refused_connections__is_one_log_line_with_its_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = threading.Event()
    with metrics_server(gate, max_connections=1, uncounted=()) as port:
        busy = _busy(port)
        try:
            _wait_until_accepted(port, 1)
            time.sleep(0.2)  # its head has been read
            for _ in range(30):
                with socket.create_connection(("127.0.0.1", port)) as extra:
                    assert _closed_by_server(extra, CLOSE_WAIT_S)
        finally:
            gate.set()
            busy.close()
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusals == [
        "event=metrics_connections_refused reason=too_many_connections count=1 waiting_closed=0"
    ]


def test_idle_connections_holding_every_slot_make_room_for_a_scrape() -> None:
    """A connection that has sent no request head is the one closed for a newcomer; before,
    the newcomer was refused, so whoever held the slots idle kept every scrape out."""
    with metrics_server(max_connections=2, uncounted=()) as port:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            _wait_until_accepted(port, 2)
            answer = _scrape_from("127.0.0.1", port)
            oldest_closed = _closed_by_server(idle[0], CLOSE_WAIT_S)
        finally:
            for sock in idle:
                sock.close()
    assert answer.startswith(b"HTTP/1.0 200"), answer[:100]
    assert oldest_closed


def test_a_scrape_gets_in_past_idle_connections_from_its_own_address() -> None:
    """Every user of the host arrives from the frontend gateway's one address, as a Prometheus
    on the host does: 4 idle connections from a host shell refused 30 of 30 of its scrapes on
    a deployed stack (attack pass of 2026-12-01)."""
    with metrics_server(max_connections=8, max_per_peer=2, uncounted=()) as port:
        idle = [_connect_from("127.0.0.2", port) for _ in range(2)]
        try:
            _wait_until_accepted(port, 2)
            answer = _scrape_from("127.0.0.2", port)
        finally:
            for sock in idle:
                sock.close()
    assert answer.startswith(b"HTTP/1.0 200"), answer[:100]
    assert b"probe_value 1.0" in answer


def _connect_from(source: str, port: int, server: str = "127.0.0.1") -> socket.socket:
    """A connection to the server from `source`, one of loopback's many addresses (Linux
    answers all of 127.0.0.0/8): a stand-in for another host on the network."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect((server, port))
    return sock


def _scrape_from(source: str, port: int, server: str = "127.0.0.1") -> bytes:
    with _connect_from(source, port, server) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
        sock.settimeout(10)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_one_address_cannot_take_every_slot() -> None:
    """The app shares the monitoring network with Prometheus: holding connections from its
    one address (here scrapes it keeps busy), it leaves the other slots to Prometheus's."""
    gate = threading.Event()
    with metrics_server(gate, max_connections=8, max_per_peer=2, uncounted=()) as port:
        held = [_busy(port, "127.0.0.2") for _ in range(2)]
        try:
            _wait_until_accepted(port, 2)
            time.sleep(0.2)  # their heads have been read
            with _connect_from("127.0.0.2", port) as extra:
                assert _closed_by_server(extra, CLOSE_WAIT_S), "a third from one address"
            gate.set()
            answer = _scrape_from("127.0.0.3", port)
        finally:
            gate.set()
            for sock in held:
                sock.close()
    assert answer.startswith(b"HTTP/1.0 200"), answer[:100]
    assert b"probe_value 1.0" in answer


def test_the_servers_own_address_is_not_counted_when_it_listens_on_one() -> None:
    """The deployed exporter listens on its frontend address only, and its health check asks
    there: a full cap must not make the container unhealthy (serve_metrics' default)."""
    registry = CollectorRegistry()
    Gauge("probe_value", "A value to serve.", registry=registry).set(1)
    server, thread = serve_metrics(registry, "127.0.0.2", 0, max_connections=1, max_per_peer=1)
    port = int(server.server_address[1])
    _SERVERS[port] = server
    try:
        with _connect_from("127.0.0.3", port, "127.0.0.2"):
            _wait_until_accepted(port, 1)
            answer = _scrape_from("127.0.0.2", port, "127.0.0.2")
    finally:
        _SERVERS.pop(port, None)
        server.shutdown()
        server.server_close()
        thread.join()
    assert answer.startswith(b"HTTP/1.0 200"), answer[:100]


def test_a_name_is_resolved_to_the_address_it_listens_on() -> None:
    assert listen_address("localhost") == "127.0.0.1"
    assert listen_address("127.0.0.2") == "127.0.0.2"
    assert listen_address("::1") == "::1"


# (METRICS_HOST, where the test serves): for an address of every interface the test serves
# on 127.0.0.1 only, the address the check must ask, so no test listens on every interface;
# "::" asked as it is would reach ::1, where nothing listens.
@pytest.mark.parametrize(
    ("listen", "served"),
    [("127.0.0.2", "127.0.0.2"), ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1")],
)
def test_the_exporters_health_check_asks_where_it_listens(listen: str, served: str) -> None:
    """METRICS_HOST one address: the health check asks there (loopback is not served then);
    every interface: loopback."""
    registry = CollectorRegistry()
    server, thread = serve_metrics(registry, served, 0)
    port = int(server.server_address[1])
    try:
        code = exporter_healthcheck({"METRICS_HOST": listen, "METRICS_PORT": str(port)})
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert code == 0


def test_refusals__one_line_at_once_then_one_per_interval_with_the_counts_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The once-per-interval counting, on the server's clock (given here):
    the first refusal is logged at once, the ones within the interval after it are held back,
    and the first after the interval has passed logs them all."""
    clock = [1000.0]
    server = BoundedMetricsServer(
        ("127.0.0.1", 0), max_connections=0, uncounted=(), clock=lambda: clock[0]
    )
    try:
        for at in (0.0, 1.0, REFUSAL_LOG_INTERVAL_S - 0.5, REFUSAL_LOG_INTERVAL_S, 11.0):
            clock[0] = 1000.0 + at
            assert server.verify_request(None, ("192.0.2.7", 40000)) is False
    finally:
        server.server_close()
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    line = "event=metrics_connections_refused reason=too_many_connections count={} waiting_closed=0"
    assert refusals == [line.format(1), line.format(3)]
