"""A hostile Redis for tests: a TLS server holding a certificate the test CA signed, speaking
RESP2, that answers the secure_cache client and the Redis exporter with whatever a test scripts.

The threat it stands for: Redis (or whoever holds a server certificate the CA signed) is
compromised or replaced. Mutual TLS and AUTH succeed as against the real server: the same
PKI as tests/support/tls_redis.py (TlsMaterial), the client certificate required and checked
against the CA, AUTH checked against the app's and the exporter's passwords. After that, each
command goes to `answer`, which a test replaces: by default a small honest store (PING, GET,
SET, DEL, MGET) whose `store` a test may edit directly (swap or replay envelopes), so that
the client's own envelopes are what a hostile answer is made of.

An answer is either bytes (written as they are, any number of replies or none) or a coroutine
function that gets the stream writer (drip a reply, sleep, close mid-reply). Duck-typed like
TlsRedisServer where tests/support/cache_env.py reads it (material, url, key_prefix).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hiredis

from infra.redis_acl import DEFAULT_KEY_PREFIX
from tests.support.tls_redis import TlsMaterial

Script = Callable[[asyncio.StreamWriter], Awaitable[None]]
Answer = bytes | Script
Handler = Callable[[list[bytes]], Answer | None]

# checkov:skip=CKV_SECRET_6: a made-up password the hostile server accepts, not a credential
EXPORTER_PASSWORD = "exporter-password-for-hostile-tests"


def bulk(value: bytes | None) -> bytes:
    return b"$-1\r\n" if value is None else b"$%d\r\n%b\r\n" % (len(value), value)


def array(*items: bytes) -> bytes:
    """A RESP array of already-encoded replies."""
    return b"*%d\r\n%b" % (len(items), b"".join(items))


@dataclass
class Seen:
    """What the server saw: every command after AUTH, connections opened, bytes written."""

    commands: list[list[bytes]] = field(default_factory=list)
    connections: int = 0
    bytes_sent: int = 0


class HostileRedis:
    """The server, on 127.0.0.1 and a free port, in an event loop of its own thread."""

    def __init__(self, *, key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="secure-redis-hostile-"))
        self.material = TlsMaterial.generate(self.workdir / "tls")
        self.key_prefix = key_prefix
        self.host = "127.0.0.1"
        self.port = 0
        self.store: dict[bytes, bytes] = {}
        self.seen = Seen()
        self.answer: Handler = self.honest
        self._passwords = {
            b"app": self.material.app_password.encode(),
            b"rotation": self.material.rotation_password.encode(),
            b"exporter": EXPORTER_PASSWORD.encode(),
        }
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"rediss://{self.host}:{self.port}"

    # -- answers --------------------------------------------------------------------------

    def honest(self, command: list[bytes]) -> Answer | None:
        """What Redis answers, for the commands the cache and the exporter send."""
        name, args, store = command[0].upper(), command[1:], self.store
        if name == b"SET":
            store[args[0]] = args[1]
            return b"+OK\r\n"
        answers: dict[bytes, Callable[[], bytes]] = {
            b"PING": lambda: b"+PONG\r\n",
            b"GET": lambda: bulk(store.get(args[0])),
            b"MGET": lambda: array(*(bulk(store.get(key)) for key in args)),
            b"DEL": lambda: b":%d\r\n" % sum(store.pop(key, None) is not None for key in args),
            b"INFO": lambda: bulk(
                b"# Server\r\nuptime_in_seconds:1\r\ntcp_port:%d\r\n" % self.port
            ),
            b"ACL": lambda: b"*0\r\n",
        }
        make = answers.get(name)
        return make() if make is not None else b"-ERR unknown command\r\n"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.material.server.cert_file, self.material.server.key_file)
        context.load_verify_locations(self.material.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, self.host, 0, ssl=context), self._loop
        )
        self._server = started.result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def drop_connections(self) -> None:
        """Close every client connection (the next call reconnects)."""

        async def drop() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(10)

    # -- one connection -------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.seen.connections += 1
        self._writers.add(writer)
        parser = hiredis.Reader()
        authenticated = False
        try:
            while data := await reader.read(65536):
                parser.feed(data)
                while (command := parser.gets()) is not False:
                    args: list[bytes] = list(command)
                    if args[0].upper() == b"AUTH":
                        authenticated = self._passwords.get(args[1]) == args[2]
                        await self._write(
                            writer,
                            b"+OK\r\n" if authenticated else b"-WRONGPASS invalid password\r\n",
                        )
                        continue
                    if not authenticated:
                        await self._write(writer, b"-NOAUTH Authentication required.\r\n")
                        continue
                    self.seen.commands.append(args)
                    answer = self.answer(args)
                    if answer is None:
                        continue
                    if isinstance(answer, bytes):
                        await self._write(writer, answer)
                    else:
                        await answer(writer)
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        self.seen.bytes_sent += len(data)
        writer.write(data)
        await writer.drain()


class Drip:
    """Writes `data` `chunk` bytes at a time, `every_s` apart (a slow server); `written`
    says how many bytes went out, `finished` whether all of them did."""

    def __init__(self, data: bytes, every_s: float, *, chunk: int = 1) -> None:
        self.data, self.every_s, self.chunk = data, every_s, chunk
        self.written = 0
        self.finished = False

    async def __call__(self, writer: asyncio.StreamWriter) -> None:
        for start in range(0, len(self.data), self.chunk):
            writer.write(self.data[start : start + self.chunk])
            await writer.drain()
            self.written = start + self.chunk
            await asyncio.sleep(self.every_s)
        self.finished = True


def drip(data: bytes, every_s: float, *, chunk: int = 1) -> Drip:
    return Drip(data, every_s, chunk=chunk)


def then_close(data: bytes) -> Script:
    """Write `data`, then close the connection (a server that dies mid-reply)."""

    async def run(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        writer.transport.abort()

    return run


class Endless:
    """`head`, then `item` repeated until `limit_bytes` were written or the peer went away
    (a huge bulk string or an endless array); `written` says how many bytes went out, to
    the kernel's socket buffers at least (so more than the peer read, by those)."""

    def __init__(self, head: bytes, item: bytes, *, limit_bytes: int) -> None:
        self.head, self.item, self.limit_bytes = head, item, limit_bytes
        self.written = 0

    async def __call__(self, writer: asyncio.StreamWriter) -> None:
        writer.write(self.head)
        self.written = len(self.head)
        block = self.item * max(1, 65536 // len(self.item))
        while self.written < self.limit_bytes and not writer.is_closing():
            writer.write(block)
            self.written += len(block)
            await writer.drain()
            # drain() does not yield while the buffer is below its high-water mark: without
            # this the loss of the connection was never seen and the loop wrote on, unsent.
            await asyncio.sleep(0)


def endless(head: bytes, item: bytes, *, limit_bytes: int) -> Endless:
    return Endless(head, item, limit_bytes=limit_bytes)


def exporter_environ(server: HostileRedis) -> dict[str, str]:
    """The Redis exporter's environment for `server` (the app's client certificate: the
    server checks only that the CA signed it)."""
    material = server.material
    return {
        "REDIS_URL": server.url,
        "REDIS_USERNAME": "exporter",
        "REDIS_PASSWORD": EXPORTER_PASSWORD,
        "REDIS_TLS_CA_CERT": str(material.ca_file),
        "REDIS_TLS_CERT_FILE": str(material.app.cert_file),
        "REDIS_TLS_KEY_FILE": str(material.app.key_file),
        "ENVIRONMENT": "development",
    }


@contextlib.contextmanager
def hostile_redis(**kwargs: Any) -> Iterator[HostileRedis]:
    server = HostileRedis(**kwargs)
    try:
        server.start()
        yield server
    finally:
        server.close()


__all__ = [
    "EXPORTER_PASSWORD",
    "Answer",
    "Drip",
    "Endless",
    "HostileRedis",
    "Seen",
    "array",
    "bulk",
    "drip",
    "endless",
    "exporter_environ",
    "hostile_redis",
    "then_close",
]
