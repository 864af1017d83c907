"""infra/rotation_probe.py when the Docker engine does not answer: an error the operator can
act on (exit 3, no traceback), and a slow engine is a ProbeError that _wait looks past.

A real docker-py client against a real Unix socket: none at all, or one that answers the API
version and then nothing (an engine too busy to answer within the client's timeout)."""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from infra.rotation_probe import Missing, Probe, ProbeError, way_on
from infra.settings import REPO_ROOT


def test_snapshot__no_engine_is_an_error_naming_it_not_a_traceback(tmp_path: Path) -> None:
    """Exit 3 (README's exit codes: the stack cannot be observed), not 1 (not settled)."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path / 'none.sock'}"}
    done = subprocess.run(
        [sys.executable, "-m", "infra.rotation_probe", "snapshot", "--stack", "dev"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("rotation_probe: error: the Docker engine does not answer")


class _SilentAfterVersion(BaseHTTPRequestHandler):
    """Answers GET /version, then holds every other request unanswered."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.endswith("/version"):
            body = json.dumps({"ApiVersion": "1.41", "Version": "stand-in"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        time.sleep(3)


class _UnixHttpServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def busy_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    path = tmp_path / "engine.sock"
    server = _UnixHttpServer(str(path), _SilentAfterVersion)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.usefixtures("busy_engine")
def test_probe__an_engine_that_does_not_answer_in_time_is_a_probe_error() -> None:
    probe = Probe("dev", 6379, engine_timeout=0.5)
    with pytest.raises(ProbeError, match=r"secure-redis-dev-redis: .*timed out"):
        probe.snapshot()


@pytest.mark.usefixtures("busy_engine")
def test_reload_evidence__an_engine_that_does_not_answer_is_named_not_raised() -> None:
    """Printed after "not settled": a slow engine must not turn exit 1 into a traceback."""
    lines = Probe("dev", 6379, engine_timeout=0.5).reload_evidence()
    assert [line.split(":", 1)[0] for line in lines] == [
        "secure-redis-dev-redis-init",
        "secure-redis-dev-reload-tls",
    ]
    assert all("not readable" in line and "timed out" in line for line in lines), lines


class _NoSuchContainer:
    def inspect_container(self, name: str) -> dict[str, Any]:
        raise docker.errors.NotFound(f"No such container: {name}")


def test_snapshot__a_missing_container_is_named_with_the_way_to_deploy_or_finish_the_up() -> None:
    """Not Docker's bare `404 Client Error ... No such container`: what is missing, and (the
    cause known, rotation_probe.way_on) how to make it."""
    probe = Probe.__new__(Probe)
    probe.stack, probe.redis, probe.app = "s9", "secure-redis-s9-redis", "secure-redis-s9-app"
    probe.recorded, probe.reread = None, None
    probe.client = SimpleNamespace(api=_NoSuchContainer())
    with pytest.raises(Missing) as caught:
        probe.snapshot()
    assert str(caught.value) == "secure-redis-s9-redis does not exist"
    way = way_on("s9", caught.value)
    assert "Not deployed: scripts/setup-secure-redis.sh s9" in way
    assert "python -m infra.apply up --stack s9" in way
    assert "status.sh" not in way
    assert "status.sh s9" in way_on("s9", ProbeError("secure-redis-s9-app: python3 exited 1"))


class _NoContainers:
    def get(self, name: str) -> Any:
        raise docker.errors.NotFound(
            f"404 Client Error for http+docker://localhost/v1.43/containers/{name}/json: "
            f"Not Found (No such container: {name})"
        )


def test_served__a_missing_app_is_named_not_dockers_404() -> None:
    """An up that retires a CA asks what Redis serves from the app (infra/apply.py
    `_retire_refusal`); with Redis running and the app container gone its refusal quoted
    Docker's bare `404 Client Error for http+docker://...` where it now names the app."""
    probe = Probe.__new__(Probe)
    probe.stack, probe.redis, probe.app = "s9", "secure-redis-s9-redis", "secure-redis-s9-app"
    probe.recorded, probe.reread = None, None
    probe.port, probe.client = 6379, SimpleNamespace(containers=_NoContainers())
    with pytest.raises(Missing) as caught:
        probe._served(None)
    assert str(caught.value) == "secure-redis-s9-app does not exist"
