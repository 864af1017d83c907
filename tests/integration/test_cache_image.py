"""The app image builds here and its container serves the HTTP API against the TLS fixture.

The container runs as deployed: the app uid, read-only root filesystem with a tmpfs /tmp, all
capabilities dropped, no-new-privileges, secrets only as files on a read-only mount. It
joins the host network so it can reach the fixture's loopback port (the fixture's server
certificate names 127.0.0.1).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secure_cache import SecureCache
from tests.support.app_image import APP_UID, docker, write_material
from tests.support.cache_env import cache_environ, raw_client
from tests.support.tls_redis import TlsRedisServer, free_port

API_TOKEN = "k" * 40  # checkov:skip=CKV_SECRET_6: a test token
MOUNT = "/run/secure-cache"


def _docker(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return docker(*args, check=check, timeout=timeout)


@pytest.fixture(scope="module")
def image(app_image: str) -> str:
    return app_image


@pytest.fixture
def material_dir(tls_redis: TlsRedisServer, tmp_path: Path) -> Path:
    """What the app's init container writes into its volume: certs 0444, secrets 0400."""
    m = tls_redis.material
    files = {
        "ca.crt": (m.ca_file.read_bytes(), 0o444),
        "app.crt": (m.app.cert_file.read_bytes(), 0o444),
        "app.key": (m.app.key_file.read_bytes(), 0o400),
        "password": (m.app_password.encode(), 0o400),
        "data-key": (m.data_key.encode(), 0o400),
        "api.token": (API_TOKEN.encode(), 0o400),
    }
    return write_material(tmp_path / "material", files)


@pytest.fixture
def container(
    image: str, tls_redis: TlsRedisServer, material_dir: Path
) -> Iterator[dict[str, Any]]:
    name = f"secure-redis-test-app-{uuid.uuid4().hex[:10]}"
    http_port = free_port()
    env = {
        "ENVIRONMENT": "development",
        "REDIS_URL": tls_redis.url,
        "REDIS_USERNAME": "app",
        "REDIS_PASSWORD_FILE": f"{MOUNT}/password",
        "REDIS_TLS_CA_CERT": f"{MOUNT}/ca.crt",
        "REDIS_TLS_CERT_FILE": f"{MOUNT}/app.crt",
        "REDIS_TLS_KEY_FILE": f"{MOUNT}/app.key",
        "REDIS_ENCRYPTION_KEY_FILE": f"{MOUNT}/data-key",
        "HTTP_PORT": str(http_port),
        "HTTP_API_TOKEN_FILE": f"{MOUNT}/api.token",
    }
    env_args = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    _docker(
        "run", "--detach", "--name", name,
        "--label", "io.secure-redis.role=app", "--label", "io.secure-redis.stack=test",
        "--network", "host", "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=16m",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
        "--user", f"{APP_UID}:{APP_UID}", "--memory", "256m", "--pids-limit", "64",
        "--health-interval", "1s", "--health-start-period", "1s",
        "--volume", f"{material_dir}:{MOUNT}:ro", *env_args, image,
    )  # fmt: skip
    try:
        _wait_http(http_port, name)
        yield {"name": name, "port": http_port}
    finally:
        _docker("rm", "--force", name, check=False)


def _wait_http(port: int, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        state = _docker("inspect", "--format", "{{.State.Status}}", name, check=False).stdout
        if state.strip() == "exited":
            break
        time.sleep(0.2)
    logs = _docker("logs", name, check=False)
    raise AssertionError(f"the service did not answer:\n{logs.stdout}\n{logs.stderr}")


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Authorization": f"Bearer {API_TOKEN}"})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_image__runs_as_its_default_uid_with_a_healthcheck_and_no_secrets(image: str) -> None:
    config = json.loads(_docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"] == f"{APP_UID}:{APP_UID}"
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "python3"]
    env_names = {item.split("=", 1)[0] for item in config["Env"]}
    assert not {n for n in env_names if "PASSWORD" in n or "KEY" in n}
    history = _docker("image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "PASSWORD" not in history
    assert "ENCRYPTION_KEY" not in history


# Run by the image's interpreter: which of these it can import, and whether the app's modules
# were byte-compiled at build time (the root filesystem is read-only at runtime).
_INSTALLED = """import importlib.util, json, os
found = {name: importlib.util.find_spec(name) for name in
         ("secure_cache", "redis", "cryptography", "uvicorn", "uvloop", "pip", "setuptools")}
main = found["secure_cache"] and importlib.util.find_spec("secure_cache.__main__").origin
compiled = bool(main) and os.path.exists(importlib.util.cache_from_source(main))
print(json.dumps({"importable": sorted(n for n, s in found.items() if s), "compiled": compiled}))
"""


def test_image__holds_the_app_and_its_pins_compiled_and_no_installer(image: str) -> None:
    """app/Dockerfile makes the venv without pip (Debian's pip wheel installs into it): neither
    pip nor setuptools may remain in the image, as when they were uninstalled after the fact."""
    done = _docker("run", "--rm", "--network", "none", "--entrypoint", "python3", image,
                   "-c", _INSTALLED)  # fmt: skip
    report = json.loads(done.stdout)
    assert report["importable"] == ["cryptography", "redis", "secure_cache", "uvicorn", "uvloop"]
    assert report["compiled"] is True


def test_container__serves_the_http_api_against_tls_redis(
    container: dict[str, Any], tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    port = container["port"]
    value = b"stored through the container " + os.urandom(16)
    assert _request(port, "PUT", "/cache/image%3Atest?ttl=300", value)[0] == 204
    assert _request(port, "GET", "/cache/image%3Atest") == (200, value)

    status = json.loads(_request(port, "GET", "/security-status")[1])
    assert status["backend"] == "redis"
    assert status["redis"]["tls_version"] == "TLSv1.3"
    assert status["redis"]["acl_user"] == "app"
    assert status["counters"]["auth_failures"] == 0

    # What the container wrote is an envelope at rest, and the library reads it back.
    with SecureCache.from_env(cache_environ(tls_redis, tmp_path / "s")) as library:
        stored = raw_client(tls_redis).get(library.stored_name("image:test"))
        assert isinstance(stored, bytes)
        assert b"stored through the container" not in stored
        assert library.get("image:test") == value

    assert _request(port, "DELETE", "/cache/image%3Atest")[0] == 204
    assert _request(port, "GET", "/cache/image%3Atest")[0] == 404


def test_container__serves_on_uvloop(container: dict[str, Any]) -> None:
    """The image's service runs on uvloop's loop (service.serve), as it reports on starting."""
    logs = _docker("logs", container["name"]).stderr
    started = [line for line in logs.splitlines() if "event=service_started" in line]
    assert len(started) == 1, logs
    assert started[0].endswith(" loop=uvloop.Loop"), started[0]


def test_container__is_hardened_and_reports_healthy(container: dict[str, Any]) -> None:
    host_config = json.loads(
        _docker("inspect", "--format", "{{json .HostConfig}}", container["name"]).stdout
    )
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    deadline = time.monotonic() + 60
    health = ""
    while time.monotonic() < deadline:
        health = _docker(
            "inspect", "--format", "{{.State.Health.Status}}", container["name"]
        ).stdout.strip()
        if health != "starting":
            break
        time.sleep(0.5)
    assert health == "healthy"
    user = _docker("exec", container["name"], "python3", "-c", "import os; print(os.getuid())")
    assert user.stdout.strip() == str(APP_UID)
    write = _docker("exec", container["name"], "python3", "-c", "open('/opt/x', 'w')", check=False)
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr
