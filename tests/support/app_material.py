"""A copy of the app's material volume and a stand-in for its HTTP API on loopback, for the
scripts infra/rotation_probe.py runs inside the app container (APP_FACTS, ROUND_TRIP).

The stand-in answers as app/secure_cache/service.py does where the scripts look: the bearer
token is checked, /security-status is JSON, /cache/<key> stores, reads and deletes a value.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from infra import pki
from infra.rotation_probe import app_facts_command, read_app_facts
from tests.support.rotating_redis import HOST_NAME, RotatingRedis

REVISION = "..2026_12_01_rev1"


@dataclass(frozen=True)
class AppMaterial:
    directory: Path
    token: str
    previous_tokens: tuple[str, ...]
    password: str


def app_material(
    tmp_path: Path,
    redis: RotatingRedis,
    cert: pki.CertifiedKey,
    *,
    token: str,
    previous_tokens: tuple[str, ...] = (),
    password: str = "app password for the probe test",
) -> AppMaterial:
    """The app's volume layout: files in a revision directory, `..data` pointing at it."""
    directory = tmp_path / "app-material"
    revision = directory / REVISION
    revision.mkdir(parents=True)
    files = {
        "ca.crt": pki.trust_bundle([c.cert_pem for c in redis.trusted]),
        "app.crt": cert.cert_pem,
        "app.key": cert.key_pem,
        "api.token": f"{token}\n".encode(),
        "api.previous-tokens": "".join(f"{t}\n" for t in previous_tokens).encode(),
        "redis.password": f"{password}\n".encode(),
    }
    for name, content in files.items():
        (revision / name).write_bytes(content)
        (directory / name).symlink_to(f"..data/{name}")
    (directory / "..data").symlink_to(REVISION)
    return AppMaterial(directory, token, previous_tokens, password)


@dataclass
class StatusApi:
    """The app's API on a free loopback port. `status` is what /security-status answers;
    `corrupt_reads` makes GET answer something else than was stored."""

    token: str
    status: dict[str, Any] = field(
        default_factory=lambda: {"backend": "redis", "encryption": {"primary_key_id": "k1"}}
    )
    corrupt_reads: bool = False
    store: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __enter__(self) -> StatusApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: bytes = b"") -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                api.requests.append((self.command, self.path))
                if self.headers.get("Authorization") != f"Bearer {api.token}":
                    self._answer(401)
                elif self.command == "GET" and self.path == "/security-status":
                    self._answer(200, json.dumps(api.status).encode())
                elif self.command == "PUT":
                    length = int(self.headers.get("Content-Length") or 0)
                    api.store[self.path] = self.rfile.read(length)
                    self._answer(204)
                elif self.command == "GET" and self.path in api.store:
                    value = api.store[self.path]
                    self._answer(200, b"other" + value if api.corrupt_reads else value)
                elif self.command == "DELETE":
                    api.store.pop(self.path, None)
                    self._answer(204)
                else:
                    self._answer(404)

            do_GET = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def run_here(command: list[str], *, check: bool = False) -> subprocess.CompletedProcess[str]:
    """A command the probe runs in the app container (`python3 -c SCRIPT ARGS`, its own argv),
    run on this host with this interpreter."""
    _python, *argv = command
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )


def run_app_facts(
    material: AppMaterial, redis: RotatingRedis, api: StatusApi
) -> subprocess.CompletedProcess[str]:
    """APP_FACTS as the probe runs it, with this host's material directory and API."""
    return run_here(app_facts_command(HOST_NAME, redis.port, str(material.directory), api.base))


def app_facts(material: AppMaterial, redis: RotatingRedis, api: StatusApi) -> dict[str, Any]:
    done = run_app_facts(material, redis, api)
    assert done.returncode == 0, done.stderr[-2000:]
    return read_app_facts("the app-facts script", done.stdout)


__all__ = ["AppMaterial", "StatusApi", "app_facts", "app_material", "run_app_facts", "run_here"]
