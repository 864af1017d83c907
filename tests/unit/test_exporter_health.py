"""The exporter container's health check (app/secure_cache/exporter_health.py), run as the
engine runs it (infra/components/exporter.py): against a real HTTP server on loopback, in a
fresh interpreter, loading nothing beyond the standard library."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from infra.components.exporter import exporter_healthcheck_test
from tests.support.loaded_modules import Loaded, beyond_the_standard_library, run_and_list

MODULE = exporter_healthcheck_test()[-1]


class _Metrics(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/metrics" else 404)
        self.end_headers()
        self.wfile.write(b"redis_up 0\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def metrics_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    thread.join()


def _check(tmp_path: Path, port: int | str) -> Loaded:
    env = {**os.environ, "METRICS_HOST": "127.0.0.1", "METRICS_PORT": str(port)}
    return run_and_list(tmp_path, MODULE, env=env)


def test_declared_check__is_its_own_module() -> None:
    assert exporter_healthcheck_test() == ["CMD", "python3", "-m", "secure_cache.exporter_health"]


def test_metrics_answering__healthy__with_the_standard_library_alone(
    tmp_path: Path, metrics_port: int
) -> None:
    loaded = _check(tmp_path, metrics_port)
    assert loaded.code == 0, loaded.stderr
    beyond = beyond_the_standard_library(loaded)
    assert not beyond, f"the health check loaded {sorted(beyond)}"


def test_metrics_not_answering__unhealthy_in_one_line(tmp_path: Path) -> None:
    with HTTPServer(("127.0.0.1", 0), _Metrics) as closed:
        port = closed.server_address[1]  # bound, then closed: nothing listens there
    loaded = _check(tmp_path, port)
    assert loaded.code == 1
    assert loaded.stderr.startswith("healthcheck failed: ")
    assert loaded.stderr.count("\n") == 1


def test_metrics_port_no_number__exit_2(tmp_path: Path) -> None:
    loaded = _check(tmp_path, "91x")
    assert (loaded.code, loaded.stderr) == (2, "METRICS_PORT must be a port number\n")
