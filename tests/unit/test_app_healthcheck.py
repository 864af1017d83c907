"""The app image's health check (app/Dockerfile HEALTHCHECK: `python -m secure_cache
healthcheck`), run as the engine runs it: against a real HTTP server on loopback, in a fresh
interpreter, loading nothing beyond the standard library (the client's redis and cryptography
were loaded on every run before; tests/unit/test_exporter_health.py does the same for the
exporter's check)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT
from tests.support.loaded_modules import Loaded, beyond_the_standard_library, run_and_list


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}\n')

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    thread.join()


def _declared_check() -> list[str]:
    """The HEALTHCHECK's CMD in app/Dockerfile (its exec form: a JSON array)."""
    text = (REPO_ROOT / "app" / "Dockerfile").read_text()
    line = text.split("HEALTHCHECK", 1)[1].split("CMD", 1)[1].splitlines()[0]
    return list(json.loads(line))


def _check(tmp_path: Path, port: int) -> Loaded:
    python, dash_m, module, *args = _declared_check()
    assert (python, dash_m) == ("python3", "-m")
    return run_and_list(tmp_path, module, *args, env={**os.environ, "HTTP_PORT": str(port)})


def test_declared_check__is_the_command_lines_healthcheck() -> None:
    assert _declared_check() == ["python3", "-m", "secure_cache", "healthcheck"]


def test_service_answering__healthy__with_the_standard_library_alone(
    tmp_path: Path, health_port: int
) -> None:
    loaded = _check(tmp_path, health_port)
    assert loaded.code == 0, loaded.stderr
    beyond = beyond_the_standard_library(loaded)
    assert not beyond, f"the health check loaded {sorted(beyond)}"


def test_service_not_answering__unhealthy_in_one_line(tmp_path: Path) -> None:
    with HTTPServer(("127.0.0.1", 0), _Health) as closed:
        port = closed.server_address[1]  # bound, then closed: nothing listens there
    loaded = _check(tmp_path, port)
    assert loaded.code == 1
    assert loaded.stderr.startswith(f"healthcheck: http://127.0.0.1:{port}/healthz did not ")
    assert loaded.stderr.count("\n") == 1
