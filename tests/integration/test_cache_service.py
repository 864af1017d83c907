"""The HTTP service as deployed: `python -m secure_cache serve` (uvicorn) against the TLS fixture.

Each test speaks HTTP to the real process over loopback, with raw sockets where a well-behaved
client library would not send what an attacker does (a truncated body, a foreign Host, a bad
HTTP version, hundreds of idle connections).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.cache_env import cache_environ, new_data_key, write_secret
from tests.support.service_process import service_environ, serving, start
from tests.support.tls_redis import TlsRedisServer, free_port

MAX_VALUE = 16 * 1024
# Room for exactly one value of the largest size in flight (3 copies each: http_budget.py).
MAX_INFLIGHT = 1 << 16
TOKEN = "T" * 40  # checkov:skip=CKV_SECRET_6: a test token, not a credential
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Service:
    host: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=AUTH if headers is None else headers)
            reply = conn.getresponse()
            return reply.status, reply.read(), reply
        finally:
            conn.close()

    def raw(self, data: bytes) -> bytes:
        """Send `data` as is and return everything the service answers before closing."""
        with socket.create_connection((self.host, self.port), timeout=10) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def service(
    tls_redis: TlsRedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("service")
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        **cache_environ(tls_redis, root / "secrets"),
        "HTTP_API_TOKEN_FILE": str(write_secret(root / "secrets", "api.token", TOKEN)),
        "HTTP_PORT": str(port),
        "HTTP_MAX_VALUE_BYTES": str(MAX_VALUE),
        "HTTP_MAX_INFLIGHT_BYTES": str(MAX_INFLIGHT),
        "REDIS_ENCRYPTION_KEY_GENERATION_FILE": str(
            write_secret(root / "secrets", "data.generation", "3")
        ),
    }
    log = root / "service.log"
    with serving(env, port, log) as process:
        service = Service("127.0.0.1", port, log, process, env)
        yield service
    assert "Traceback" not in service.logs()


def _json_error(body: bytes) -> str:
    payload = json.loads(body)
    assert set(payload) == {"error"}
    return str(payload["error"])


def test_put_get_delete__round_trip(service: Service) -> None:
    value = bytes(range(256))
    assert service.request("PUT", "/cache/user%3A1?ttl=60", value)[0] == 204
    status, body, reply = service.request("GET", "/cache/user%3A1")
    assert (status, body) == (200, value)
    assert reply.getheader("Content-Type") == "application/octet-stream"
    assert reply.getheader("Cache-Control") == "no-store"
    assert service.request("DELETE", "/cache/user%3A1")[0] == 204
    assert service.request("GET", "/cache/user%3A1")[0] == 404


def test_healthz__answers_without_a_token(service: Service) -> None:
    status, body, _ = service.request("GET", "/healthz", headers={})
    assert status == 200
    assert json.loads(body) == {"status": "ok", "backend": "redis"}


def test_security_status__needs_the_token_and_is_the_status_json(service: Service) -> None:
    assert service.request("GET", "/security-status", headers={})[0] == 401
    status, body, _ = service.request("GET", "/security-status")
    assert status == 200
    assert json.loads(body)["backend"] == "redis"


def _scrape(service: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body, reply = service.request("GET", "/metrics")
    assert status == 200
    assert reply.getheader("content-type", "").startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_metrics__an_idle_service_reports_the_data_keys_its_files_name_now(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    """A scrape reported the data keys the app had at its last cache command: after the
    rotation pass retired the previous key, an idle app kept
    secure_cache_data_key_previous_keys at 1, and DataKeyRotationUnfinished
    (monitoring/alerts.yml) would fire a day later for a rotation that had finished. A
    scrape checks the material files first, on the timer a command uses."""
    secrets = tmp_path / "secrets"
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        **cache_environ(tls_redis, secrets, previous_keys=(new_data_key(),)),
        "HTTP_API_TOKEN_FILE": str(write_secret(secrets, "api.token", TOKEN)),
        "HTTP_PORT": str(port),
        "REDIS_ENCRYPTION_KEY_GENERATION_FILE": str(write_secret(secrets, "data.generation", "3")),
    }
    log = tmp_path / "service.log"
    with serving(env, port, log) as process:
        service = Service("127.0.0.1", port, log, process, env)
        before = _scrape(service)
        assert before[("secure_cache_data_key_previous_keys", ())] == 1
        assert before[("secure_cache_data_key_generation", ())] == 3
        for name, text in (("previous-keys", ""), ("data.generation", "4")):
            (secrets / name).chmod(0o600)
            (secrets / name).write_text(text + "\n")
            (secrets / name).chmod(0o400)

        def retired() -> bool:
            now = _scrape(service)
            return (
                now[("secure_cache_data_key_previous_keys", ())] == 0
                and now[("secure_cache_data_key_generation", ())] == 4
            )

        deadline = time.monotonic() + 15  # the app checks its files once a second
        while not retired():
            assert time.monotonic() < deadline, "the scrape still reports the retired key"
            time.sleep(0.2)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer " + "X" * 40}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["no-token", "wrong-token", "wrong-scheme"],
)
def test_metrics__need_the_token(service: Service, headers: dict[str, str]) -> None:
    status, body, _ = service.request("GET", "/metrics", headers=headers)
    assert status == 401
    assert b"secure_cache" not in body


def test_metrics__observe_requests_by_route_lookups_and_the_stack_material(
    service: Service,
) -> None:
    """The served scrape moves with the requests made (by route template, never the key),
    and shows the certificates, the data-key generation file and the client's pool."""
    key = "metrics-probe-key-4f1c"
    assert service.request("PUT", f"/cache/{key}", body=b"v")[0] == 204
    assert service.request("GET", f"/cache/{key}")[0] == 200
    assert service.request("GET", f"/cache/{key}-absent")[0] == 404
    samples = _scrape(service)
    get_ok = (("method", "GET"), ("route", "/cache/{key}"), ("status", "200"))
    assert samples[("secure_cache_http_request_duration_seconds_count", get_ok)] >= 1
    assert samples[("secure_cache_lookups_total", (("result", "hit"),))] >= 1
    assert samples[("secure_cache_lookups_total", (("result", "miss"),))] >= 1
    seal = (("operation", "seal"), ("size", "1KiB"))
    assert samples[("secure_cache_envelope_duration_seconds_count", seal)] >= 1
    assert samples[("secure_cache_redis_connect_duration_seconds_count", ())] >= 1
    assert samples[("secure_cache_data_key_generation", ())] == 3
    assert samples[("secure_cache_redis_pool_connections", (("state", "open"),))] >= 1
    expiry = "secure_cache_certificate_expiry_timestamp_seconds"
    for role in ("ca", "server", "client"):
        assert samples[(expiry, (("certificate", role),))] > time.time()
    assert samples[("secure_cache_fallback_active", ())] == 0
    scraped = json.dumps([list(k) for k in samples])
    assert key not in scraped
    assert TOKEN not in scraped
    # The scrape itself is observed under its own route, seen by the next one.
    again = _scrape(service)
    assert (
        again[
            (
                "secure_cache_http_request_duration_seconds_count",
                (("method", "GET"), ("route", "/metrics"), ("status", "200")),
            )
        ]
        >= 1
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer " + "X" * 40}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["no-token", "wrong-token", "wrong-scheme"],
)
def test_unauthenticated__refused_and_nothing_stored(
    service: Service, headers: dict[str, str]
) -> None:
    status, body, reply = service.request("PUT", "/cache/unauth", b"v", headers=headers)
    assert status == 401
    assert reply.getheader("WWW-Authenticate", "").startswith("Bearer")
    assert "Bearer" in _json_error(body)
    assert service.request("GET", "/cache/unauth", headers=headers)[0] == 401
    assert service.request("GET", "/cache/unauth")[0] == 404, "the refused PUT stored nothing"


@pytest.mark.parametrize(
    "host", ["evil.example", "127.0.0.1.evil.com", "localhost.evil.com:8080", ""]
)
def test_foreign_host__refused_even_with_the_token(service: Service, host: str) -> None:
    """DNS rebinding: a page on evil.example that resolves to 127.0.0.1 still sends its Host."""
    request = (
        f"PUT /cache/rebound HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Length: 1\r\n\r\nv"
    ).encode()
    answer = service.raw(request)
    assert answer.startswith(b"HTTP/1.1 421 ")
    assert b"application/json" in answer
    assert service.request("GET", "/cache/rebound")[0] == 404


def test_no_cors__a_preflight_gets_json_405_without_access_control_headers(
    service: Service,
) -> None:
    status, body, reply = service.request(
        "OPTIONS",
        "/cache/k",
        headers={**AUTH, "Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"},
    )
    assert status == 405
    assert _json_error(body) == "method not allowed"
    assert not [h for h, _ in reply.getheaders() if h.lower().startswith("access-control-")]


@pytest.mark.parametrize(
    "request_line",
    [b"GET /healthz HTTP/2.0", b"GET /healthz HTTP/9.9", b"BREW /pot HTCPCP/1.0", b"\x00\xff"],
    ids=["http2", "http9", "htcpcp", "binary"],
)
def test_malformed_requests__get_a_json_error(service: Service, request_line: bytes) -> None:
    answer = service.raw(request_line + b"\r\nHost: localhost\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 505 "))
    assert b"content-type: application/json" in head.lower()
    assert _json_error(body)


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("PUT", "/cache/big", b"x" * (MAX_VALUE + 1), 413),
        ("PUT", "/cache/k?ttl=0", b"v", 400),
        ("PUT", "/cache/k?ttl=-5", b"v", 400),
        ("PUT", "/cache/k?ttl=soon", b"v", 400),
        ("PUT", "/cache/k?tll=60", b"v", 400),
        ("PUT", "/cache/k?ttl=60&ttl=1", b"v", 400),
        ("PUT", "/cache/k?ttl=", b"v", 400),
        ("PUT", "/cache/", b"v", 400),
        ("GET", "/cache/%FF", None, 400),
        ("GET", "/cache/" + "k" * 5000, None, 400),
        ("GET", "/nope", None, 404),
        ("POST", "/cache/k", b"x", 405),
        ("GET", "/cache/missing", None, 404),
    ],
    ids=[
        "too-large",
        "ttl-zero",
        "ttl-negative",
        "ttl-text",
        "ttl-misspelt",
        "ttl-twice",
        "ttl-blank",
        "empty-key",
        "bad-utf8",
        "long-key",
        "unknown-route",
        "post",
        "miss",
    ],
)
def test_bad_requests__are_refused_with_a_json_error(
    service: Service, method: str, path: str, body: bytes | None, expected: int
) -> None:
    status, answer, reply = service.request(method, path, body)
    assert status == expected
    assert reply.getheader("Content-Type") == "application/json"
    assert _json_error(answer)
    if method == "PUT":  # a refused write stores nothing (a misspelt ttl kept it forever)
        assert service.request("GET", path.split("?", maxsplit=1)[0])[0] in (400, 404)


def test_truncated_body__stores_nothing(service: Service) -> None:
    with socket.create_connection((service.host, service.port), timeout=10) as sock:
        sock.sendall(
            b"PUT /cache/truncated HTTP/1.1\r\nHost: localhost\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + b"Content-Length: 100\r\n\r\n"
            + b"0123456789"
        )
        sock.shutdown(socket.SHUT_WR)  # the client is gone after 10 of 100 bytes
        sock.recv(1024)
    time.sleep(0.3)  # the service sees the disconnect asynchronously
    assert service.request("GET", "/cache/truncated")[0] == 404


def test_idle_connections__healthz_answers_while_200_are_held_open(service: Service) -> None:
    idle = [socket.create_connection((service.host, service.port)) for _ in range(200)]
    try:
        status, _body, _ = service.request("GET", "/healthz", headers={})
        assert status == 200
        assert service.request("GET", "/cache/missing")[0] == 404
    finally:
        for sock in idle:
            sock.close()


def _from_other_host(port: int, receive_buffer: int | None = None) -> socket.socket:
    """A connection from 127.0.0.2, as the host's clients arrive from an address that is not
    the container's loopback (Docker's proxy on the frontend gateway). `receive_buffer` fixes
    its SO_RCVBUF before the connect, which turns off the kernel's autotuning of it."""
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.bind(("127.0.0.2", 0))
    sock.connect(("127.0.0.1", port))
    sock.settimeout(10)
    return sock


def _until_the_log_is_still(log: Path, quiet_s: float = 1.0) -> None:
    """Wait until the service's log has not grown for `quiet_s` (it logs every answer it
    has written, so it is blocked on a client that does not read), or 60 s have passed."""
    size, since = -1, time.monotonic()
    deadline = since + 60
    while time.monotonic() < deadline:
        now = log.stat().st_size
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.1)


def _status_from_other_host(port: int, path: str, headers: dict[str, str]) -> int:
    with _from_other_host(port) as sock:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{head}\r\n".encode())
        return int(sock.recv(4096).split(b" ", 2)[1])


LIMIT = 5


@pytest.fixture
def limited(service: Service, tmp_path: Path) -> Iterator[int]:
    """A second service whose HTTP_MAX_CONNECTIONS is LIMIT; yields its port."""
    port = free_port()
    env = {**service.env, "HTTP_PORT": str(port), "HTTP_MAX_CONNECTIONS": str(LIMIT)}
    with serving(env, port, tmp_path / "limited.log"):
        yield port


def test_connection_limit__idle_connections_holding_every_slot_do_not_keep_a_client_out(
    limited: int,
) -> None:
    """Whoever reaches the port can open connections without the token; the host's clients
    all arrive from one address, so a per-peer cap cannot separate them. At the limit a new
    connection closes the one that has waited longest for a request head. Before, 450
    connections that one host process kept open answered 95% of other clients' requests with
    503 (attack pass of 2026-12-01 on a deployed stack)."""
    held = [_from_other_host(limited) for _ in range(LIMIT)]
    try:
        time.sleep(0.5)  # the server has taken them in
        healthz = _status_from_other_host(limited, "/healthz", {})
        lookup = _status_from_other_host(limited, "/cache/missing", AUTH)
        oldest = held[0].recv(4096)
    finally:
        for sock in held:
            sock.close()
    assert (healthz, lookup) == (200, 404)
    assert oldest == b"", f"the longest-waiting connection is closed: {oldest[:80]!r}"


def test_connection_limit__requests_being_served_are_never_closed_for_a_newcomer(
    limited: int,
) -> None:
    """Connections in the middle of a request (here uploads whose body is still arriving)
    are not the idle ones the limit closes: the newcomer is refused with JSON 503 and the
    uploads complete."""
    uploads = [_from_other_host(limited) for _ in range(LIMIT)]
    try:
        for index, sock in enumerate(uploads):
            sock.sendall(
                f"PUT /cache/busy{index} HTTP/1.1\r\nHost: localhost\r\n".encode()
                + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 4\r\n\r\nxx".encode()
            )
        time.sleep(0.5)  # every upload's head has been read
        with _from_other_host(limited) as beyond:
            refused = beyond.recv(4096)
        for sock in uploads:
            sock.sendall(b"yy")
        stored = [sock.recv(4096).split(b" ", 2)[1] for sock in uploads]
    finally:
        for sock in uploads:
            sock.close()
    assert refused.startswith(b"HTTP/1.1 503"), f"positive control: {refused[:80]!r}"
    assert json.loads(refused.partition(b"\r\n\r\n")[2]) == {
        "error": "too many connections; retry shortly"
    }
    assert stored == [b"204"] * LIMIT


def test_connection_limit__never_counts_the_containers_health_check(limited: int) -> None:
    """The deployed health check connects over the container's loopback and is not counted:
    before, 400 idle connections from the host made /healthz 503 and the container unhealthy
    (attack pass of 2026-11-30 on a deployed stack). Here the counted slots are busy, so a
    newcomer from another host is refused (positive control), and loopback is still served."""
    uploads = [_from_other_host(limited) for _ in range(LIMIT)]
    try:
        for sock in uploads:
            sock.sendall(
                b"PUT /cache/busy HTTP/1.1\r\nHost: localhost\r\n"
                + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 4\r\n\r\n".encode()
            )
        time.sleep(0.5)
        with _from_other_host(limited) as beyond:
            refused = beyond.recv(4096)
        health = http.client.HTTPConnection("127.0.0.1", limited, timeout=10)
        try:
            health.request("GET", "/healthz")
            status = health.getresponse().status
        finally:
            health.close()
    finally:
        for sock in uploads:
            sock.close()
    assert refused.startswith(b"HTTP/1.1 503"), f"positive control: {refused[:80]!r}"
    assert status == 200


def _pipeline_unread(port: int) -> socket.socket:
    """A connection from another host that pipelines /healthz requests and never reads an
    answer, until its own send buffer is full: the service has stopped reading it because its
    answers cannot go out."""
    sock = _from_other_host(port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    requests = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n" * 256
    with contextlib.suppress(BlockingIOError):
        while True:
            sock.send(requests)
    return sock


def test_connection_limit__clients_that_never_read_their_answers_do_not_keep_a_client_out(
    limited: int,
) -> None:
    """Pipelined requests whose answers the client never reads leave a request "being served"
    for ever (its answer waits for the client), and neither the header deadline nor the limit
    closed such a connection: LIMIT of them, no token needed, answered every newcomer 503 for
    as long as they stayed open (attack pass of 2026-12-01 on a deployed stack). A connection
    stalled on its own client counts as waiting, like one that has not sent its head."""
    stalled = [_pipeline_unread(limited) for _ in range(LIMIT)]
    try:
        time.sleep(0.5)  # the service has filled what it can send to each
        healthz = _status_from_other_host(limited, "/healthz", {})
        lookup = _status_from_other_host(limited, "/cache/missing", AUTH)
    finally:
        for sock in stalled:
            sock.close()
    assert (healthz, lookup) == (200, 404)


# The slow-client deadlines of `hasty`, shortened from the defaults (15 s and 10 s: settings.py,
# pinned by tests/unit/test_cache_settings.py) so that their tests wait seconds, not a minute.
BODY_TIMEOUT_S = 3
STALL_TIMEOUT_S = 2


@pytest.fixture
def hasty(service: Service, tmp_path: Path) -> Iterator[Service]:
    """A second service with short slow-client deadlines (HTTP_BODY_TIMEOUT_S,
    HTTP_STALL_TIMEOUT_S), for a test that waits them out or leaves connections held."""
    port = free_port()
    env = {
        **service.env,
        "HTTP_PORT": str(port),
        "HTTP_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "HTTP_STALL_TIMEOUT_S": str(STALL_TIMEOUT_S),
    }
    log = tmp_path / "hasty.log"
    with serving(env, port, log) as process:
        yield Service("127.0.0.1", port, log, process, env)


def test_response__one_its_client_stops_reading_is_abandoned(hasty: Service) -> None:
    """A client with the token that pipelined GETs of a value (more answers than the socket
    buffers hold: net.ipv4.tcp_wmem allows 4 MiB) and read none held a request being answered,
    and the value's bytes of the in-flight budget, for ever (attack pass of 2026-12-01). The
    service now closes it once HTTP_STALL_TIMEOUT_S pass without the client reading."""
    conn = http.client.HTTPConnection("127.0.0.1", hasty.port, timeout=10)
    try:
        conn.request("PUT", "/cache/read", body=b"v" * MAX_VALUE, headers=AUTH)
        assert conn.getresponse().status == 204
    finally:
        conn.close()
    count = (8 << 20) // MAX_VALUE
    request = (
        f"GET /cache/read HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    # A fixed receive buffer: autotuned, it may grow to net.ipv4.tcp_rmem's maximum (32 MiB on
    # the build machine), and more answers fit in the sockets before the service must wait.
    with _from_other_host(hasty.port, receive_buffer=64 << 10) as sock:
        sock.sendall(request.encode() * count)
        # Until the service has filled what the sockets hold and waits, then its deadline. A
        # fixed sleep was too short with both cores busy (load 27, then 17: the service was
        # still writing when the client began to read, so it never waited; all 8 MiB came).
        _until_the_log_is_still(hasty.log)
        time.sleep(STALL_TIMEOUT_S + 1)
        sock.settimeout(5)  # what the service had sent arrives at once; then EOF, or nothing
        received, closed = 0, False
        with contextlib.suppress(TimeoutError):
            try:
                while chunk := sock.recv(1 << 20):
                    received += len(chunk)
            except ConnectionResetError:
                pass
            closed = True
    assert closed, f"still open after {received} bytes of {count * MAX_VALUE}"
    assert 0 < received < count * MAX_VALUE


def test_upload__a_body_dribbled_below_the_minimum_rate_is_cut(hasty: Service) -> None:
    """A client with the token sending a byte every 3 s never hit the 15 s bound per chunk, so
    it held its connection, a request being served, for as long as it liked (attack passes of
    2026-12-01). The whole body must arrive within HTTP_BODY_TIMEOUT_S plus its length at
    MIN_BODY_BYTES_PER_S: here BODY_TIMEOUT_S + 0.25 s for MAX_VALUE bytes. The bytes come
    four times per BODY_TIMEOUT_S, so the bound per chunk is never what cuts it."""
    interval = BODY_TIMEOUT_S / 4
    with socket.create_connection((hasty.host, hasty.port), timeout=interval) as sock:
        sock.sendall(
            b"PUT /cache/dribbled HTTP/1.1\r\nHost: localhost\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {MAX_VALUE}\r\n\r\n".encode()
        )
        answer = b""
        give_up = time.monotonic() + 3 * BODY_TIMEOUT_S
        while time.monotonic() < give_up:  # a byte every `interval` (the recv timeout)
            try:
                sock.sendall(b"x")
                answer = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if answer:
                with contextlib.suppress(OSError):
                    while chunk := sock.recv(4096):  # the rest, up to the close
                        answer += chunk
                break
    assert answer.startswith(b"HTTP/1.1 408 "), f"still reading after 3x the bound: {answer[:80]!r}"
    assert _json_error(answer.partition(b"\r\n\r\n")[2]) == "the body arrived too slowly"
    assert hasty.request("GET", "/cache/dribbled")[0] == 404


def test_inflight_budget__a_second_large_upload_waits_its_turn_as_503(service: Service) -> None:
    """One 16 KiB upload in progress fills the 64 KiB budget (3 copies); a second is refused at
    once (not buffered) while /healthz still answers; after the first ends, it is accepted."""
    with socket.create_connection((service.host, service.port), timeout=10) as slow:
        slow.sendall(
            b"PUT /cache/slow HTTP/1.1\r\nHost: localhost\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + f"Content-Length: {MAX_VALUE}\r\n\r\n".encode()
            + b"x" * 100
        )
        time.sleep(0.3)  # the service has reserved the first upload's bytes
        status, _body, reply = service.request("PUT", "/cache/second", b"y" * MAX_VALUE)
        assert status == 503
        assert reply.getheader("Retry-After") == "1"
        assert service.request("GET", "/healthz", headers={})[0] == 200
        slow.sendall(b"x" * (MAX_VALUE - 100))
        assert slow.recv(1024).startswith(b"HTTP/1.1 204 ")
    assert service.request("PUT", "/cache/second", b"y" * MAX_VALUE)[0] == 204


def test_client_disconnects__never_print_a_traceback(service: Service) -> None:
    service.request("PUT", "/cache/large", b"z" * MAX_VALUE)
    for _ in range(5):
        with socket.create_connection((service.host, service.port)) as sock:
            sock.sendall(
                b"GET /cache/large HTTP/1.1\r\nHost: localhost\r\n"
                + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
            )
            # closed before reading the answer
    service.request("GET", "/healthz", headers={})
    assert "Traceback" not in service.logs()


def test_access_log__names_the_route_never_the_key_or_token(service: Service) -> None:
    service.request("PUT", "/cache/secret-customer-id", b"secret-value")
    service.request("GET", "/cache/secret-customer-id")
    logs = service.logs()
    assert "event=http_request method=PUT route=/cache/{key} status=204" in logs
    assert "secret-customer-id" not in logs
    assert "secret-value" not in logs
    assert TOKEN not in logs


def test_serve__runs_on_uvloop(service: Service) -> None:
    """The loop the running service reports is uvloop's (service.serve). uvicorn.Config's
    `loop` setting never chose it: uvicorn reads it only in Server.run, and the service runs
    Server.serve in a loop of its own, which was asyncio's default."""
    started = [line for line in service.logs().splitlines() if "event=service_started" in line]
    assert len(started) == 1, service.logs()
    assert started[0].endswith(" loop=uvloop.Loop"), started[0]


def test_serve__a_port_in_use_is_one_line_and_exit_6(service: Service, tmp_path: Path) -> None:
    log = tmp_path / "second.log"
    second = start(service.env, log)
    assert second.wait(timeout=30) == 6
    text = log.read_text()
    assert f"cannot listen on 127.0.0.1:{service.port}" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop__a_signal_closes_the_service_cleanly_with_exit_0(
    tls_redis: TlsRedisServer, tmp_path: Path, signum: int
) -> None:
    """`docker stop` sends SIGTERM. uvicorn raised it again after its shutdown and the default
    action ended the process (exit -15, i.e. 143 in Docker) before the Redis connections were
    closed and `event=service_stopped` was logged."""
    port = free_port()
    env = service_environ(tls_redis, tmp_path / "secrets", port, TOKEN)
    log = tmp_path / "service.log"
    with serving(env, port, log) as process:
        process.send_signal(signum)
        code = process.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert code == 0, text
    assert "event=service_stopped" in text
    assert "Traceback" not in text
