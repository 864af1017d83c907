"""Helpers shared by the tests/integration/test_cache_*.py modules.

Builds the environment a deployment gives the client (secrets as *_FILE in a directory,
certificate paths, rediss:// URL) for a TlsRedisServer, and a raw redis-py client with the
app's identity for looking at what is stored at rest.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from infra.redis_acl import APP_USER, ROTATION_USER
from secure_cache.settings import Settings
from tests.support.tls_redis import TlsRedisServer


class FakeClock:
    """A monotonic clock the test moves by hand (TTLs and reconnect backoff)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# The data key of core_settings(): tests that build their own Keyring use the same one.
CORE_DATA_KEY = bytes(range(32))


def core_settings(**changes: Any) -> Settings:
    """Settings for CacheCore without any file or server (unit tests); `changes` override."""
    base: dict[str, Any] = {
        "environment": "development",
        "host": "redis",
        "port": 6380,
        "db": 0,
        "username": "app",
        "password": "p" * 24,
        "ca_file": None,
        "cert_file": "/c",
        "key_file": "/k",
        "data_key": CORE_DATA_KEY,
    }
    base.update(changes)
    return Settings(**base)


def new_data_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def write_secret(directory: Path, name: str, content: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(content + "\n")
    path.chmod(0o400)
    return path


def cache_environ(
    server: TlsRedisServer,
    secrets_dir: Path,
    *,
    environment: str = "development",
    data_key: str | None = None,
    previous_keys: tuple[str, ...] = (),
    **overrides: str | None,
) -> dict[str, str]:
    """The environment a deployed app container gets, with secrets delivered as files."""
    material = server.material
    env = {
        "ENVIRONMENT": environment,
        "REDIS_URL": server.url,
        "REDIS_USERNAME": APP_USER,
        "REDIS_PASSWORD_FILE": str(write_secret(secrets_dir, "password", material.app_password)),
        "REDIS_TLS_CA_CERT": str(material.ca_file),
        "REDIS_TLS_CERT_FILE": str(material.app.cert_file),
        "REDIS_TLS_KEY_FILE": str(material.app.key_file),
        "REDIS_ENCRYPTION_KEY_FILE": str(
            write_secret(secrets_dir, "data-key", data_key or material.data_key)
        ),
        "REDIS_KEY_PREFIX": server.key_prefix,
    }
    if previous_keys:
        env["REDIS_ENCRYPTION_PREVIOUS_KEYS_FILE"] = str(
            write_secret(secrets_dir, "previous-keys", ",".join(previous_keys))
        )
    return overridden(env, overrides)


def rotation_environ(
    server: TlsRedisServer,
    secrets_dir: Path,
    *,
    data_key: str | None = None,
    previous_keys: tuple[str, ...] = (),
) -> dict[str, str]:
    """The environment the stack's rotation pass gets (infra/components/rotation.py): the
    app's keys and prefix, its own ACL user, certificate and password."""
    env = cache_environ(server, secrets_dir, data_key=data_key, previous_keys=previous_keys)
    return as_rotation(server, env, secrets_dir)


def as_rotation(
    server: TlsRedisServer, env: Mapping[str, str], secrets_dir: Path
) -> dict[str, str]:
    """`env` (an app's, with its key files) under the rotation pass's identity instead."""
    material = server.material
    password = write_secret(secrets_dir, "rotation-password", material.rotation_password)
    return overridden(
        env,
        {
            "REDIS_USERNAME": ROTATION_USER,
            "REDIS_PASSWORD_FILE": str(password),
            "REDIS_TLS_CERT_FILE": str(material.rotation.cert_file),
            "REDIS_TLS_KEY_FILE": str(material.rotation.key_file),
        },
    )


def overridden(env: Mapping[str, str], overrides: Mapping[str, str | None]) -> dict[str, str]:
    """`env` with each override set, or removed where it is None."""
    result = dict(env)
    for name, value in overrides.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def raw_client(server: TlsRedisServer, *, rotation: bool = False) -> redis.Redis:
    """redis-py with the app's identity, to inspect and tamper with what is at rest; with
    `rotation`, the rotation pass's (which may SCAN and PTTL, and may not GET)."""
    material = server.material
    user, password, identity = (
        (ROTATION_USER, material.rotation_password, material.rotation)
        if rotation
        else (APP_USER, material.app_password, material.app)
    )
    return redis.Redis(
        host=server.host,
        port=server.port,
        username=user,
        password=password,
        ssl=True,
        ssl_ca_certs=str(material.ca_file),
        ssl_certfile=str(identity.cert_file),
        ssl_keyfile=str(identity.key_file),
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
        protocol=2,  # the stack's Redis has no HELLO (infra/redis_conf.py)
    )


def stored_names(server: TlsRedisServer) -> list[bytes]:
    """Every name under the app's prefix (SCAN: the rotation pass's user may list them)."""
    client = raw_client(server, rotation=True)
    try:
        return sorted(client.scan_iter(match=f"{server.key_prefix}*", count=500))
    finally:
        client.close()


def aof_bytes(server: TlsRedisServer) -> bytes:
    """Everything Redis persisted (stop the server first so the AOF is flushed)."""
    return b"".join(
        path.read_bytes() for path in sorted(server.data_dir.rglob("*")) if path.is_file()
    )
