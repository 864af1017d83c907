"""A Docker engine on a unix socket that answers just what an exec needs, and writes an exec's
output the way a client on a loaded machine finds it: already in the socket, right behind the
`101 UPGRADED` headers, when the client gets to read them (infra/docker_exec.py).

`docker.DockerClient(base_url=engine.url, version=API)` talks to it: `containers.get`, and the
exec's create, start and inspect. Each exec's output is written with its headers in one write
(`first` bytes of the frames, all by default); the rest follows once the client has read that.
"""

from __future__ import annotations

import json
import socket
import struct
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

API = "1.41"
CONTAINER_ID = "c" * 64
UPGRADED = (
    b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
    b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
)


def frames(*chunks: tuple[int, bytes]) -> bytes:
    """(stream, payload) pairs as the engine multiplexes them: 1 stdout, 2 stderr."""
    return b"".join(struct.pack(">BxxxL", stream, len(data)) + data for stream, data in chunks)


@dataclass
class FakeEngine:
    path: Path
    stream: bytes
    """What every exec's start writes after the headers (`frames(...)`)."""
    exit_code: int = 0
    start_status: int = 101
    # How many exec inspects answer as the engine does when the stream's end overtakes the
    # process's exit event: still running, no exit code yet.
    running_inspects: int = 0
    starts: int = 0
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _serve(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        buffered = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffered:
                    more = conn.recv(65536)
                    if not more:
                        return
                    buffered += more
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                length = next(
                    (int(v) for k, _, v in (h.partition(":") for h in lines[1:])
                     if k.lower() == "content-length"),
                    0,
                )  # fmt: skip
                while len(buffered) < length:
                    buffered += conn.recv(65536)
                buffered = buffered[length:]
                method, target, _version = lines[0].split(" ")
                self.requests.append(f"{method} {target}")
                if method == "POST" and target.endswith("/start"):
                    self._start(conn)
                    return
                self._answer(conn, method, target)

    def _start(self, conn: socket.socket) -> None:
        self.starts += 1
        if self.start_status != 101:
            self._json(conn, self.start_status, {"message": "container is not running"})
            return
        conn.sendall(UPGRADED + self.stream)
        conn.shutdown(socket.SHUT_WR)

    def _answer(self, conn: socket.socket, method: str, target: str) -> None:
        if method == "GET" and "/containers/" in target and target.endswith("/json"):
            self._json(conn, 200, {"Id": CONTAINER_ID, "Name": "/fake", "Config": {}})
        elif method == "POST" and target.endswith("/exec"):
            self._json(conn, 201, {"Id": "e" * 64})
        elif method == "GET" and "/exec/" in target and target.endswith("/json"):
            if self.running_inspects > 0:
                self.running_inspects -= 1
                self._json(conn, 200, {"ExitCode": None, "Running": True})
            else:
                self._json(conn, 200, {"ExitCode": self.exit_code, "Running": False})
        else:
            self._json(conn, 404, {"message": f"no such thing: {method} {target}"})

    @staticmethod
    def _json(conn: socket.socket, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        conn.sendall(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )


@contextmanager
def fake_engine(
    stream: bytes, *, exit_code: int = 0, start_status: int = 101, running_inspects: int = 0
) -> Iterator[FakeEngine]:
    # A short directory of its own: a unix socket's path has at most 107 bytes, and pytest's
    # tmp_path with a long test name is longer.
    with tempfile.TemporaryDirectory(prefix="fake-engine-") as directory:
        engine = FakeEngine(
            Path(directory) / "docker.sock", stream, exit_code, start_status, running_inspects
        )
        with _serving(engine):
            yield engine


@contextmanager
def _serving(engine: FakeEngine) -> Iterator[None]:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(engine.path))
    server.listen(8)
    thread = threading.Thread(target=engine._serve, args=(server,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(timeout=5)


__all__ = ["API", "CONTAINER_ID", "FakeEngine", "fake_engine", "frames"]
