"""The access log under a flood of requests without the token (`python -m secure_cache serve`,
the real process over loopback against the TLS fixture).

Anyone who reaches the port can send `/healthz` and requests without the token as fast as the
app answers them. One log line each let such a flood rotate the app's 30 MiB of container log
(10 MiB x 3, infra/components/hardening.py) away in about 20 minutes (docs/client.md, the HTTP API's
"Connections"), taking the lines a defender needs with it. Those requests are now logged as
counts per (method, route, status), at most once per interval, with every request still
counted; each request that carried an accepted token keeps its own line.
"""

from __future__ import annotations

import http.client
import re
import socket
import time
import uuid
from collections import Counter
from pathlib import Path

from secure_cache.counted_log import COUNTED_LOG_INTERVAL_S
from tests.support.service_process import service_environ, serving
from tests.support.tls_redis import TlsRedisServer, free_port

TOKEN = "A" * 24 + uuid.uuid4().hex  # checkov:skip=CKV_SECRET_6: a test token, not a credential
WRONG = "W" * 24 + uuid.uuid4().hex
KEY = f"access-log-key-{uuid.uuid4().hex}"
VALUE = f"access-log-value-{uuid.uuid4().hex}".encode()
# Enough requests per kind that one line each stands out against the counted lines (a handful
# per interval), few enough for a short default run.
FLOOD = 200
WRITES = 25
LAST = 5
HEALTHZ = ("GET", "/healthz", "200")
REFUSED = ("GET", "-", "401")
MALFORMED = ("-", "-", "400")

_LINE = re.compile(
    r"event=http_request method=(?P<method>\S+) route=(?P<route>\S+) status=(?P<status>\S+)"
    r"(?: count=(?P<count>\d+))?$"
)


def _flood(port: int, kind: str, n: int) -> None:
    """`n` requests of one kind on one keep-alive connection, as a flooding client sends them."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {
        "healthz": {},
        "no-token": {},
        "wrong-token": {"Authorization": f"Bearer {WRONG}"},
        "token": {"Authorization": f"Bearer {TOKEN}"},
    }[kind]
    try:
        for i in range(n):
            if kind == "healthz":
                conn.request("GET", "/healthz")
            elif kind == "token":
                method = "PUT" if i % 2 == 0 else "GET"
                body = VALUE if method == "PUT" else None
                conn.request(method, f"/cache/{KEY}", body=body, headers=headers)
            else:
                conn.request("GET", f"/cache/{KEY}", headers=headers)
            reply = conn.getresponse()
            reply.read()
            expected = {"healthz": 200, "no-token": 401, "wrong-token": 401}.get(kind)
            assert reply.status == (expected or reply.status), (kind, reply.status)
    finally:
        conn.close()


def _parsed(log: str) -> list[tuple[tuple[str, str, str], int, bool]]:
    """Each access-log line: ((method, route, status), requests it stands for, counted?)."""
    lines = []
    for line in log.splitlines():
        found = _LINE.search(line)
        if found is not None:
            key = (found["method"], found["route"], found["status"])
            count = found["count"]
            lines.append((key, int(count) if count else 1, count is not None))
    return lines


Kind = tuple[str, str, str]


def _requests(log_path: Path) -> tuple[Counter[Kind], Counter[Kind], list[tuple[Kind, int, bool]]]:
    """Requests and lines per (method, route, status) in the log so far, and the lines."""
    parsed = _parsed(log_path.read_text(errors="replace"))
    requests: Counter[Kind] = Counter()
    lines: Counter[Kind] = Counter()
    for key, count, _counted in parsed:
        requests[key] += count
        lines[key] += 1
    return requests, lines, parsed


def test_access_log__a_flood_without_the_token_is_counted_not_one_line_each(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    port = free_port()
    env = service_environ(tls_redis, tmp_path / "secrets", port, TOKEN)
    log_path = tmp_path / "service.log"
    with serving(env, port, log_path):
        size_before = log_path.stat().st_size
        start = time.monotonic()
        _flood(port, "healthz", FLOOD)
        _flood(port, "no-token", FLOOD)
        _flood(port, "wrong-token", FLOOD)
        seconds = time.monotonic() - start
        flood_bytes = log_path.stat().st_size - size_before
        _flood(port, "token", WRITES)
        # What the flood's last interval held back is written one interval later, while the
        # service runs and nothing else arrives (counted_log.CountedLog's timer).
        deadline = time.monotonic() + 3 * COUNTED_LOG_INTERVAL_S
        while _requests(log_path)[0][REFUSED] < 2 * FLOOD:
            assert time.monotonic() < deadline, _requests(log_path)
            time.sleep(0.2)
        # Counted now and stopped before the next interval: written on the way out.
        _flood(port, "no-token", LAST)
    requests, lines, parsed = _requests(log_path)
    log = log_path.read_text(errors="replace")
    # The figure docs/client.md's "Connections" quotes (run with -s to see it).
    rate = 3 * FLOOD / seconds
    print(
        f"\naccess log: {3 * FLOOD} requests without the token in {seconds:.1f} s "
        f"({rate:.0f}/s) wrote {flood_bytes} bytes ({flood_bytes / (3 * FLOOD):.1f} per request)"
    )
    # Nothing lost: every request is in the log, as a line or in a count.
    assert requests[HEALTHZ] >= FLOOD + 1  # serving()'s own readiness polls come on top
    assert requests[REFUSED] == 2 * FLOOD + LAST  # none lost at the stop, none counted twice
    # Bounded: a handful of counted lines, not one per request.
    assert lines[HEALTHZ] <= FLOOD // 20, lines
    assert lines[REFUSED] <= FLOOD // 20, lines
    # Every request with the token keeps its own line, uncounted.
    for method, status in (("PUT", "204"), ("GET", "200")):
        own = [c for k, _n, c in parsed if k == (method, "/cache/{key}", status)]
        assert len(own) == WRITES // 2 + (WRITES % 2 if method == "PUT" else 0), own
        assert not any(own)
    for secret in (TOKEN, WRONG, KEY, VALUE.decode()):
        assert secret not in log
    assert "Traceback" not in log


def _malformed(port: int, n: int) -> None:
    """`n` requests h11 cannot parse, one connection each (the service closes it after 400)."""
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            reply = b"".join(iter(lambda: sock.recv(1024), b""))  # the service closes it
            assert reply.startswith(b"HTTP/1.1 400 "), reply


def test_access_log__malformed_requests_and_upgrade_headers_write_no_line_each(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    """uvicorn logged a warning of its own for each request h11 could not parse, and two for
    each request with an Upgrade header it does not honour (served as a plain request): 73
    and 248 bytes a request, around the counted access log. Now a malformed request is
    counted in the access log (status 400, no method or route: it has none), and a request
    with an Upgrade header is logged as any other request."""
    port = free_port()
    env = service_environ(tls_redis, tmp_path / "secrets", port, TOKEN)
    log_path = tmp_path / "service.log"
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
    with serving(env, port, log_path):
        size_before = log_path.stat().st_size
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(FLOOD):
                conn.request("GET", f"/cache/{KEY}", headers=upgrade)
                reply = conn.getresponse()
                reply.read()
                assert reply.status == 401
        finally:
            conn.close()
        _malformed(port, FLOOD)
        flood_bytes = log_path.stat().st_size - size_before
    requests, lines, _parsed_lines = _requests(log_path)
    log = log_path.read_text(errors="replace")
    print(
        f"\naccess log: {FLOOD} upgrades and {FLOOD} malformed requests wrote {flood_bytes} bytes"
    )
    assert requests[REFUSED] == FLOOD, requests
    assert requests[MALFORMED] == FLOOD, requests  # every one counted, at the latest at stop
    assert lines[REFUSED] <= FLOOD // 20, lines
    assert lines[MALFORMED] <= FLOOD // 20, lines
    # A few counted lines (about 100 bytes each; more when a slow run spans more intervals),
    # not a line or two per request (64,000 bytes before).
    assert flood_bytes < 5 * 2 * FLOOD, f"{flood_bytes} bytes of log for {2 * FLOOD} requests"
    for noise in ("Invalid HTTP request", "Unsupported upgrade", "WebSocket"):
        assert noise not in log
