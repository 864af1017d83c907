"""The HTTP API over AsyncSecureCache, as an ASGI application (served by service.py).

    PUT    /cache/{key}[?ttl=SECONDS]   body = raw bytes      -> 204
    GET    /cache/{key}                                      -> 200 raw bytes | 404
    DELETE /cache/{key}                                      -> 204 | 404
    GET    /healthz                                          -> 200 {"status": "ok", "backend": ...}
    GET    /security-status                                  -> 200 AsyncSecureCache.status()
    GET    /metrics                                          -> 200 Prometheus exposition

Who gets in, checked in this order for every request:

1. `Host` must be one of HTTP_ALLOWED_HOSTS (the port is not compared). A web page that
   rebinds its own DNS name to 127.0.0.1 still sends its own name, so it is refused (421).
2. Every route but `/healthz` needs `Authorization: Bearer <HTTP_API_TOKEN>`, compared in
   constant time (hmac.compare_digest) with every accepted token: during a rotation the
   previous one too (api_tokens.py, which also re-reads the token files while the service
   runs); missing or wrong -> 401, the same answer for both.
3. No CORS: no Access-Control-* header is ever sent, so a browser never lets another origin
   read an answer; a preflight OPTIONS gets 405 like any other unknown method.

`/metrics` (prometheus.py) needs the token like every route but `/healthz`: a scraper sends
it as `authorization: credentials_file` (monitoring/prometheus.yml). Each request is
observed there by its route template, never its path (which carries the key).

Every error is a JSON object {"error": "..."}; no answer carries the key, a value or the token.
Bodies are bounded per request (HTTP_MAX_VALUE_BYTES) and all together (http_budget.py). A PUT
stores only a body that arrived complete: a client that disconnects or stalls mid-body stores
nothing. Access logs name the route, never the key. A request with an accepted token gets a
line of its own; the others (`/healthz`, and any answered before the token was accepted: 401,
421, 505) are counted per method, route and status and logged at most once per 10 s
(counted_log.py): anyone who reaches the port can send them as fast as they are answered, and
a line each rotated the container's log away in about 20 minutes
(tests/integration/test_service_access_log.py):

    event=http_request method=GET route=/cache/{key} status=200
    event=http_request method=GET route=- status=401 count=5120
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qs, unquote

from secure_cache.api_tokens import ApiTokens
from secure_cache.client import AsyncSecureCache
from secure_cache.core import logical_key
from secure_cache.counted_log import CountedLog
from secure_cache.http_budget import BudgetExhausted, ByteBudget
from secure_cache.prometheus import CacheMetrics, method_label
from secure_cache.settings import ServiceSettings

logger = logging.getLogger("secure_cache.service")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CACHE_PREFIX: Final = b"/cache/"
MAX_TTL_SECONDS: Final = 10 * 365 * 86400
# A body that stops arriving for ServiceSettings.body_timeout_s (HTTP_BODY_TIMEOUT_S, 15 s) is
# abandoned (nothing stored, budget released), and so is one that takes longer than that plus
# its length at this rate (1 MiB: 31 s). Without the rate a client with the token that sent a
# byte every 14 s held its connection, a request being served that the connection limit never
# closes, for as long as it liked (tests/integration/test_cache_service.py).
MIN_BODY_BYTES_PER_S: Final = 64 * 1024
# Responses go out in chunks, so a slow reader holds at most a chunk in the socket buffers.
RESPONSE_CHUNK_BYTES: Final = 64 * 1024
_COMMON_HEADERS: Final = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]
ALLOWED_METHODS: Final = "GET, PUT, DELETE"


class Reply(Exception):
    """Answer with `status` and a JSON error; raised anywhere in a request's handling."""

    def __init__(
        self, status: HTTPStatus, error: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers or []


class _Disconnected(Exception):
    """The client went away; there is nobody to answer."""


class CacheAPI:
    """The ASGI application; one per server, sharing one cache and one byte budget."""

    def __init__(
        self,
        cache: AsyncSecureCache,
        settings: ServiceSettings,
        metrics: CacheMetrics | None = None,
        tokens: ApiTokens | None = None,
    ) -> None:
        self.cache = cache
        self.settings = settings
        self.metrics = metrics
        self.budget = ByteBudget(settings.max_inflight_bytes)
        self.tokens = tokens or ApiTokens(settings)
        # (method, route, status) of requests without an accepted token, as counts.
        self._counted: CountedLog[tuple[str, str, str]] = CountedLog(log_request_counts)
        if metrics is not None:
            metrics.watch_api_tokens(lambda: self.tokens.previous)
        self._hosts = frozenset(settings.allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets are not served (service.py turns them off)
        response = _Response(send)
        start = time.perf_counter()
        try:
            await self._handle(scope, receive, response)
        except Reply as reply:
            # An error may leave a request body unread: close rather than parse it as the
            # next request.
            await response.json(
                reply.status, {"error": reply.error}, [*reply.headers, (b"connection", b"close")]
            )
        except BudgetExhausted:
            await response.json(
                HTTPStatus.SERVICE_UNAVAILABLE,
                {"error": "too much data in flight; retry shortly"},
                [(b"retry-after", b"1"), (b"connection", b"close")],
            )
        except _Disconnected:
            response.status = 499  # nginx's "client closed request", for the log only
        except Exception as exc:  # one log line, never a traceback holding request data
            logger.error("event=http_failure route=%s error=%s", response.route, type(exc).__name__)
            if not response.started:
                await response.json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})
        if response.authenticated:
            logger.info(
                "event=http_request method=%s route=%s status=%s",
                _token(scope.get("method", "-")),
                response.route,
                response.status,
            )
        else:
            kind = (
                method_label(str(scope.get("method", ""))),
                response.route,
                str(response.status),
            )
            self._counted.record(time.monotonic(), kind)
        if self.metrics is not None:
            status = response.status if isinstance(response.status, int) else 0
            self.metrics.observe_request(
                str(scope.get("method", "")), response.route, status, time.perf_counter() - start
            )

    def flush_counted_log(self) -> None:
        """Log the counted requests not logged yet (the service is stopping)."""
        self._counted.flush()

    # -- checks ---------------------------------------------------------------------------

    def _check_host(self, headers: dict[bytes, bytes]) -> None:
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        if host.startswith("["):  # [v6]:port
            name = host.split("]", 1)[0] + "]"
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if name not in self._hosts:
            raise Reply(
                HTTPStatus.MISDIRECTED_REQUEST,
                "this Host is not served here; use one of HTTP_ALLOWED_HOSTS",
            )

    def _check_token(self, headers: dict[bytes, bytes]) -> None:
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        # Constant time per accepted token, whatever matches (api_tokens.token_accepted).
        if not (scheme.lower() == b"bearer" and self.tokens.accepts(token.strip())):
            raise Reply(
                HTTPStatus.UNAUTHORIZED,
                "send Authorization: Bearer <the stack's API token>",
                [(b"www-authenticate", b'Bearer realm="secure-cache"')],
            )

    # -- routing --------------------------------------------------------------------------

    async def _handle(self, scope: Scope, receive: Receive, response: _Response) -> None:
        if scope.get("http_version") not in ("1.0", "1.1"):
            # h11 parses any HTTP/x.y request line; only HTTP/1.x is spoken here.
            raise Reply(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "only HTTP/1.1 is served")
        headers = _headers(scope)
        self._check_host(headers)
        method = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        if raw_path == b"/healthz":
            response.route = "/healthz"
            _require(method, "GET")
            await response.json(HTTPStatus.OK, {"status": "ok", "backend": self.cache.backend})
            return
        self._check_token(headers)
        response.authenticated = True
        if raw_path == b"/security-status":
            response.route = "/security-status"
            _require(method, "GET")
            await response.json(HTTPStatus.OK, await self.cache.status())
            return
        if raw_path == b"/metrics" and self.metrics is not None:
            response.route = "/metrics"
            _require(method, "GET")
            self.cache.reload_if_due()  # the data-key gauges as the files name them now
            body, content_type = self.metrics.render(headers.get(b"accept", b"").decode("latin-1"))
            await response.body(HTTPStatus.OK, body, content_type.encode("latin-1"))
            return
        if not raw_path.startswith(CACHE_PREFIX):
            raise Reply(HTTPStatus.NOT_FOUND, "no such route")
        response.route = "/cache/{key}"
        key = _cache_key(raw_path[len(CACHE_PREFIX) :])
        if method == "GET":
            await self._get(key, response)
        elif method == "PUT":
            ttl = _ttl(scope.get("query_string", b""))
            await self._put(key, ttl, headers, receive, response)
        elif method == "DELETE":
            deleted = await self.cache.delete(key)
            if not deleted:
                raise Reply(HTTPStatus.NOT_FOUND, "no such key")
            await response.empty(HTTPStatus.NO_CONTENT)
        else:
            _require(method, "")

    async def _get(self, key: str, response: _Response) -> None:
        # Its size is known once it is read: the largest value's share until then.
        settings = self.settings
        async with self.budget.reading(
            settings.max_value_bytes, settings.stall_timeout_s
        ) as settle:
            value = await self.cache.get(key)
            if value is None:
                raise Reply(HTTPStatus.NOT_FOUND, "no such key")
            settle(len(value))
            await response.body(HTTPStatus.OK, value, b"application/octet-stream")

    async def _put(
        self,
        key: str,
        ttl: int | None,
        headers: dict[bytes, bytes],
        receive: Receive,
        response: _Response,
    ) -> None:
        length = self._content_length(headers)
        with self.budget.reserve(length):
            body = await _read_body(receive, length, self.settings.body_timeout_s)
            await self.cache.set(key, body, ttl)
        await response.empty(HTTPStatus.NO_CONTENT)

    def _content_length(self, headers: dict[bytes, bytes]) -> int:
        if b"transfer-encoding" in headers:
            raise Reply(HTTPStatus.LENGTH_REQUIRED, "send Content-Length, not chunks")
        raw = headers.get(b"content-length", b"")
        if not raw.isdigit():
            raise Reply(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        length = int(raw)
        limit = self.settings.max_value_bytes
        if length > limit:
            raise Reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"values are limited to {limit} bytes")
        return length


class _Response:
    """Sends one response; remembers its status for the access log."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.status: int | str = "-"
        self.route = "-"
        self.authenticated = False  # an accepted token came with the request

    async def _start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        self.status = status
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def json(
        self,
        status: HTTPStatus,
        payload: dict[str, Any],
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = json.dumps(payload).encode()
        headers = [
            *(extra or []),
            *([(b"allow", ALLOWED_METHODS.encode())] if status == 405 else []),
        ]
        await self.body(status, body, b"application/json", headers)

    async def empty(self, status: HTTPStatus) -> None:
        await self._start(status, [(b"content-length", b"0"), *_COMMON_HEADERS])
        await self._send({"type": "http.response.body", "body": b""})

    async def body(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            *_COMMON_HEADERS,
            *(extra or []),
        ]
        await self._start(status, headers)
        view = memoryview(body)
        for start in range(0, max(len(body), 1), RESPONSE_CHUNK_BYTES):
            chunk = view[start : start + RESPONSE_CHUNK_BYTES]
            more = start + RESPONSE_CHUNK_BYTES < len(body)
            await self._send(
                {"type": "http.response.body", "body": bytes(chunk), "more_body": more}
            )


def _body_deadline_s(length: int, timeout_s: float) -> float:
    """How long a body of `length` bytes may take to arrive in full."""
    return timeout_s + length / MIN_BODY_BYTES_PER_S


async def _read_body(receive: Receive, length: int, timeout_s: float) -> bytes:
    """Exactly `length` bytes of request body, or _Disconnected/Reply: never a partial body.
    `timeout_s`: how long the body may stop arriving (ServiceSettings.body_timeout_s)."""
    try:
        async with asyncio.timeout(_body_deadline_s(length, timeout_s)):
            return await _receive_body(receive, length, timeout_s)
    except TimeoutError:
        raise Reply(HTTPStatus.REQUEST_TIMEOUT, "the body arrived too slowly") from None


async def _receive_body(receive: Receive, length: int, timeout_s: float) -> bytes:
    chunks: list[bytes] = []
    received = 0
    while True:
        try:
            message = await asyncio.wait_for(receive(), timeout_s)
        except TimeoutError:
            raise Reply(HTTPStatus.REQUEST_TIMEOUT, "the body stopped arriving") from None
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > length:
            raise Reply(HTTPStatus.BAD_REQUEST, "the body is longer than Content-Length")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if received != length:
        raise Reply(HTTPStatus.BAD_REQUEST, "the body is shorter than Content-Length")
    return b"".join(chunks)


def _require(method: str, allowed: str) -> None:
    if method != allowed:
        raise Reply(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed")


# Fields a request carries once. The first of two was kept: `Host: localhost` then `Host:
# evil.example` was served, and so was a good token then a bad one, where a proxy in front
# may read the other one. RFC 9112 (3.2): more than one Host line MUST get 400;
# Authorization is a singleton field (RFC 9110, 11.6.2).
_SINGLETON_HEADERS: Final = {b"host": "Host", b"authorization": "Authorization"}


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """Header name -> value; another header sent twice keeps its first value, and a Host or
    Authorization sent twice is refused (400)."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        lower = bytes(name).lower()
        if lower in headers and lower in _SINGLETON_HEADERS:
            raise Reply(HTTPStatus.BAD_REQUEST, f"send one {_SINGLETON_HEADERS[lower]} header")
        headers.setdefault(lower, bytes(value))
    return headers


def _cache_key(raw: bytes) -> str:
    """The decoded key of a /cache/ path: 1-4096 bytes of percent-encoded UTF-8."""
    try:
        key = unquote(raw.decode("ascii"), errors="strict")
        if not key:
            raise ValueError("empty key")
        logical_key(key)
    except (UnicodeDecodeError, ValueError):
        raise Reply(
            HTTPStatus.BAD_REQUEST, "the key must be 1-4096 bytes of percent-encoded UTF-8"
        ) from None
    return key


def _ttl(query: bytes) -> int | None:
    """The one `ttl` a PUT may carry. Anything else is refused, not ignored: a misspelt
    `?tll=60`, a blank `?ttl=` or a second ttl would otherwise store the value with no expiry
    or with one the client did not mean."""
    try:
        params = parse_qs(query.decode("ascii"), keep_blank_values=True)
    except UnicodeDecodeError:
        params = {"ttl": ["bad"]}
    if set(params) - {"ttl"} or len(params.get("ttl", [])) > 1:
        raise Reply(HTTPStatus.BAD_REQUEST, "PUT /cache/{key} takes one query parameter: ttl")
    values = params.get("ttl")
    if not values:
        return None
    raw = values[0].lstrip("0") or "0"
    # At most as many digits as MAX_TTL_SECONDS: int() refuses more than 4300 with a
    # ValueError, which answered 500 "internal error".
    if (
        raw.isascii()
        and raw.isdigit()
        and len(raw) <= len(str(MAX_TTL_SECONDS))
        and 0 < int(raw) <= MAX_TTL_SECONDS
    ):
        return int(raw)
    raise Reply(
        HTTPStatus.BAD_REQUEST, f"ttl must be a whole number of seconds from 1 to {MAX_TTL_SECONDS}"
    )


def log_request_counts(counts: dict[tuple[str, str, str], int]) -> None:
    """The access log's counted lines: requests per (method, route, status) (counted_log.py)."""
    for (method, route, status), count in counts.items():
        logger.info(
            "event=http_request method=%s route=%s status=%s count=%d", method, route, status, count
        )


def _token(text: str) -> str:
    """A method name as one log token (it comes from the client)."""
    return "".join(c if c.isalnum() else "_" for c in text[:16]) or "-"


async def _lifespan(receive: Receive, send: Send) -> None:
    """The server's startup/shutdown messages; the cache is opened and closed by service.py."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


__all__ = ["ALLOWED_METHODS", "CacheAPI", "Reply"]
