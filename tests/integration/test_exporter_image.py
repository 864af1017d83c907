"""The Redis exporter runs as a mode of the app image, hardened as the stack runs the app.

the app image's own uid, read-only root filesystem, all capabilities dropped, no-new-privileges, its
password and key as files on a read-only mount; host network to reach the fixture's loopback
port (the fixture's server certificate names 127.0.0.1).
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.components.exporter import EXPORTER_NPROC, exporter_healthcheck_test
from secure_cache.exporter_health import DEFAULT_METRICS_PORT
from secure_cache.metrics_server import IO_TIMEOUT_S
from tests.support.app_image import APP_UID, docker, write_material
from tests.support.exporter_redis import ExporterRedis, running_exporter_redis

MOUNT = "/run/secure-redis-exporter"


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return docker(*args, timeout=timeout)


@pytest.fixture(scope="module")
def image(app_image: str) -> str:
    return app_image


@pytest.fixture(scope="module")
def exporter_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterRedis]:
    with running_exporter_redis(tmp_path_factory.mktemp("exporter-image")) as setup:
        yield setup


@pytest.fixture
def material(exporter_redis: ExporterRedis, tmp_path: Path) -> Path:
    """The exporter's files as its volume would hold them: certificates 0444, secrets 0400."""
    files = {
        "ca.crt": (exporter_redis.server.material.ca_file.read_bytes(), 0o444),
        "exporter.crt": (exporter_redis.cert_file.read_bytes(), 0o444),
        "exporter.key": (exporter_redis.key_file.read_bytes(), 0o400),
        "password": (exporter_redis.password.encode(), 0o400),
    }
    return write_material(tmp_path / "material", files)


def _run_exporter(
    image: str, material: Path, url: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return _docker(
        "run", "--rm", "--network", "host",
        "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--user", f"{APP_UID}:{APP_UID}",
        "--volume", f"{material}:{MOUNT}:ro",
        "--env", f"REDIS_URL={url}",
        "--env", f"REDIS_PASSWORD_FILE={MOUNT}/password",
        "--env", f"REDIS_TLS_CA_CERT={MOUNT}/ca.crt",
        "--env", f"REDIS_TLS_CERT_FILE={MOUNT}/exporter.crt",
        "--env", f"REDIS_TLS_KEY_FILE={MOUNT}/exporter.key",
        "--env", "ENVIRONMENT=development",
        "--entrypoint", "python3", image, "-m", "secure_cache.redis_exporter", *args,
    )  # fmt: skip


def test_exporter_mode__scrapes_redis_from_the_hardened_image(
    image: str, material: Path, exporter_redis: ExporterRedis
) -> None:
    result = _run_exporter(image, material, exporter_redis.server.url, "scrape")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "\nredis_up 1.0\n" in result.stdout
    assert 'redis_errors_total{error="WRONGPASS"}' in result.stdout
    assert exporter_redis.password not in result.stdout + result.stderr


def test_exporter_mode__bad_configuration_exits_2(
    image: str, material: Path, exporter_redis: ExporterRedis
) -> None:
    result = _run_exporter(image, material, "redis://127.0.0.1:6379", "scrape")
    assert result.returncode == 2
    assert "REDIS_URL must be rediss://" in result.stderr


@pytest.fixture
def serving_exporter(image: str, material: Path) -> Iterator[str]:
    """The exporter serving /metrics on the default bridge with the deployed `nproc` limit (a
    Redis that refuses at once: what is tested is the HTTP side). Yields the container name."""
    name = f"secure-redis-test-exporter-{uuid.uuid4().hex[:8]}"
    started = _docker(
        "run", "--detach", "--name", name, "--label", "io.secure-redis.stack=test",
        "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--user", f"{APP_UID}:{APP_UID}",
        "--ulimit", f"nproc={EXPORTER_NPROC}:{EXPORTER_NPROC}",
        "--volume", f"{material}:{MOUNT}:ro",
        "--env", "REDIS_URL=rediss://127.0.0.1:1",
        "--env", f"REDIS_PASSWORD_FILE={MOUNT}/password",
        "--env", f"REDIS_TLS_CA_CERT={MOUNT}/ca.crt",
        "--env", f"REDIS_TLS_CERT_FILE={MOUNT}/exporter.crt",
        "--env", f"REDIS_TLS_KEY_FILE={MOUNT}/exporter.key",
        "--env", "ENVIRONMENT=development",
        "--env", "METRICS_HOST=0.0.0.0",
        "--entrypoint", "python3", image, "-m", "secure_cache.redis_exporter", "serve",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        yield name
    finally:
        _docker("rm", "--force", name)


def _healthcheck(name: str) -> subprocess.CompletedProcess[str]:
    return _docker("exec", name, *exporter_healthcheck_test()[1:])  # as the engine runs it


def _scrape_once_the_held_ones_are_gone(address: str) -> bytes:
    """A scrape, once the server's handler threads have seen the held connections close.

    Until a thread reads its connection's end of file, the connection still counts against
    the cap, and a scrape sent in that moment is refused like any connection beyond it. The
    wait stays under the server's per-read timeout (IO_TIMEOUT_S) and deadline, so a pass
    shows that closing frees the slots, not that a timeout did."""
    url = f"http://{address}:{DEFAULT_METRICS_PORT}/metrics"
    give_up = time.monotonic() + IO_TIMEOUT_S / 2
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                body: bytes = reply.read()
                return body
        except (ConnectionError, urllib.error.URLError):  # refused: reset, or closed unanswered
            if time.monotonic() > give_up:
                raise
            time.sleep(0.05)


def test_exporter_mode__idle_connections_from_the_network_leave_it_serving_and_healthy(
    serving_exporter: str,
) -> None:
    """Slowloris against the deployed limits: more idle connections than the uid's `nproc`
    budget, from outside the container (the bridge gateway, not loopback). Before
    app/secure_cache/metrics_server.py, each held a thread forever: the health check could
    not start a process, and every refused connection logged a traceback."""
    address = _docker(
        "inspect", "--format", "{{.NetworkSettings.IPAddress}}", serving_exporter
    ).stdout.strip()
    for _ in range(100):
        if _healthcheck(serving_exporter).returncode == 0:
            break
        time.sleep(0.1)
    else:
        pytest.fail(_docker("logs", serving_exporter).stderr[-2000:])
    held = [socket.create_connection((address, DEFAULT_METRICS_PORT), 5) for _ in range(100)]
    try:
        time.sleep(1)  # every connection accepted (or refused) by now
        during = _healthcheck(serving_exporter)
    finally:
        for sock in held:
            sock.close()
    assert during.returncode == 0, during.stdout + during.stderr
    assert b"\nredis_up 0.0\n" in _scrape_once_the_held_ones_are_gone(address)
    logs = _docker("logs", serving_exporter)
    assert "Traceback" not in logs.stdout + logs.stderr, logs.stderr[-2000:]
